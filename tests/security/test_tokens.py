"""The token matrix: forged, malformed, confused and out-of-date tokens, each
sent over gRPC and over REST. Every one must be refused as unauthenticated."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from jwt.algorithms import OKPAlgorithm

from tests.security.world import World
from vtc.v1 import metadata_pb2, metadata_pb2_grpc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(token: str) -> list[str]:
    return token.split(".")


def _with_payload(token: str, **changes: object) -> str:
    """The token with its payload edited and its original signature kept."""
    header, payload, signature = _segments(token)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return ".".join([header, _b64(json.dumps(claims).encode()), signature])


def _unsigned(world: World) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(world.claims(world.b, tenant=world.a.tenant_id)).encode())}."


def _hs256_with_public_key(world: World) -> str:
    """Algorithm confusion: HMAC keyed with the server's public key bytes."""
    kid, key = world.signing_key()
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    header = {"alg": "HS256", "kid": kid, "typ": "JWT"}
    import hashlib
    import hmac

    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(world.claims(world.a)).encode())}"
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _hs256_with_jwk_text(world: World) -> str:
    kid, key = world.signing_key()
    jwk_text = OKPAlgorithm.to_jwk(key.public_key())
    header = {"alg": "HS256", "kid": kid, "typ": "JWT"}
    import hashlib
    import hmac

    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(world.claims(world.a)).encode())}"
    return f"{signing_input}.{_b64(hmac.new(jwk_text.encode(), signing_input.encode(), hashlib.sha256).digest())}"


def _attacker_key_real_kid(world: World) -> str:
    kid, _ = world.signing_key()
    return jwt.encode(world.claims(world.a), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})


def _attacker_key_unknown_kid(world: World) -> str:
    return jwt.encode(world.claims(world.a), Ed25519PrivateKey.generate(), algorithm="EdDSA",
                      headers={"kid": "attacker"})


def _attacker_rsa_real_kid(world: World) -> str:
    kid, _ = world.signing_key()
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(world.claims(world.a), rsa, algorithm="RS256", headers={"kid": kid})


def _embedded_jwk(world: World) -> str:
    """The attacker's public key embedded in the header ('jwk'), with a matching signature."""
    attacker = Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(attacker.public_key()))
    return jwt.encode(world.claims(world.a), attacker, algorithm="EdDSA", headers={"kid": "attacker", "jwk": jwk})


def _jku_header(world: World) -> str:
    attacker = Ed25519PrivateKey.generate()
    return jwt.encode(world.claims(world.a), attacker, algorithm="EdDSA",
                      headers={"kid": "attacker", "jku": "http://127.0.0.1:1/jwks.json"})


def _kid(value: str) -> Callable[[World], str]:
    def forge(world: World) -> str:
        _, key = world.signing_key()
        return jwt.encode(world.claims(world.a), key, algorithm="EdDSA", headers={"kid": value})
    return forge


def _claims(**overrides: object) -> Callable[[World], str]:
    """Signed with the real key, claims wrong in one way."""
    def forge(world: World) -> str:
        return world.signed(world.claims(world.a, **overrides))
    return forge


def _tampered_tenant(world: World) -> str:
    return _with_payload(world.b.token, tenant=world.a.tenant_id)


def _tampered_scope(world: World) -> str:
    return _with_payload(world.b.token, scope="admin service videos:read videos:write")


def _signature_stripped(world: World) -> str:
    header, payload, _ = _segments(world.a.token)
    return f"{header}.{payload}."


def _signature_of_another_token(world: World) -> str:
    header, payload, _ = _segments(world.b.token)
    return f"{header}.{payload}.{_segments(world.a.token)[2]}"


NOW = int(time.time())
OVERSIZE_GRPC = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL}

