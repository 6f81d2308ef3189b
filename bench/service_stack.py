"""The whole service for benchmarks: the all-in-one process (four services on
one gRPC server) in this event loop, on the bus and database given, with
tenants made through the auth API and uploads made through the upload API,
as a customer would."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.api import httpbody_pb2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.all_in_one import AllInOne, AllInOneSettings, start_all_in_one  # noqa: E402
from vtc.v1 import (  # noqa: E402
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    metadata_pb2,
    metadata_pb2_grpc,
    upload_pb2,
    upload_pb2_grpc,
)

OUT = ROOT / "bench" / "out"


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@dataclass
class Tenant:
    tenant_id: str
    token: str


class ServiceStack:
    def __init__(self, vtc: AllInOne) -> None:
        self.vtc = vtc
        self.channel = grpc.aio.insecure_channel(vtc.grpc_address)
        self.uploads = upload_pb2_grpc.UploadServiceStub(self.channel)
        self.metadata = metadata_pb2_grpc.MetadataServiceStub(self.channel)

    @classmethod
    async def start(cls, data_dir: Path, **settings: Any) -> ServiceStack:
        """`settings`: any service's settings by field name (a service's own ones reach it
        the way they would in production: as VTC_ environment variables)."""
        common = {k: v for k, v in settings.items() if k in AllInOneSettings.model_fields}
        own = {f"VTC_{k.upper()}": str(v) for k, v in settings.items() if k not in common}
        saved = {k: os.environ.get(k) for k in own}
        os.environ.update(own)
        try:
            vtc = await start_all_in_one(AllInOneSettings(data_dir=data_dir, grpc_port=0, gateway_enabled=False,
                                                          shutdown_grace_seconds=1.0, **common))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return cls(vtc)

    async def stop(self) -> None:
        await self.channel.close()
        await self.vtc.stop()

    async def tenant(self, name: str) -> Tenant:
        auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        operator_key = self.vtc.operator_key_file.read_text().strip()
        admin = bearer((await auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=operator_key))).access_token)
        tenant = await auth.CreateTenant(auth_pb2.CreateTenantRequest(name=name), metadata=admin, timeout=10)
        key = await auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=tenant.tenant_id, name=name),
                                      metadata=admin, timeout=10)
        token = (await auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=key.secret))).access_token
        return Tenant(tenant.tenant_id, token)

    async def upload(self, tenant: Tenant, clip: bytes, name: str = "clip.mp4") -> upload_pb2.UploadResponse:
        async def requests() -> AsyncIterator[upload_pb2.UploadRequest]:
            yield upload_pb2.UploadRequest(header=upload_pb2.UploadHeader(
                filename=name, size_bytes=len(clip), sha256=hashlib.sha256(clip).hexdigest()),
                chunk=httpbody_pb2.HttpBody(data=clip))

        return await self.uploads.Upload(requests(), metadata=bearer(tenant.token), timeout=60)

    async def seconds_until_running(self, tenant: Tenant, job_id: str, since: float) -> float:
        """From `since` (time.monotonic()) until this client sees the job RUNNING (or finished)."""
        watch = self.metadata.WatchJob(metadata_pb2.WatchJobRequest(job_id=job_id), metadata=bearer(tenant.token))
        try:
            async for update in watch:
                if update.job.status != common_pb2.JOB_STATUS_QUEUED:
                    return time.monotonic() - since
        finally:
            watch.cancel()
        raise RuntimeError(f"job {job_id} ended without ever running")

    async def wait_finished(self, tenant: Tenant, job_id: str, timeout: float = 600) -> common_pb2.Job:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = await self.metadata.GetJob(metadata_pb2.GetJobRequest(job_id=job_id), metadata=bearer(tenant.token))
            if job.status in (common_pb2.JOB_STATUS_COMPLETED, common_pb2.JOB_STATUS_FAILED,
                              common_pb2.JOB_STATUS_CANCELLED):
                return job
            await asyncio.sleep(0.05)
        raise TimeoutError(f"job {job_id} did not finish in {timeout} s")


def clip(seconds: float, width: int, height: int) -> bytes:
    """A synthetic clip with audio (cached in bench/out/)."""
    from tests.media import make_clip

    path = OUT / f"clip-{seconds:g}s-{width}x{height}.mp4"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        make_clip(path, seconds=seconds, width=width, height=height)
    return path.read_bytes()


def tiny_clip() -> bytes:
    """0.5 s of 160x90: the smallest real job."""
    return clip(0.5, 160, 90)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]
