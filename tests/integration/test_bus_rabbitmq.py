"""What only RabbitMQ can show, on the real broker on 127.0.0.1:5672 (the
bus contract itself is tests/integration/test_bus_contract.py): the worker
runs a job end to end over it. Every test uses a namespace of its own and
deletes it, leaving the broker as found."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.process_svc.server import ProcessComponent
from services.process_svc.settings import Settings as ProcessSettings
from services.shared.bus import Delivery
from services.shared.bus.contract import JOB_EVENTS, JOB_REQUESTED
from services.shared.ids import new_id
from services.shared.storage.local import LocalDirectoryStore
from tests.buses import Backend, backend
from tests.media import make_clip
from vtc.v1 import events_pb2

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def broker() -> AsyncIterator[Backend]:
    async with backend("rabbitmq") as made:
        yield made


async def test_the_transcode_worker_runs_a_job_over_rabbitmq(broker: Backend, tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0, width=320, height=180)
    video_id = new_id("vid")
    await store.put_file(f"ten_a/{video_id}/source.mp4", clip, "video/mp4")
    bus = broker.bus()
    await bus.start()
    events: asyncio.Queue[Delivery] = asyncio.Queue()
    component = ProcessComponent(ProcessSettings(data_dir=tmp_path), bus, store)
    try:
        await bus.consume(broker.queue("events", JOB_EVENTS), events.put)
        await component.start()
        job = events_pb2.JobRequested(event_id=uuid.uuid4().hex, job_id=new_id("job"), video_id=video_id,
                                      tenant_id="ten_a", source_key=f"ten_a/{video_id}/source.mp4",
                                      profile="default", attempt=1)
        job.probe.width, job.probe.height, job.probe.fps, job.probe.duration_seconds = 320, 180, 30, 1.0
        await bus.publish(JOB_REQUESTED, job)
        while True:
            event = (await asyncio.wait_for(events.get(), 60)).decode()
            if event.WhichOneof("kind") in ("completed", "failed"):
                break
        assert event.WhichOneof("kind") == "completed", event.failed.reason
        [rendition] = event.completed.renditions
        assert (rendition.width, rendition.height) == (320, 180)
        assert (await store.stat(rendition.storage_key)).size_bytes == rendition.size_bytes
    finally:
        await component.stop()
        await bus.close()