FORGERIES: dict[str, Callable[[World], str | None]] = {
    "no authorization header": lambda w: None,
    "empty bearer": lambda w: "Bearer",
    "basic scheme with the api key": lambda w: f"Basic {base64.b64encode(w.a.api_key.encode()).decode()}",
    "api key instead of a token": lambda w: f"Bearer {w.a.api_key}",
    "garbage": lambda w: "Bearer not-a-token",
    "two segments": lambda w: "Bearer abc.def",
    "bad base64": lambda w: "Bearer !!!.@@@.###",
    "header is not json": lambda w: f"Bearer {_b64(b'nope')}.{_b64(b'{}')}.{_b64(b'x')}",
    "alg none": lambda w: f"Bearer {_unsigned(w)}",
    "alg confusion: HS256 keyed with the public key": lambda w: f"Bearer {_hs256_with_public_key(w)}",
    "alg confusion: HS256 keyed with the JWK text": lambda w: f"Bearer {_hs256_with_jwk_text(w)}",
    "attacker's Ed25519 key with the real kid": lambda w: f"Bearer {_attacker_key_real_kid(w)}",
    "attacker's Ed25519 key, unknown kid": lambda w: f"Bearer {_attacker_key_unknown_kid(w)}",
    "attacker's RSA key with the real kid": lambda w: f"Bearer {_attacker_rsa_real_kid(w)}",
    "attacker's key embedded as jwk header": lambda w: f"Bearer {_embedded_jwk(w)}",
    "jku header pointing at the attacker": lambda w: f"Bearer {_jku_header(w)}",
    "kid path traversal": lambda w: f"Bearer {_kid('../../keys/signing/../../etc/passwd')(w)}",
    "kid empty": lambda w: f"Bearer {_kid('')(w)}",
    "kid 10 KB": lambda w: f"Bearer {_kid('k' * 10_000)(w)}",
    "expired": lambda w: f"Bearer {_claims(iat=NOW - 7200, exp=NOW - 3600)(w)}",
    "wrong issuer": lambda w: f"Bearer {_claims(iss='evil-auth')(w)}",
    "wrong audience": lambda w: f"Bearer {_claims(aud='another-service')(w)}",
    "no expiry": lambda w: f"Bearer {_claims(exp=None)(w)}",
    "no tenant claim": lambda w: f"Bearer {_claims(tenant=None)(w)}",
    "no subject": lambda w: f"Bearer {_claims(sub=None)(w)}",
    "not yet valid (nbf in an hour)": lambda w: f"Bearer {_claims(nbf=NOW + 3600)(w)}",
    "issued in the future": lambda w: f"Bearer {_claims(iat=NOW + 3600, exp=NOW + 7200)(w)}",
    "payload edited to another tenant": lambda w: f"Bearer {_tampered_tenant(w)}",
    "payload edited to admin scope": lambda w: f"Bearer {_tampered_scope(w)}",
    "signature stripped": lambda w: f"Bearer {_signature_stripped(w)}",
    "signature of another token": lambda w: f"Bearer {_signature_of_another_token(w)}",
    "1 MB token": lambda w: "Bearer " + "a" * 1_000_000,
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_token_over_grpc_is_unauthenticated(forge, world: World) -> None:  # type: ignore[no-untyped-def]
    header = forge(world)
    metadata = [("authorization", header)] if header is not None else []

    code = world.grpc_call(lambda channel: metadata_pb2_grpc.MetadataServiceStub(channel).GetVideo(
        metadata_pb2.GetVideoRequest(video_id=world.a_video_id), metadata=metadata, timeout=10))

    # Metadata over gRPC's 8 KiB soft limit is cut off by the transport before it reaches us.
    assert code in (OVERSIZE_GRPC if len(header or "") > 8192 else {grpc.StatusCode.UNAUTHENTICATED})


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_token_over_rest_is_refused(forge, world: World) -> None:  # type: ignore[no-untyped-def]
    header = forge(world)
    headers = {"authorization": header} if header is not None else {}

    with world.rest() as rest:
        reply = rest.get(f"/v1/videos/{world.a_video_id}", headers=headers)

    assert reply.status_code in ({401, 429, 431} if len(header or "") > 8192 else {401}), reply.text
    assert "A's unreleased film" not in reply.text


def test_revoked_key_token_is_refused(world: World) -> None:
    """A key of A's, revoked by the operator: its live token stops working at once."""
    from tests.calls import bearer
    from tests.security.world import READ_WRITE
    from vtc.v1 import auth_pb2, auth_pb2_grpc

    operator = world.operator
    with world.channel() as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        created = auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=world.a.tenant_id, name="leaked",
                                                                 scopes=list(READ_WRITE)),
                                    metadata=bearer(operator), timeout=10)
        token = auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=created.secret), timeout=10).access_token
        auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id=world.a.tenant_id, key_id=created.key.key_id),
                          metadata=bearer(operator), timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=created.secret), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    code = world.grpc_call(lambda channel: metadata_pb2_grpc.MetadataServiceStub(channel).GetVideo(
        metadata_pb2.GetVideoRequest(video_id=world.a_video_id), metadata=bearer(token), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    with world.rest() as rest:
        assert rest.get(f"/v1/videos/{world.a_video_id}", headers={"authorization": f"Bearer {token}"}
                        ).status_code == 401


def test_token_in_the_query_string_is_not_a_credential(world: World) -> None:
    with world.rest() as rest:
        reply = rest.get(f"/v1/videos/{world.a_video_id}", params={"access_token": world.a.token})
    assert reply.status_code in {400, 401}
    assert "A's unreleased film" not in reply.text


def test_two_authorization_headers_are_refused(world: World) -> None:
    """B's token and A's: the server must not pick one (the last used to win)."""
    metadata = [("authorization", f"Bearer {world.b.token}"), ("authorization", f"Bearer {world.a.token}")]
    code = world.grpc_call(lambda channel: metadata_pb2_grpc.MetadataServiceStub(channel).GetVideo(
        metadata_pb2.GetVideoRequest(video_id=world.a_video_id), metadata=metadata, timeout=10))
    assert code in {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT}


def test_issue_token_flood_on_one_key_is_rate_limited(world: World) -> None:
    from vtc.v1 import auth_pb2, auth_pb2_grpc

    victim = world.new_tenant("flood")
    with world.channel() as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        codes = []
        for _ in range(10):
            try:
                auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=victim.api_key), timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert codes.index(grpc.StatusCode.RESOURCE_EXHAUSTED) <= 5, codes


def test_guessing_api_keys_is_rate_limited_per_peer(world: World) -> None:
    from vtc.v1 import auth_pb2, auth_pb2_grpc

    with world.channel() as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        codes = set()
        for guess in range(400):
            try:
                auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=f"vtc_key_{guess:020x}_{'0' * 64}"), timeout=10)
            except grpc.RpcError as error:
                codes.add(error.code())
            if grpc.StatusCode.RESOURCE_EXHAUSTED in codes:
                break
    assert codes == {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    time.sleep(1.5)  # let this address's allowance refill for the attacks that follow


def test_revoked_key_is_refused_by_a_service_started_after_the_revocation(world: World) -> None:
    """A verifier that never heard the revocation broadcast (a service started or restarted later)
    still refuses the revoked key's live token: revocations come with the key set."""
    import asyncio

    from services.shared.tokens import TokenVerifier, grpc_jwks_source
    from tests.calls import bearer
    from tests.security.world import READ_WRITE
    from vtc.v1 import auth_pb2, auth_pb2_grpc

    with world.channel() as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        created = auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=world.a.tenant_id, name="later",
                                                                 scopes=list(READ_WRITE)),
                                    metadata=bearer(world.operator), timeout=10)
        token = auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=created.secret), timeout=10).access_token
        auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id=world.a.tenant_id, key_id=created.key.key_id),
                          metadata=bearer(world.operator), timeout=10)

    async def verify_with_a_new_verifier() -> str:
        async with grpc.aio.insecure_channel(world.stack.grpc_address) as channel:
            try:
                await TokenVerifier(grpc_jwks_source(channel)).verify(token)
            except Exception as error:  # noqa: BLE001 - the refusal is the point
                return type(error).__name__
        return "accepted"

    assert asyncio.run(verify_with_a_new_verifier()) == "Unauthenticated"
