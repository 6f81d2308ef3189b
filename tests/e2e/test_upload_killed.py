"""Fault test: the upload service is SIGKILLed between RegisterVideo and its
reply. The client sees the call fail, but the job, recorded with its dispatch
in metadata's outbox, still runs to COMPLETED."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from google.api import httpbody_pb2

from services.all_in_one import AllInOneSettings, start_all_in_one
from tests.media import make_clip
from vtc.v1 import auth_pb2, auth_pb2_grpc, common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2, upload_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


async def test_an_upload_service_killed_after_register_video_still_gets_its_job_completed(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.5, width=160, height=90).read_bytes()
    vtc = await start_all_in_one(AllInOneSettings(data_dir=data_dir, grpc_port=0, gateway_enabled=False,
                                                  shutdown_grace_seconds=1.0))
    channel = grpc.aio.insecure_channel(vtc.grpc_address)
    upload_port = _free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VTC_")},
           "VTC_DATA_DIR": str(data_dir), "VTC_GRPC_PORT": str(upload_port), "VTC_AUTH_ADDR": vtc.grpc_address,
           "VTC_METADATA_ADDR": vtc.grpc_address, "VTC_PROCESS_ADDR": vtc.grpc_address,
           "VTC_UPLOAD_TMP_DIR": str(tmp_path / "spool")}
    log = tmp_path / "upload.log"
    with log.open("wb") as sink:
        upload_service = subprocess.Popen([sys.executable, "-m", "tests.faults.upload_dies_after_register"],
                                          cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        operator_key = vtc.operator_key_file.read_text().strip()
        admin = bearer((await auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=operator_key))).access_token)
        tenant = await auth.CreateTenant(auth_pb2.CreateTenantRequest(name="Killed Upload Co"), metadata=admin)
        key = await auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=tenant.tenant_id, name="up"),
                                      metadata=admin)
        token = (await auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=key.secret))).access_token

        async with grpc.aio.insecure_channel(f"127.0.0.1:{upload_port}") as upload_channel:
            await asyncio.wait_for(upload_channel.channel_ready(), 60)

            async def requests() -> AsyncIterator[upload_pb2.UploadRequest]:
                yield upload_pb2.UploadRequest(header=upload_pb2.UploadHeader(
                    filename="clip.mp4", size_bytes=len(clip), sha256=hashlib.sha256(clip).hexdigest()),
                    chunk=httpbody_pb2.HttpBody(data=clip))

            try:
                await upload_pb2_grpc.UploadServiceStub(upload_channel).Upload(
                    requests(), metadata=bearer(token), timeout=60)
                raise AssertionError("the upload service replied; it was to die before that")
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        assert await asyncio.to_thread(upload_service.wait, 10) == -9, log.read_text()[-3000:]

        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        [video] = (await metadata.ListVideos(metadata_pb2.ListVideosRequest(), metadata=bearer(token))).videos
        deadline = time.monotonic() + 60
        while (job := await metadata.GetJob(metadata_pb2.GetJobRequest(job_id=video.job.job_id),
                                            metadata=bearer(token))).status not in (
                common_pb2.JOB_STATUS_COMPLETED, common_pb2.JOB_STATUS_FAILED):
            assert time.monotonic() < deadline, f"stuck: {job}"
            await asyncio.sleep(0.1)
        assert job.status == common_pb2.JOB_STATUS_COMPLETED, job.error
        print(f"\nupload service SIGKILLed after RegisterVideo: job {common_pb2.JobStatus.Name(job.status)}")
    finally:
        if upload_service.poll() is None:
            upload_service.kill()
            upload_service.wait(10)
        await channel.close()
        await vtc.stop()
