"""A signing key retired and deleted by the operator: tokens it signed (or an
attacker forges with it, say from a leaked backup) stop working, without a
restart. On a stack of its own: deleting a key ends the shared world's tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from services.auth_svc.signing_keys import SigningKey, rotate_signing_key
from services.shared.tokens import AUDIENCE, ISSUER
from tests.calls import bearer
from tests.stack import Stack, run_stack
from vtc.v1 import metadata_pb2, metadata_pb2_grpc


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from run_stack(tmp_path_factory.mktemp("vtc-keys"), gateway=False)


def _list_videos(stack: Stack, token: str) -> grpc.StatusCode:
    with stack.channel() as channel:
        try:
            metadata_pb2_grpc.MetadataServiceStub(channel).ListVideos(
                metadata_pb2.ListVideosRequest(), metadata=bearer(token), timeout=10)
        except grpc.RpcError as error:
            return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_deleted_signing_key_ends_its_tokens_and_forgeries(own_stack: Stack) -> None:
    signing_dir = own_stack.data_dir / "keys" / "signing"
    old_path = sorted(signing_dir.glob("*.pem"))[-1]
    old_key = serialization.load_pem_private_key(old_path.read_bytes(), password=None)
    old_kid = SigningKey.of(old_key, old_path).kid  # type: ignore[arg-type]
    issued = own_stack.admin_token()
    now = int(time.time())
    forged = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "key_forged", "tenant": "default",
                         "scope": "admin videos:read videos:write", "iat": now, "exp": now + 90 * 86400},
                        old_key, algorithm="EdDSA", headers={"kid": old_kid})
    assert _list_videos(own_stack, issued) == grpc.StatusCode.OK

    rotate_signing_key(signing_dir)
    Path(old_path).unlink()  # the operator retires the old key for good

    deadline = time.monotonic() + 20
    while _list_videos(own_stack, issued) == grpc.StatusCode.OK and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _list_videos(own_stack, issued) == grpc.StatusCode.UNAUTHENTICATED
    assert _list_videos(own_stack, forged) == grpc.StatusCode.UNAUTHENTICATED
