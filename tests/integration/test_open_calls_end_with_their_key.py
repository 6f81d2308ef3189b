"""A call already under way ends when its API key is revoked: the all-in-one
process on port 0, an upload streaming its chunks while an admin revokes the
key its token came from. The next message is refused (UNAUTHENTICATED), not
the whole file accepted."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from services.all_in_one import AllInOne, AllInOneSettings, start_all_in_one
from tests.calls import bearer
from tests.media import make_clip
from vtc.v1 import auth_pb2, auth_pb2_grpc, metadata_pb2, metadata_pb2_grpc, upload_pb2, upload_pb2_grpc

CHUNK = 16 * 1024


@pytest.fixture
async def vtc(tmp_path: Path) -> AsyncIterator[AllInOne]:
    running = await start_all_in_one(AllInOneSettings(data_dir=tmp_path / "var", grpc_port=0, gateway_enabled=False,
                                                      shutdown_grace_seconds=1.0))
    try:
        yield running
    finally:
        await running.stop()


async def test_revoking_a_key_ends_its_upload_in_progress(vtc: AllInOne, tmp_path: Path) -> None:
    data = make_clip(tmp_path / "clip.mp4", seconds=1.0, width=320, height=180).read_bytes()
    assert len(data) > 2 * CHUNK
    async with grpc.aio.insecure_channel(vtc.grpc_address) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        admin = bearer((await auth.IssueToken(auth_pb2.IssueTokenRequest(  # the operator: tenants and their keys
            api_key=vtc.operator_key_file.read_text().strip()), timeout=10)).access_token)
        tenant = await auth.CreateTenant(auth_pb2.CreateTenantRequest(name="Leaky Co"), metadata=admin, timeout=10)
        key = await auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=tenant.tenant_id), metadata=admin,
                                      timeout=10)
        token = (await auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=key.secret), timeout=10)).access_token
        other = await auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=tenant.tenant_id, name="kept"),
                                        metadata=admin, timeout=10)
        other_token = (await auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=other.secret), timeout=10)).access_token
        first_chunk_sent, revoked = asyncio.Event(), asyncio.Event()

        async def requests() -> AsyncIterator[upload_pb2.UploadRequest]:
            yield upload_pb2.UploadRequest(header=upload_pb2.UploadHeader(
                filename="clip.mp4", size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest()))
            yield upload_pb2.UploadRequest(chunk={"data": data[:CHUNK]})
            first_chunk_sent.set()
            await revoked.wait()
            for offset in range(CHUNK, len(data), CHUNK):
                yield upload_pb2.UploadRequest(chunk={"data": data[offset:offset + CHUNK]})

        upload = upload_pb2_grpc.UploadServiceStub(channel).Upload(requests(), metadata=bearer(token), timeout=30)
        await first_chunk_sent.wait()
        await auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id=tenant.tenant_id, key_id=key.key.key_id),
                                metadata=admin, timeout=10)
        await asyncio.sleep(0.3)  # the broadcast reaches the server's verifier
        revoked.set()

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await upload
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert raised.value.details() == "this token's API key was revoked"
        # Nothing of it was kept: the tenant (seen through its other key) has no video.
        videos = await metadata_pb2_grpc.MetadataServiceStub(channel).ListVideos(
            metadata_pb2.ListVideosRequest(), metadata=bearer(other_token), timeout=10)
        assert list(videos.videos) == []
