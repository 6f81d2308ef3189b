"""Announces every change of the signing keys on the bus (auth.signing_keys.changed),
so every service's TokenVerifier fetches the key set at once: a key added by
rotation verifies everywhere, and a deleted key's tokens are refused everywhere,
within moments rather than at the verifiers' next periodic refresh.

The auth service watches its key directory (the keys are files: `rotate` adds
one, an operator deletes a retired one), and `python -m services.auth_svc.rotate`
announces its own rotation too, in case no auth service is running to notice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from services.auth_svc.signing_keys import SigningKeyring
from services.shared.background import cancel_and_wait
from services.shared.bus import Bus
from services.shared.tokens import SIGNING_KEYS_CHANGED
from vtc.v1 import events_pb2

log = logging.getLogger("vtc.auth.keys")


async def announce_signing_keys(bus: Bus, kids: Sequence[str]) -> None:
    changed_at = Timestamp()
    changed_at.GetCurrentTime()
    event = events_pb2.SigningKeysChanged(event_id=uuid.uuid4().hex, kids=list(kids), changed_at=changed_at)
    await bus.publish(SIGNING_KEYS_CHANGED, event, message_id=event.event_id, mandatory=False)  # a broadcast


class SigningKeyWatch:
    """Looks at the key directory every `poll_seconds`; when the published kids
    change, reloads the keyring and announces the new set."""

    def __init__(self, keyring: SigningKeyring, bus: Bus, poll_seconds: float) -> None:
        self._keyring = keyring
        self._bus = bus
        self._poll = poll_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="signing-key-watch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        published = self._keyring.kids()
        while True:
            await asyncio.sleep(self._poll)
            try:
                await self._keyring.refresh()
                kids = self._keyring.kids()
                if kids != published:
                    await announce_signing_keys(self._bus, kids)
                    log.info("signing keys changed (now %s); announced", ", ".join(kids))
                    published = kids
            except Exception:  # the next look tries again; verifiers still refresh on their own
                log.exception("could not check or announce the signing keys")
