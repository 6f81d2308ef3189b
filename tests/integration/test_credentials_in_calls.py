"""Credentials on the wire, against a real auth service on port 0: a call
carrying two authorization headers is refused (which one counts is a guess a
proxy and a service could make differently), and no token or API key reaches
the JSON logs, whatever header it arrives in and whatever the call's fate."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.shared.logs import JsonFormatter
from tests.integration.test_auth_service import TTL_SECONDS, Auth, bearer, rpc_error, start_auth
from vtc.v1 import auth_pb2


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[Auth]:
    service = await start_auth(tmp_path / "data", "")
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Every log line of every logger, at DEBUG, as the services print them."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_a_call_with_two_authorization_headers_is_refused(auth: Auth) -> None:
    genuine = (await auth.token(auth.admin_key())).access_token
    request = auth_pb2.ListApiKeysRequest()

    for headers in ([("authorization", "Bearer not-a-token"), ("authorization", f"Bearer {genuine}")],
                    [("authorization", f"Bearer {genuine}"), ("authorization", "Bearer not-a-token")],
                    [("authorization", f"Bearer {genuine}"), ("authorization", f"Bearer {genuine}")]):
        error = await rpc_error(auth.stub.ListApiKeys(request, metadata=headers, timeout=10))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == "send one authorization header; this call had 2"
    assert (await auth.stub.ListApiKeys(request, metadata=bearer(genuine), timeout=10)).keys


async def test_no_token_or_api_key_reaches_the_logs(auth: Auth, json_logs: io.StringIO) -> None:
    admin_key = auth.admin_key()
    tenant_id, key = await auth.tenant_with_key("Logged Co")
    genuine = (await auth.token(key.secret)).access_token
    admin_token = (await auth.token(admin_key)).access_token
    expired = auth.component.issuer.issue(await auth.component.directory.authenticate(key.secret),
                                          now=datetime.now(UTC) - timedelta(seconds=TTL_SECONDS + 60)).token
    forged = jwt.encode(jwt.decode(genuine, options={"verify_signature": False}), Ed25519PrivateKey.generate(),
                        algorithm="EdDSA", headers={"kid": jwt.get_unverified_header(genuine)["kid"]})
    wrong_secret = key.secret[:-8] + "00000000"
    request = auth_pb2.ListApiKeysRequest()

    calls = [
        auth.stub.ListApiKeys(request, metadata=[*bearer(genuine), ("x-request-id", genuine)], timeout=10),
        auth.stub.ListApiKeys(request, metadata=[*bearer(genuine), ("x-request-id", key.secret)], timeout=10),
        auth.stub.ListApiKeys(request, metadata=bearer(expired), timeout=10),
        auth.stub.ListApiKeys(request, metadata=bearer(forged), timeout=10),
        auth.stub.ListApiKeys(request, metadata=[("authorization", f"Basic {key.secret}")], timeout=10),
        auth.stub.ListApiKeys(request, metadata=[*bearer(genuine), *bearer(forged)], timeout=10),
        auth.stub.ListApiKeys(request, metadata=bearer(f"{genuine}x"), timeout=10),
        auth.stub.IssueToken(auth_pb2.IssueTokenRequest(api_key=wrong_secret), timeout=10),
        auth.stub.IssueToken(auth_pb2.IssueTokenRequest(api_key=f"{key.secret} {genuine}"), timeout=10),
        auth.stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id=tenant_id, key_id=key.key.key_id),
                               metadata=bearer(admin_token), timeout=10),
        auth.stub.ListApiKeys(request, metadata=bearer(genuine), timeout=10),  # now revoked
    ]
    for call in calls:
        with contextlib.suppress(grpc.aio.AioRpcError):  # most of them are meant to fail
            await call

    logged = json_logs.getvalue()
    assert logged.count('"msg": "rpc /vtc.v1.AuthService/') >= len(calls), "the calls were logged"
    tokens = (genuine, admin_token, expired, forged)
    secrets = [text.rsplit("_", 1)[1] for text in (key.secret, admin_key, wrong_secret)]  # the key id is no secret
    for credential in (*tokens, key.secret, admin_key, *secrets):
        assert credential not in logged
    # Nor any long piece of one (cut or re-encoded on its way into a message): a
    # token's claims and signature, a key's secret beyond the 4 characters listings show.
    pieces = [part for token in tokens for part in token.split(".")[1:]] + [s[4:] for s in secrets]
    for piece in pieces:
        assert not any(piece[i:i + 16] in logged for i in range(0, len(piece) - 16, 4)), piece
