"""Bus events are checked like requests: a JobRequested or JobEvent whose ids
could reach a path is dead-lettered before anything touches the disk
(in-process bus, real SQLite catalogue, local store, the real worker)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.metadata_svc.server import MetadataComponent
from services.metadata_svc.settings import Settings as MetadataSettings
from services.metadata_svc.video import NewVideo
from services.process_svc.server import ProcessComponent
from services.process_svc.settings import Settings as ProcessSettings
from services.shared.bus import Delivery
from services.shared.bus.contract import METADATA_JOB_EVENTS, PROCESS_JOBS, QueueSpec
from services.shared.bus.memory import InProcessBus
from services.shared.ids import new_id
from services.shared.storage.keys import source_key
from services.shared.storage.local import LocalDirectoryStore
from vtc.v1 import common_pb2, events_pb2

TENANT = "ten_events"


@pytest.fixture
async def bus() -> AsyncIterator[InProcessBus]:
    bus = InProcessBus()
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


async def dead_letter(bus: InProcessBus, queue: QueueSpec, timeout: float = 15) -> Delivery:
    async with asyncio.timeout(timeout):
        while not bus.dead_letters(queue):
            await asyncio.sleep(0.02)
    return bus.dead_letters(queue)[0]


@pytest.fixture
async def metadata(tmp_path: Path, bus: InProcessBus) -> AsyncIterator[MetadataComponent]:
    component = MetadataComponent(MetadataSettings(data_dir=tmp_path / "data"), bus,
                                  LocalDirectoryStore(tmp_path / "objects"))
    await component.start()
    try:
        yield component
    finally:
        await component.stop()


def everything_under(path: Path) -> set[Path]:
    return set(path.rglob("*"))


@pytest.mark.parametrize("field, value", [("job_id", "../../escaped"), ("video_id", "../../escaped"),
                                          ("tenant_id", "../.."), ("source_key", "../../../etc/passwd"),
                                          ("profile", "../../profiles/x")])
async def test_the_worker_refuses_a_job_whose_ids_would_leave_its_work_dir(
        tmp_path: Path, bus: InProcessBus, clip_640x360: Path, field: str, value: str) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    settings = ProcessSettings(data_dir=tmp_path / "data")
    events: list[events_pb2.JobEvent] = []

    async def capture(delivery: Delivery) -> None:
        events.append(delivery.decode())  # type: ignore[arg-type]

    await bus.consume(METADATA_JOB_EVENTS, capture)
    await ProcessComponent(settings, bus, store).start()
    video_id = new_id("vid")
    key = source_key(TENANT, video_id, "clip.mp4")
    await store.put_file(key, clip_640x360, "video/mp4")
    request = events_pb2.JobRequested(event_id=uuid.uuid4().hex, job_id=new_id("job"), video_id=video_id,
                                      tenant_id=TENANT, source_key=key, attempt=1)
    setattr(request, field, value)
    before = everything_under(tmp_path)

    await bus.publish("job.requested", request)
    refused = await dead_letter(bus, PROCESS_JOBS)

    assert refused.decode() == request
    await asyncio.sleep(0.2)
    assert events == [], "no job started: the request never reached the worker's paths"
    assert everything_under(tmp_path) == before, "nothing created anywhere, inside or outside the work dir"


async def test_a_late_completion_with_an_empty_video_id_does_not_wipe_the_tenant(
        tmp_path: Path, bus: InProcessBus, metadata: MetadataComponent) -> None:
    """A completed event for an unknown job removes its video's objects; with an
    empty video_id that "video" prefix would be the whole tenant."""
    store = LocalDirectoryStore(tmp_path / "objects")
    kept = tmp_path / "kept.mp4"
    kept.write_bytes(b"someone's video")
    other_video = new_id("vid")
    await store.put_file(source_key(TENANT, other_video, "kept.mp4"), kept, "video/mp4")
    event = events_pb2.JobEvent(event_id=uuid.uuid4().hex, job_id=new_id("job"), video_id="", tenant_id=TENANT,
                                attempt=1, sequence=1, status=common_pb2.JOB_STATUS_COMPLETED,
                                completed=events_pb2.JobCompleted())

    await bus.publish("job.event.completed", event)
    refused = await dead_letter(bus, METADATA_JOB_EVENTS)

    assert refused.decode() == event
    assert (await store.stat(source_key(TENANT, other_video, "kept.mp4"))).size_bytes == len(b"someone's video")


async def test_a_completion_cannot_point_a_job_at_another_tenants_objects(bus: InProcessBus,
                                                                           metadata: MetadataComponent) -> None:
    video_id, job_id = new_id("vid"), new_id("job")
    await metadata.catalog.register(NewVideo(
        video_id=video_id, job_id=job_id, tenant_id=TENANT, title="mine", filename="a.mp4", size_bytes=1,
        sha256="", probe=common_pb2.MediaProbe(), source_key=source_key(TENANT, video_id, "a.mp4"),
        profile="default"), datetime.now(UTC))
    stolen = common_pb2.Rendition(name="720p", storage_key=f"ten_other/{new_id('vid')}/renditions/720p.mp4")
    event = events_pb2.JobEvent(event_id=uuid.uuid4().hex, job_id=job_id, video_id=video_id,
                                tenant_id=TENANT, attempt=1, sequence=1, status=common_pb2.JOB_STATUS_COMPLETED,
                                completed=events_pb2.JobCompleted(renditions=[stolen]))

    await bus.publish("job.event.completed", event)

    assert (await dead_letter(bus, METADATA_JOB_EVENTS)).decode() == event
    job = await metadata.catalog.get_job(TENANT, job_id)
    assert job.renditions == [] and job.status.name != "COMPLETED", "the job never points at the other tenant"
