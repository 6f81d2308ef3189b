"""Bearer tokens: local verification against the auth service's key set, and
the service's own token for calls to its peers.

The key set (GetJwks) holds the public signing keys, the API keys revoked
recently enough to still have live tokens, and the longest token lifetime the
issuer hands out. A verifier fetches it again every `refresh_seconds`, at once
when the auth service announces a signing key change or a revocation on the
bus, and when a token names a kid it does not know; a key that left the set
stops verifying from that refresh on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import jwt
from jwt import PyJWK

from services.shared.bus import Bus, Delivery
from services.shared.bus.contract import API_KEY_REVOKED, SIGNING_KEYS_CHANGED
from services.shared.errors import Unauthenticated, Unavailable
from services.shared.principal import Principal

log = logging.getLogger("vtc.tokens")

ISSUER = "vtc-auth"
AUDIENCE = "vtc"
ALGORITHMS = ["EdDSA", "RS256"]
KEY_REVOKED = API_KEY_REVOKED  # routing key of events_pb2.ApiKeyRevoked (see bus/contract.py)

REFRESH_SECONDS = 30.0  # how old the key set may get before a token is checked against a fresh one
MIN_REFRESH_SECONDS = 5.0  # at most one fetch per this for an unknown kid (tokens are the caller's to choose)
MAX_STALE_SECONDS = 300.0  # while the auth service is unreachable, the last key set serves this long

# Returns the key set as JWKS JSON: {"keys": [...], "revoked": [{"key_id", "revoked_at" (epoch s)}],
# "max_token_lifetime_seconds": n}; only "keys" is required.
JwksSource = Callable[[], Awaitable[dict]]


@dataclass(frozen=True)
class KeySet:
    """What a verifier trusts, as of one fetch."""

    keys: Mapping[str, PyJWK] = field(default_factory=dict)  # by kid
    revoked: Mapping[str, float] = field(default_factory=dict)  # API key id -> revoked_at (epoch seconds)
    max_token_lifetime_seconds: int = 0  # 0: not known

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> KeySet:
        return cls(keys={str(k["kid"]): PyJWK.from_dict(dict(k)) for k in jwks.get("keys", [])},
                   revoked={str(r["key_id"]): float(r["revoked_at"]) for r in jwks.get("revoked", [])},
                   max_token_lifetime_seconds=int(jwks.get("max_token_lifetime_seconds", 0)))


class TokenVerifier:
    """Verifies JWTs locally against the auth service's key set.

    The set is fetched on the first token, again before checking a token once
    it is older than `refresh_seconds`, at once on a bus event (`follow`), and
    when a token names an unknown kid (at most every `min_refresh_seconds`).
    If a fetch fails, the last set keeps serving up to `max_stale_seconds`
    old; past that, tokens are answered UNAVAILABLE rather than checked
    against keys that may have been withdrawn."""

    def __init__(self, source: JwksSource, *, refresh_seconds: float = REFRESH_SECONDS,
                 min_refresh_seconds: float = MIN_REFRESH_SECONDS, max_stale_seconds: float = MAX_STALE_SECONDS,
                 leeway_seconds: float = 5.0) -> None:
        self._source = source
        self._key_set = KeySet()
        # Monotonic times at which the last good fetch, and the last attempt, began.
        self._fetched_at = float("-inf")
        self._tried_at = float("-inf")
        self._outdated = False  # the auth service announced a change not fetched yet
        self._refresh = refresh_seconds
        self._min_refresh = min_refresh_seconds
        self._max_stale = max(max_stale_seconds, refresh_seconds)
        self._leeway = leeway_seconds
        self._lock = asyncio.Lock()
        self._revoked: dict[str, float] = {}  # heard on the bus, kept until a fetched set has them too
        # Moves on whenever what this verifier trusts may have changed (a revocation heard, a key set
        # fetched, a signing key change announced): a call under way checks its token again only then
        # (and every few seconds), instead of at every message (see AuthInterceptor).
        self.generation = 0

    def revoke(self, key_id: str, revoked_at: float) -> None:
        """Rejects from now on every token of this API key issued up to revoked_at."""
        self._revoked[key_id] = max(revoked_at, self._revoked.get(key_id, float("-inf")))
        self.generation += 1

    async def follow(self, bus: Bus) -> None:
        """Follows the auth service's broadcasts: a revocation applies at once, a
        signing key change makes the next token wait for a fresh key set."""

        async def on_event(delivery: Delivery) -> None:
            if delivery.routing_key == KEY_REVOKED:
                event = delivery.decode()
                self.revoke(event.key_id, event.revoked_at.ToSeconds())
            elif delivery.routing_key == SIGNING_KEYS_CHANGED:
                log.info("signing keys changed; fetching the key set again")
                self._outdated = True  # until a fetch succeeds, each token tries again
                self.generation += 1
                await self._fetch()

        await bus.consume_broadcast([KEY_REVOKED, SIGNING_KEYS_CHANGED], on_event)

    async def _fetch(self, *, unless_tried_within: float = 0.0) -> None:
        """Fetches the key set, unless another task's fetch began since we asked,
        or one was tried less than `unless_tried_within` seconds ago."""
        wanted_at = time.monotonic()
        async with self._lock:
            if self._fetched_at >= wanted_at or wanted_at - self._tried_at < unless_tried_within:
                return
            began = self._tried_at = time.monotonic()
            try:
                key_set = KeySet.from_jwks(await self._source())
            except Exception as error:  # the auth service is down or unreachable
                log.warning("could not fetch the key set: %s", error)
                return
            self._key_set, self._fetched_at, self._outdated = key_set, began, False
            self.generation += 1
            # A revocation heard on the bus stays until the fetched list carries it.
            self._revoked = {k: at for k, at in self._revoked.items() if k not in key_set.revoked}

    async def _keys(self, kid: str) -> KeySet:
        if self._outdated or time.monotonic() - self._fetched_at >= self._refresh:
            await self._fetch(unless_tried_within=min(self._min_refresh, self._refresh))
        elif kid not in self._key_set.keys:
            await self._fetch(unless_tried_within=self._min_refresh)
        if time.monotonic() - self._fetched_at >= self._max_stale:
            raise Unavailable("cannot check tokens right now: the auth service is unreachable")
        return self._key_set

    async def verify(self, token: str, *, allow_expired: bool = False) -> Principal:
        """The token's Principal, or Unauthenticated saying why not. allow_expired:
        for a call already under way, which may outlive its token."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthenticated("malformed token") from error
        kid = str(header.get("kid", ""))
        key_set = await self._keys(kid)
        key = key_set.keys.get(kid)
        if key is None:
            raise Unauthenticated("token signed with an unknown key")
        try:
            claims = jwt.decode(token, key=key, algorithms=ALGORITHMS, audience=AUDIENCE, issuer=ISSUER,
                                leeway=self._leeway, options={"require": ["exp", "sub", "tenant", "iat"],
                                                              "verify_exp": not allow_expired})
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("token expired: get a new one (`vtc login`)") from error
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"invalid token: {error}") from error
        longest = key_set.max_token_lifetime_seconds
        if longest and claims["exp"] - claims["iat"] > longest:
            raise Unauthenticated(f"invalid token: it claims to live longer than the {longest} s the issuer grants")
        revoked_at = max(key_set.revoked.get(claims["sub"], float("-inf")),
                         self._revoked.get(claims["sub"], float("-inf")))
        if claims["iat"] <= revoked_at:
            raise Unauthenticated("this token's API key was revoked")
        return Principal(subject=claims["sub"], tenant_id=claims["tenant"],
                         scopes=frozenset(str(claims.get("scope", "")).split()))


