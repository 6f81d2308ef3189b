"""What GetJwks publishes for every service's TokenVerifier: the public
signing keys, the API keys revoked recently enough to still have live tokens
(read from the auth DB, so a service started or restarted after a revocation
refuses them too), and the longest lifetime a token is issued with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from services.auth_svc.directory import TenantDirectory
from services.auth_svc.signing_keys import SigningKeyring
from vtc.v1 import auth_pb2

# Revocations are published this much longer than a token lives: clock skew and verifiers' leeway.
REVOCATION_MARGIN = timedelta(seconds=60)


class PublishedKeySet:
    def __init__(self, keyring: SigningKeyring, directory: TenantDirectory, token_lifetime_seconds: int) -> None:
        self._keyring = keyring
        self._directory = directory
        self._lifetime = token_lifetime_seconds

    async def jwks(self, now: datetime | None = None) -> dict:
        """The key set as JWKS JSON (services.shared.tokens.JwksSource's shape)."""
        await self._keyring.refresh()  # a key rotated in or deleted by another process
        now = now or datetime.now(UTC)
        # A token lives at most self._lifetime (verifiers refuse longer ones), so an
        # older revocation concerns no live token.
        since = now - timedelta(seconds=self._lifetime) - REVOCATION_MARGIN
        revoked = await self._directory.revocations_since(since)
        return {
            "keys": self._keyring.jwks()["keys"],
            "revoked": [{"key_id": key_id, "revoked_at": at.timestamp()} for key_id, at in revoked],
            "max_token_lifetime_seconds": self._lifetime,
        }

    async def to_proto(self) -> auth_pb2.Jwks:
        jwks = await self.jwks()
        return auth_pb2.Jwks(
            keys=[auth_pb2.Jwk(**key) for key in jwks["keys"]],
            revoked=[auth_pb2.RevokedKey(key_id=r["key_id"], revoked_at=_timestamp(r["revoked_at"]))
                     for r in jwks["revoked"]],
            max_token_lifetime_seconds=jwks["max_token_lifetime_seconds"])


def _timestamp(epoch_seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(epoch_seconds * 1e9))
    return stamp
