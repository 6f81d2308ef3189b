"""A test signing key and tokens minted with it, for servers tested without the
auth service. Tokens carry the same claims auth_svc issues."""

from __future__ import annotations

import time
from collections.abc import Iterable

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from services.shared.tokens import AUDIENCE, ISSUER, TokenVerifier


class TestKeys:
    __test__ = False  # not a test class

    def __init__(self, kid: str = "test-key") -> None:
        self.kid = kid
        self._key = Ed25519PrivateKey.generate()

    def jwks(self) -> dict:
        jwk = OKPAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def verifier(self) -> TokenVerifier:
        async def source() -> dict:
            return self.jwks()

        return TokenVerifier(source)

    def token(self, tenant_id: str = "ten_a", scopes: Iterable[str] = ("videos:read", "videos:write"),
              subject: str = "key_test", ttl_seconds: float = 300) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "tenant": tenant_id,
                  "scope": " ".join(scopes), "iat": now, "exp": now + int(ttl_seconds)}
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})

    def metadata(self, **kwargs) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
        return [("authorization", f"Bearer {self.token(**kwargs)}")]
