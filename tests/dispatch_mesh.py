"""Metadata (the dispatcher) and real transcode workers on one bus, without
the upload service: sources are stored and registered the way upload does it
(store, then RegisterVideo with a service token), so tests can stop exactly
after RegisterVideo, as if the upload service died there."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from services.metadata_svc.server import MetadataComponent
from services.metadata_svc.settings import Settings as MetadataSettings
from services.process_svc.server import ProcessComponent
from services.process_svc.settings import Settings as ProcessSettings
from services.shared.bus import Bus
from services.shared.ids import new_id
from services.shared.server import RunningServer, start_server
from services.shared.storage.keys import source_key
from services.shared.storage.local import LocalDirectoryStore
from tests.tokens import TestKeys
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc

TERMINAL = (common_pb2.JOB_STATUS_COMPLETED, common_pb2.JOB_STATUS_FAILED, common_pb2.JOB_STATUS_CANCELLED)


def clip_probe(width: int = 320, height: int = 180, seconds: float = 1.0) -> common_pb2.MediaProbe:
    return common_pb2.MediaProbe(container="mov,mp4,m4a,3gp,3g2,mj2", duration_seconds=seconds, width=width,
                                 height=height, fps=30.0, video_codec="h264", audio_codec="aac", has_audio=True,
                                 video_frames=round(seconds * 30))


@dataclass
class DispatchMesh:
    data_dir: Path
    bus: Bus
    metadata: MetadataComponent
    server: RunningServer
    keys: TestKeys
    channel: grpc.aio.Channel
    store: LocalDirectoryStore
    workers: list[ProcessComponent] = field(default_factory=list)

    @property
    def stub(self) -> metadata_pb2_grpc.MetadataServiceStub:
        return metadata_pb2_grpc.MetadataServiceStub(self.channel)

    def as_tenant(self, tenant: str) -> list[tuple[str, str]]:
        return self.keys.metadata(tenant_id=tenant, scopes=("videos:read", "videos:write"))

    async def register(self, tenant: str, clip: Path, *, size_bytes: int | None = None,
                       title: str = "clip") -> metadata_pb2.RegisterVideoResponse:
        """What the upload service does once the bytes are checked: store the source, then RegisterVideo."""
        video_id, job_id = new_id("vid"), new_id("job")
        key = source_key(tenant, video_id, clip.name)
        await self.store.put_file(key, clip, "video/mp4")
        return await self.stub.RegisterVideo(metadata_pb2.RegisterVideoRequest(
            video_id=video_id, job_id=job_id, tenant_id=tenant, title=title, filename=clip.name,
            size_bytes=clip.stat().st_size if size_bytes is None else size_bytes, sha256="ab" * 32,
            probe=clip_probe(), source_key=key, profile="default"),
            metadata=self.keys.metadata(tenant_id="system", scopes=("service",), subject="service:upload"),
            timeout=30)

    async def job(self, tenant: str, job_id: str) -> common_pb2.Job:
        return await self.stub.GetJob(metadata_pb2.GetJobRequest(job_id=job_id), metadata=self.as_tenant(tenant),
                                      timeout=10)

    async def wait_until(self, tenant: str, job_id: str, statuses: tuple[int, ...],
                         timeout: float = 60.0) -> common_pb2.Job:
        deadline = time.monotonic() + timeout
        while True:
            job = await self.job(tenant, job_id)
            if job.status in statuses:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} never reached {statuses}; last seen:\n{job}")
            await asyncio.sleep(0.02)

    async def add_worker(self, **settings: Any) -> ProcessComponent:
        worker = ProcessComponent(ProcessSettings(data_dir=self.data_dir / f"worker{len(self.workers)}",
                                                  process_progress_interval_seconds=0.2, **settings),
                                  self.bus, self.store)
        await worker.start()
        self.workers.append(worker)
        return worker

    async def stop(self) -> None:
        await self.channel.close()
        await self.server.stop(0)
        await self.bus.close()


async def start_dispatch_mesh(data_dir: Path, bus: Bus, database_url: str, **metadata_settings: Any) -> DispatchMesh:
    """Metadata on its own gRPC server (port 0) on `bus`, started; add workers with add_worker()."""
    await bus.start()
    keys = TestKeys()
    store = LocalDirectoryStore(data_dir / "objects")
    settings = MetadataSettings(data_dir=data_dir / "metadata", metadata_database_url=database_url, grpc_port=0,
                                **metadata_settings)
    metadata = MetadataComponent(settings, bus, store)
    server = await start_server([metadata], keys.verifier(), "127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    return DispatchMesh(data_dir, bus, metadata, server, keys, channel, store)
