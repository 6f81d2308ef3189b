"""Several metadata replicas on one database and one RabbitMQ namespace, each on
its own real gRPC server (port 0), for the replica tests and the progress
benchmark. Workers are stood in for by JobEventPublisher, the process
service's own event publisher, on a bus of their own."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import grpc

from services.metadata_svc.server import MetadataComponent
from services.metadata_svc.settings import Settings
from services.process_svc.job_events import JobEventPublisher
from services.shared.bus import Bus
from services.shared.bus.amqp import RabbitMqBus
from services.shared.ids import new_id
from services.shared.server import RunningServer, start_server
from services.shared.storage.keys import source_key
from services.shared.storage.local import LocalDirectoryStore
from tests.buses import delete_namespace, test_namespace
from tests.conftest import require_service
from tests.tokens import TestKeys
from vtc.v1 import common_pb2, events_pb2, metadata_pb2, metadata_pb2_grpc

AMQP_URL = os.environ.get("VTC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
TENANT = "ten_a"


def require_rabbitmq() -> None:
    parsed = urlparse(AMQP_URL)
    require_service("RabbitMQ", parsed.hostname or "127.0.0.1", parsed.port or 5672)


class BrokerNamespace:
    """A namespace of this run's own on the shared broker, removed afterwards."""

    def __init__(self) -> None:
        self.namespace = test_namespace()
        self.name = self.namespace.name

    def settings(self) -> dict[str, str]:
        """Settings that put a service on this namespace."""
        return {"bus_namespace": self.name}

    def bus(self) -> Bus:
        return RabbitMqBus(AMQP_URL, namespace=self.namespace)

    async def cleanup(self) -> None:
        await delete_namespace(AMQP_URL, self.namespace, [])


@dataclass
class Replica:
    running: RunningServer
    component: MetadataComponent
    bus: Bus
    channel: grpc.aio.Channel

    @property
    def stub(self) -> metadata_pb2_grpc.MetadataServiceStub:
        return metadata_pb2_grpc.MetadataServiceStub(self.channel)

    async def stop(self) -> None:
        await self.channel.close()
        await self.running.stop(0)
        await self.bus.close()


@contextlib.asynccontextmanager
async def metadata_replicas(count: int, database_url: str, namespace: BrokerNamespace, keys: TestKeys,
                            data_dir: Path) -> AsyncIterator[list[Replica]]:
    replicas: list[Replica] = []
    try:
        for index in range(count):
            bus = namespace.bus()
            await bus.start()
            settings = Settings(data_dir=data_dir / f"metadata-{index}", metadata_database_url=database_url,
                                grpc_port=0)
            component = MetadataComponent(settings, bus, LocalDirectoryStore(data_dir / "objects"))
            running = await start_server([component], keys.verifier(), "127.0.0.1", 0)
            replicas.append(Replica(running, component, bus,
                                    grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")))
        yield replicas
    finally:
        for replica in reversed(replicas):
            await replica.stop()


async def register_job(replica: Replica, keys: TestKeys) -> events_pb2.JobRequested:
    """A video and its queued job, as the upload service registers them; returns what a worker is handed."""
    video_id, job_id = new_id("vid"), new_id("job")
    await replica.stub.RegisterVideo(metadata_pb2.RegisterVideoRequest(
        video_id=video_id, job_id=job_id, tenant_id=TENANT, title="clip", filename="clip.mp4",
        size_bytes=1000, sha256="ab" * 32, source_key=source_key(TENANT, video_id, "clip.mp4"), profile="default",
        probe=common_pb2.MediaProbe(container="mov,mp4,m4a,3gp,3g2,mj2", duration_seconds=2.0, width=640,
                                    height=360, fps=30.0, video_codec="h264", video_frames=60)),
        metadata=keys.metadata(tenant_id="system", scopes=("service",), subject="service:upload"))
    return events_pb2.JobRequested(job_id=job_id, video_id=video_id, tenant_id=TENANT, profile="default",
                                   attempt=1)


def worker_events(bus: Bus, request: events_pb2.JobRequested) -> JobEventPublisher:
    return JobEventPublisher(bus, request, attempt=request.attempt)


def as_reader(keys: TestKeys) -> Sequence[tuple[str, str]]:
    return keys.metadata(tenant_id=TENANT, scopes=("videos:read",))
