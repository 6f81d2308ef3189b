"""`python -m services.auth_svc.rotate`: adds a new signing key. A running auth
service publishes it at once and signs with it after
auth_signing_key_activation_seconds; older keys stay published until
you delete their files (safe once auth_token_ttl_seconds have passed; at once
if a key leaked: its tokens are then refused everywhere within seconds).

With a broker bus (VTC_BUS_URL=amqp://...) the rotation is announced on it
(auth.signing_keys.changed), so every service fetches the new key set at once;
a running auth service announces it too, as it notices the new file."""

from __future__ import annotations

import asyncio

from services.auth_svc.settings import Settings
from services.auth_svc.signing_key_watch import announce_signing_keys
from services.auth_svc.signing_keys import SigningKeyring, rotate_signing_key
from services.shared.bus import Bus, open_bus_for


async def announce(settings: Settings, bus: Bus | None = None) -> bool:
    """Tells every service the keys changed (on `bus`, else the settings' bus);
    False when the bus is in-process, where nobody else would hear it."""
    if bus is None:
        if settings.bus_url.startswith("memory:"):
            return False
        bus = open_bus_for(settings)
    keyring = SigningKeyring(settings.resolved_signing_key_dir)
    await keyring.open()
    await bus.start()
    try:
        await announce_signing_keys(bus, keyring.kids())
    finally:
        await bus.close()
    return True


def main() -> None:
    settings = Settings()
    key = rotate_signing_key(settings.resolved_signing_key_dir)
    print(f"new signing key {key.kid} in {key.path}: published now, signing in "
          f"{settings.auth_signing_key_activation_seconds:g} s; "
          "older keys stay published until their files are deleted")
    try:
        announced = asyncio.run(announce(settings))
    except Exception as error:  # the key is in place; the auth service announces it when it notices the file
        print(f"could not announce the rotation on the bus ({error}); the running auth service will")
        return
    if announced:
        print("announced on the bus: every service fetches the new key set now")


if __name__ == "__main__":
    main()
