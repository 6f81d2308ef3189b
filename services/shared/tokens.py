"""Bearer tokens: local verification against the auth service's JWKS (cached,
refreshed when a token names an unknown `kid`), and the service's own token
for calls to its peers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import grpc
import jwt
from jwt import PyJWK

from services.shared.bus import Bus, Delivery
from services.shared.errors import Unauthenticated, Unavailable
from services.shared.principal import Principal

log = logging.getLogger("vtc.tokens")

ISSUER = "vtc-auth"
AUDIENCE = "vtc"
ALGORITHMS = ["EdDSA", "RS256"]
KEY_REVOKED = "auth.api_key.revoked"  # routing key of events_pb2.ApiKeyRevoked

# Returns the JWKS as a dict {"keys": [...]}.
JwksSource = Callable[[], Awaitable[dict]]


class TokenVerifier:
    """Verifies JWTs locally. The key set is fetched once, then again only when
    a token names a kid we do not know (at most every `min_refresh_seconds`)."""

    def __init__(self, source: JwksSource, *, min_refresh_seconds: float = 5.0, leeway_seconds: float = 5.0) -> None:
        self._source = source
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._min_refresh = min_refresh_seconds
        self._leeway = leeway_seconds
        self._lock = asyncio.Lock()
        self._revoked: dict[str, float] = {}  # API key id -> when it was revoked (epoch seconds)

    def revoke(self, key_id: str, revoked_at: float) -> None:
        """Rejects from now on every token of this API key issued up to revoked_at."""
        self._revoked[key_id] = revoked_at

    async def follow_revocations(self, bus: Bus) -> None:
        """Applies the auth service's ApiKeyRevoked broadcasts as they come."""

        async def on_revoked(delivery: Delivery) -> None:
            event = delivery.decode()
            self.revoke(event.key_id, event.revoked_at.ToSeconds())

        await bus.consume_broadcast([KEY_REVOKED], on_revoked)

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < self._min_refresh:
                return
            try:
                jwks = await self._source()
            except Exception as error:  # the auth service is down or unreachable
                log.warning("could not fetch JWKS: %s", error)
                raise Unavailable("cannot check tokens right now: the auth service is unreachable") from error
            self._keys = {k["kid"]: PyJWK.from_dict(k) for k in jwks.get("keys", [])}
            self._fetched_at = time.monotonic()

    async def _key(self, kid: str) -> PyJWK:
        if kid not in self._keys:
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("token signed with an unknown key")
        return key

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthenticated("malformed token") from error
        key = await self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(token, key=key, algorithms=ALGORITHMS, audience=AUDIENCE, issuer=ISSUER,
                                leeway=self._leeway, options={"require": ["exp", "sub", "tenant", "iat"]})
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("token expired: get a new one (`vtc login`)") from error
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"invalid token: {error}") from error
        if claims["iat"] <= self._revoked.get(claims["sub"], float("-inf")):
            raise Unauthenticated("this token's API key was revoked")
        return Principal(subject=claims["sub"], tenant_id=claims["tenant"],
                         scopes=frozenset(str(claims.get("scope", "")).split()))


def grpc_jwks_source(channel: grpc.aio.Channel) -> JwksSource:
    """Fetches the JWKS from the auth service over gRPC."""
    from google.protobuf.json_format import MessageToDict

    from vtc.v1 import auth_pb2, auth_pb2_grpc

    stub = auth_pb2_grpc.AuthServiceStub(channel)

    async def fetch() -> dict:
        jwks = await stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=5)
        return MessageToDict(jwks, preserving_proto_field_name=True)

    return fetch


class ServiceToken:
    """This service's own bearer token for calls to its peers: exchanged from the
    service API key, renewed a minute before it expires."""

    def __init__(self, api_key: Callable[[], str], channel: grpc.aio.Channel) -> None:
        from vtc.v1 import auth_pb2_grpc

        self._api_key = api_key
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        from vtc.v1 import auth_pb2

        async with self._lock:
            if time.time() > self._expires_at - 60:
                reply = await self._stub.IssueToken(auth_pb2.IssueTokenRequest(api_key=self._api_key()), timeout=10)
                self._token = reply.access_token
                self._expires_at = time.time() + reply.expires_in
            return self._token

    async def metadata(self, extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {await self.get()}"), *extra]

