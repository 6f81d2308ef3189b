"""A real transcode job through the worker with its objects in B2 (b2sdk's
RawSimulator): transient B2 errors are retried and the job completes; a
permanent one ends the job FAILED with B2's reason, without redelivery."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from b2sdk.v2.exception import B2ConnectionError, ServiceError, StorageCapExceeded

from services.process_svc.server import ProcessComponent
from services.process_svc.settings import Settings
from services.shared.bus import Delivery
from services.shared.bus.contract import JOB_EVENTS, JOB_REQUESTED, PROCESS_JOBS, QueueSpec
from services.shared.bus.memory import InProcessBus
from services.shared.storage.keys import source_key
from tests.b2sim import SimulatedB2, simulated_b2
from tests.media import decoded_summary
from vtc.v1 import common_pb2, events_pb2

TENANT = "ten_b2"


class B2Worker:
    def __init__(self, tmp_path: Path, bus: InProcessBus, b2: SimulatedB2) -> None:
        self.bus, self.b2 = bus, b2
        self.settings = Settings(data_dir=tmp_path / "data", process_progress_interval_seconds=0.05)
        self.events: asyncio.Queue[events_pb2.JobEvent] = asyncio.Queue()

    async def start(self) -> None:
        async def capture(delivery: Delivery) -> None:
            event = delivery.decode()
            assert isinstance(event, events_pb2.JobEvent)
            self.events.put_nowait(event)

        await self.bus.consume(QueueSpec("test.job-events", (JOB_EVENTS,)), capture)
        await ProcessComponent(self.settings, self.bus, self.b2.store).start()

    async def run_job(self, source: Path, upload_errors: list[Exception]) -> list[events_pb2.JobEvent]:
        """Stores the source, then has B2 fail the next uploads (the rendition's) with `upload_errors`."""
        video_id = f"vid_{uuid.uuid4().hex[:20]}"
        key = source_key(TENANT, video_id, source.name)
        await self.b2.store.put_file(key, source, "video/mp4")
        self.b2.raw.set_upload_errors(upload_errors)
        await self.bus.publish(JOB_REQUESTED, events_pb2.JobRequested(
            event_id=uuid.uuid4().hex, job_id=f"job_{uuid.uuid4().hex[:20]}", video_id=video_id,
            tenant_id=TENANT, source_key=key, attempt=1))
        events: list[events_pb2.JobEvent] = []
        async with asyncio.timeout(60):
            while not events or events[-1].WhichOneof("kind") not in ("completed", "failed"):
                events.append(await self.events.get())
        return events


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[B2Worker]:
    bus = InProcessBus()
    await bus.start()
    worker = B2Worker(tmp_path, bus, simulated_b2())
    await worker.start()
    try:
        yield worker
    finally:
        await bus.close()


async def test_transient_b2_errors_are_retried_and_the_job_completes(
        worker: B2Worker, clip_640x360: Path, tmp_path: Path) -> None:
    events = await worker.run_job(clip_640x360, [ServiceError("503 service_unavailable"),
                                                 B2ConnectionError("connection reset")])

    assert [e.WhichOneof("kind") for e in events].count("started") == 1, "retried inside b2sdk, no redelivery"
    assert events[-1].status == common_pb2.JOB_STATUS_COMPLETED
    assert worker.b2.raw.upload_errors == []
    rendition = events[-1].completed.renditions[0]
    download = tmp_path / "from-b2.mp4"
    await worker.b2.store.get_file(rendition.storage_key, download)
    assert download.stat().st_size == rendition.size_bytes
    summary = decoded_summary(download)
    assert (summary["width"], summary["height"], summary["frames"]) == (640, 360, 60)


async def test_permanent_b2_error_ends_the_job_failed_with_its_reason(
        worker: B2Worker, clip_640x360: Path) -> None:
    events = await worker.run_job(clip_640x360, [StorageCapExceeded()])

    assert [e.WhichOneof("kind") for e in events].count("started") == 1, "not redelivered: retrying cannot help"
    assert events[-1].WhichOneof("kind") == "failed"
    assert events[-1].status == common_pb2.JOB_STATUS_FAILED
    reason = events[-1].failed.reason
    assert reason.startswith("B2 refused to store 'ten_b2/")
    assert "storage cap exceeded. Raise the cap in the Backblaze account (Caps & Alerts)" in reason
    assert worker.bus.dead_letters(PROCESS_JOBS) == []