def jwks_from_proto(message: Any) -> dict:
    """An auth_pb2.Jwks as the JWKS JSON a TokenVerifier reads."""
    from google.protobuf.json_format import MessageToDict

    return {
        "keys": [MessageToDict(key, preserving_proto_field_name=True) for key in message.keys],
        "revoked": [{"key_id": r.key_id, "revoked_at": r.revoked_at.seconds + r.revoked_at.nanos / 1e9}
                    for r in message.revoked],
        "max_token_lifetime_seconds": message.max_token_lifetime_seconds,
    }


def grpc_jwks_source(channel: grpc.aio.Channel) -> JwksSource:
    """Fetches the key set from the auth service over gRPC."""
    from vtc.v1 import auth_pb2, auth_pb2_grpc

    stub = auth_pb2_grpc.AuthServiceStub(channel)

    async def fetch() -> dict:
        return jwks_from_proto(await stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=5))

    return fetch


class ServiceToken:
    """This service's own bearer token for calls to its peers: exchanged from the
    service API key, renewed a minute before it expires, and at once when a
    peer refuses it (`renewal_interceptors`: the signing key was withdrawn)."""

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

    def discard(self, token: str) -> None:
        """Forgets `token` if it is still the cached one, so the next get() issues a new one."""
        if token and token == self._token:
            self._expires_at = 0.0

    async def metadata(self, extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {await self.get()}"), *extra]

    def renewal_interceptors(self) -> list[grpc.aio.ClientInterceptor]:
        """For the channels to peers: a unary call made with this token that the
        peer answers UNAUTHENTICATED is made once more with a new token."""
        return [_RenewOnUnauthenticated(self)]


class _RenewOnUnauthenticated(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, service_token: ServiceToken) -> None:
        self._service_token = service_token

    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        call = await continuation(client_call_details, request)
        sent = _bearer_of(client_call_details.metadata)
        if not sent or await call.code() != grpc.StatusCode.UNAUTHENTICATED:
            return call
        self._service_token.discard(sent)
        try:
            fresh = await self._service_token.get()
        except grpc.aio.AioRpcError:
            return call  # no new token to try: the peer's answer stands
        if fresh == sent:
            return call
        log.info("a peer refused this service's token (%s); retrying with a new one", await call.details())
        metadata = [(k, v) for k, v in (client_call_details.metadata or ()) if k != "authorization"]
        metadata.append(("authorization", f"Bearer {fresh}"))
        retry = client_call_details._replace(metadata=grpc.aio.Metadata(*metadata))
        return await continuation(retry, request)


def _bearer_of(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value.removeprefix("Bearer ")
    return ""
