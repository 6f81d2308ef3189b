"""A service's cached token, refused by a peer (its signing key was deleted
after a leak), is replaced instead of failing every upload: the all-in-one
process on port 0, its upload service calling metadata with the service token
it exchanged before the key was withdrawn. A token that cannot be renewed (the
service's own key was revoked) leaves the peer's refusal as it was, once."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import jwt
import pytest

from services.all_in_one import AllInOne, AllInOneSettings, start_all_in_one
from services.auth_svc.signing_keys import load_signing_keys, rotate_signing_key
from services.shared.channels import peer_channel
from services.shared.tokens import ServiceToken
from tests.calls import bearer, upload_requests
from tests.integration.test_auth_service import start_auth
from tests.media import make_clip
from vtc.v1 import auth_pb2, auth_pb2_grpc, upload_pb2_grpc


@pytest.fixture
async def vtc(tmp_path: Path) -> AsyncIterator[AllInOne]:
    running = await start_all_in_one(AllInOneSettings(data_dir=tmp_path / "var", grpc_port=0, gateway_enabled=False,
                                                      shutdown_grace_seconds=1.0))
    try:
        yield running
    finally:
        await running.stop()


async def test_uploads_go_on_after_the_key_that_signed_the_service_token_is_deleted(
        vtc: AllInOne, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0, width=320, height=180)
    signing_dir = vtc.settings.keys_dir / "signing"
    async with grpc.aio.insecure_channel(vtc.grpc_address) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        uploads = upload_pb2_grpc.UploadServiceStub(channel)

        async def admin_token() -> str:
            reply = await auth.IssueToken(auth_pb2.IssueTokenRequest(
                api_key=vtc.admin_key_file.read_text().strip()), timeout=10)
            return reply.access_token

        first = await uploads.Upload(upload_requests(clip, "before"), metadata=bearer(await admin_token()), timeout=60)
        assert first.video_id, "the upload service now holds a service token signed with the first key"
        old_token = await admin_token()
        [old_key] = load_signing_keys(signing_dir)

        rotate_signing_key(signing_dir)
        os.unlink(old_key.path)
        # Once the server's verifier dropped the old key, the cached service token is refused too.
        deadline = time.monotonic() + 10
        while True:
            try:
                await auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=bearer(old_token), timeout=10)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
                break
            assert time.monotonic() < deadline, "the deleted key is still trusted"
            await asyncio.sleep(0.1)

        new_token = await admin_token()
        assert jwt.get_unverified_header(new_token)["kid"] != old_key.kid
        second = await uploads.Upload(upload_requests(clip, "after"), metadata=bearer(new_token), timeout=60)

        assert second.video_id and second.video_id != first.video_id


async def test_a_service_whose_own_key_was_revoked_gets_the_peers_refusal_once_not_a_loop(tmp_path: Path) -> None:
    auth = await start_auth(tmp_path / "data", "")
    service_key = (auth.keys_dir / "service.key").read_text().strip()
    token = ServiceToken(lambda: service_key, auth.channel)
    channel = peer_channel(f"127.0.0.1:{auth.running.port}", token.renewal_interceptors())
    try:
        peer = auth_pb2_grpc.AuthServiceStub(channel)
        await token.metadata()  # the service holds a live token
        operator = await auth.as_operator()
        [own] = (await auth.stub.ListApiKeys(auth_pb2.ListApiKeysRequest(tenant_id="system"), metadata=operator,
                                             timeout=10)).keys
        await auth.stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id=own.tenant_id, key_id=own.key_id),
                                     metadata=operator, timeout=10)

        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as raised:  # any call that checks the token
            await peer.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=await token.metadata(), timeout=10)

        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert raised.value.details() == "this token's API key was revoked", "the peer's answer, as it was"
        assert time.monotonic() - started < 2.0
    finally:
        await channel.close()
        await auth.stop()
