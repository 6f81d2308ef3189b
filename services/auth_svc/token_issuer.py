"""Access tokens: short-lived JWTs an API key is exchanged for, signed with
the current signing key and checked by every service with
services.shared.tokens.TokenVerifier (same issuer, audience and claims)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from services.auth_svc.api_keys import ApiKey
from services.auth_svc.signing_keys import ALGORITHM, SigningKeyring
from services.shared.tokens import AUDIENCE, ISSUER


@dataclass(frozen=True)
class AccessToken:
    token: str
    kid: str
    key: ApiKey
    issued_at: datetime
    expires_at: datetime

    @property
    def lifetime_seconds(self) -> int:
        return int((self.expires_at - self.issued_at).total_seconds())


class TokenIssuer:
    def __init__(self, keyring: SigningKeyring, ttl_seconds: int) -> None:
        self._keyring = keyring
        self._ttl = timedelta(seconds=ttl_seconds)

    def issue(self, key: ApiKey, now: datetime | None = None) -> AccessToken:
        """A token acting as `key`: its id, tenant and scopes."""
        # Whole seconds: JWT times are integers, and expires_at must match the claim.
        issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
        expires_at = issued_at + self._ttl
        signing_key = self._keyring.current()
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": key.key_id,
            "tenant": key.tenant_id,
            "scope": " ".join(key.scopes),
            "iat": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        token = jwt.encode(claims, signing_key.private_key, algorithm=ALGORITHM, headers={"kid": signing_key.kid})
        return AccessToken(token=token, kid=signing_key.kid, key=key, issued_at=issued_at, expires_at=expires_at)
