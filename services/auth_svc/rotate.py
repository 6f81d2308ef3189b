"""`python -m services.auth_svc.rotate`: adds a new signing key. A running auth
service signs with it from its next token on; older keys stay published until
you delete their files (safe once auth_token_ttl_seconds have passed)."""

from __future__ import annotations

from services.auth_svc.settings import Settings
from services.auth_svc.signing_keys import rotate_signing_key


def main() -> None:
    settings = Settings()
    key = rotate_signing_key(settings.resolved_signing_key_dir)
    print(f"new signing key {key.kid} in {key.path}; older keys stay published until their files are deleted")


if __name__ == "__main__":
    main()
