"""The metadata service on a real gRPC server (port 0): registering, reading
and paging videos per tenant, applying job events from the bus idempotently,
WatchJob, downloads, deletes, and dispatching again on start the jobs a gone bus lost. Each
test runs on SQLite and, where it is reachable, on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy.engine import Connection

from services.metadata_svc.server import MetadataComponent
from services.metadata_svc.settings import Settings
from services.shared.bus import Delivery
from services.shared.bus.contract import (
    JOB_CANCEL,
    METADATA_JOB_EVENTS,
    PROCESS_JOBS,
    job_event_key,
)
from services.shared.bus.memory import InProcessBus
from services.shared.db import sqlite_url
from services.shared.errors import NotFound
from services.shared.ids import new_id
from services.shared.server import RunningServer, start_server
from services.shared.storage.keys import rendition_key, source_key
from services.shared.storage.local import LocalDirectoryStore
from tests.databases import private_postgres_database
from tests.tokens import TestKeys
from vtc.v1 import common_pb2, events_pb2, metadata_pb2, metadata_pb2_grpc

TENANT_A, TENANT_B = "ten_a", "ten_b"
ABSENT_VIDEO, ABSENT_JOB = "vid_" + "0" * 20, "job_" + "0" * 20  # well formed, never made
READ_WRITE = ("videos:read", "videos:write")
GRPC_CLIENT_MAX_RECEIVE = 4 * 1024 * 1024  # a client's default


# --- the database under the service -------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "metadata.db")
        return
    async with private_postgres_database("vtc_metadata_test") as url:
        yield url


# --- the service ---------------------------------------------------------------------------------

@dataclass
class Metadata:
    running: RunningServer
    component: MetadataComponent
    bus: InProcessBus
    store: LocalDirectoryStore
    keys: TestKeys
    channel: grpc.aio.Channel

    @property
    def stub(self) -> metadata_pb2_grpc.MetadataServiceStub:
        return metadata_pb2_grpc.MetadataServiceStub(self.channel)

    def as_user(self, tenant: str = TENANT_A, scopes: Sequence[str] = READ_WRITE) -> list[tuple[str, str]]:
        return self.keys.metadata(tenant_id=tenant, scopes=scopes)

    def as_upload_service(self) -> list[tuple[str, str]]:
        return self.keys.metadata(tenant_id="system", scopes=("service",), subject="service:upload")

    async def stop(self) -> None:
        await self.channel.close()
        await self.running.stop(0)
        await self.bus.close()


async def start_metadata(tmp_path: Path, database_url: str, keys: TestKeys, bus: InProcessBus, *,
                         sweep: tuple[float, float] = (3600.0, 600.0), **more: Any) -> Metadata:
    settings = Settings(data_dir=tmp_path / "data", metadata_database_url=database_url, grpc_port=0,
                        metadata_orphan_source_grace_seconds=sweep[0], metadata_orphan_sweep_interval_seconds=sweep[1],
                        **more)
    store = LocalDirectoryStore(tmp_path / "objects")
    component = MetadataComponent(settings, bus, store)
    running = await start_server([component], keys.verifier(), "127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    return Metadata(running, component, bus, store, keys, channel)


@pytest.fixture
def keys() -> TestKeys:
    return TestKeys()


@pytest.fixture
async def metadata(tmp_path: Path, database_url: str, keys: TestKeys) -> AsyncIterator[Metadata]:
    service = await start_metadata(tmp_path, database_url, keys, InProcessBus())
    try:
        yield service
    finally:
        await service.stop()


# --- helpers -------------------------------------------------------------------------------------

def probe() -> common_pb2.MediaProbe:
    return common_pb2.MediaProbe(
        container="mov,mp4,m4a,3gp,3g2,mj2", duration_seconds=2.0, bit_rate=1_500_000, width=640, height=360,
        fps=30.0, video_codec="h264", audio_codec="aac", has_audio=True, video_frames=60,
        streams=[common_pb2.StreamInfo(index=0, kind="video", codec="h264", width=640, height=360, fps=30.0,
                                       frames=60),
                 common_pb2.StreamInfo(index=1, kind="audio", codec="aac", sample_rate=48000, channels=2)])


async def register(service: Metadata, tenant: str = TENANT_A,
                   title: str = "clip") -> metadata_pb2.RegisterVideoResponse:
    video_id, job_id = new_id("vid"), new_id("job")
    return await service.stub.RegisterVideo(metadata_pb2.RegisterVideoRequest(
        video_id=video_id, job_id=job_id, tenant_id=tenant, title=title, filename=f"{title}.mp4",
        size_bytes=123_456, sha256="ab" * 32, probe=probe(), source_key=source_key(tenant, video_id, "clip.mp4"),
        profile="default"), metadata=service.as_upload_service())


def job_event(job: common_pb2.Job, sequence: int, *, attempt: int = 1, **kind: Any) -> events_pb2.JobEvent:
    event = events_pb2.JobEvent(event_id=new_id("evt"), job_id=job.job_id, video_id=job.video_id,
                                tenant_id=job.tenant_id, attempt=attempt, sequence=sequence, **kind)
    event.occurred_at.GetCurrentTime()
    return event


def started(job: common_pb2.Job, sequence: int, **kw: Any) -> events_pb2.JobEvent:
    return job_event(job, sequence, started=events_pb2.JobStarted(worker="worker-1"),
                     status=common_pb2.JOB_STATUS_RUNNING, **kw)


def progress(job: common_pb2.Job, sequence: int, percent: float, **kw: Any) -> events_pb2.JobEvent:
    return job_event(job, sequence, progress=common_pb2.Progress(percent=percent, frames=int(percent * 0.6),
                                                                 total_frames=60, fps=90.0, speed=3.0),
                     status=common_pb2.JOB_STATUS_RUNNING, **kw)


def renditions_of(job: common_pb2.Job, *sizes: tuple[str, int, int]) -> list[common_pb2.Rendition]:
    return [common_pb2.Rendition(name=name, width=w, height=h, bitrate=900_000, size_bytes=225_000,
                                 duration_seconds=2.0, storage_key=rendition_key(job.tenant_id, job.video_id, name),
                                 container="mp4", video_codec="h264", audio_codec="aac", content_type="video/mp4")
            for name, w, h in sizes]


def completed(job: common_pb2.Job, sequence: int, renditions: list[common_pb2.Rendition],
              outputs: list[common_pb2.Output] | None = None) -> events_pb2.JobEvent:
    return job_event(job, sequence, completed=events_pb2.JobCompleted(renditions=renditions, outputs=outputs or []),
                     status=common_pb2.JOB_STATUS_COMPLETED)


def outputs_of(renditions: list[common_pb2.Rendition]) -> list[common_pb2.Output]:
    """Each rendition as the video output that made it, then a poster that failed."""
    made = [common_pb2.Output(name=r.name, type="video", status=common_pb2.OUTPUT_STATUS_COMPLETED, rendition=r,
                              files=[common_pb2.OutputFile(path=f"renditions/{r.name}.mp4", storage_key=r.storage_key,
                                                           content_type=r.content_type, size_bytes=r.size_bytes)])
            for r in renditions]
    return [*made, common_pb2.Output(name="poster", type="poster", status=common_pb2.OUTPUT_STATUS_FAILED,
                                     error="no picture could be written")]


def failed(job: common_pb2.Job, sequence: int, reason: str) -> events_pb2.JobEvent:
    return job_event(job, sequence, failed=events_pb2.JobFailed(reason=reason), status=common_pb2.JOB_STATUS_FAILED)


async def publish(service: Metadata, *events: events_pb2.JobEvent) -> None:
    for event in events:
        await service.bus.publish(job_event_key(event.WhichOneof("kind")), event)


async def get_job(service: Metadata, job_id: str, tenant: str = TENANT_A) -> common_pb2.Job:
    return await service.stub.GetJob(metadata_pb2.GetJobRequest(job_id=job_id), metadata=service.as_user(tenant))


async def wait_for_job(service: Metadata, job_id: str, check: Callable[[common_pb2.Job], bool],
                       timeout: float = 10.0) -> common_pb2.Job:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await get_job(service, job_id)
        if check(job):
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job never reached the expected state; last seen:\n{job}")
        await asyncio.sleep(0.02)


async def drain_events(service: Metadata, barrier_job: common_pb2.Job, sequence: int) -> None:
    """Returns once every event published so far was handled: the consumer takes
    events one at a time in order, so when a later event for another job shows,
    the earlier ones are done."""
    await publish(service, progress(barrier_job, sequence, float(sequence)))
    await wait_for_job(service, barrier_job.job_id, lambda j: j.progress.percent == float(sequence))


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


# --- registering, reading, paging, tenants -------------------------------------------------------

async def test_registered_video_reads_back_with_its_queued_job(metadata: Metadata) -> None:
    registered = await register(metadata, title="holiday")
    video = await metadata.stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=registered.video.video_id),
                                         metadata=metadata.as_user())
    assert (video.title, video.filename, video.size_bytes, video.tenant_id) == (
        "holiday", "holiday.mp4", 123_456, TENANT_A)
    assert video.probe == probe()
    assert video.source_key == registered.video.source_key
    assert video.job.job_id == registered.job.job_id and video.job.status == common_pb2.JOB_STATUS_QUEUED
    assert video.status == common_pb2.VIDEO_STATUS_PROCESSING
    assert video.job.attempt == 1 and video.job.profile == "default"
    assert video.created_at.seconds > 0 and video.job.created_at == video.created_at
    job = await get_job(metadata, registered.job.job_id)
    assert job == registered.job


async def test_register_again_with_the_same_ids_returns_the_same_record(metadata: Metadata) -> None:
    first = await register(metadata)
    request = metadata_pb2.RegisterVideoRequest(
        video_id=first.video.video_id, job_id=first.job.job_id, tenant_id=TENANT_A, title="clip",
        filename="clip.mp4", size_bytes=123_456, sha256="ab" * 32, probe=probe(),
        source_key=first.video.source_key, profile="default")
    again = await metadata.stub.RegisterVideo(request, metadata=metadata.as_upload_service())
    assert again == first
    request.job_id = new_id("job")
    error = await rpc_error(metadata.stub.RegisterVideo(request, metadata=metadata.as_upload_service()))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_only_a_service_token_may_register_videos(metadata: Metadata) -> None:
    video_id = new_id("vid")
    request = metadata_pb2.RegisterVideoRequest(video_id=video_id, job_id=new_id("job"), tenant_id=TENANT_A,
                                                source_key=source_key(TENANT_A, video_id, "x.mp4"))
    error = await rpc_error(metadata.stub.RegisterVideo(request, metadata=metadata.as_user(scopes=READ_WRITE)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "service" in error.details()
    error = await rpc_error(metadata.stub.RegisterVideo(request))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    listed = await metadata.stub.ListVideos(metadata_pb2.ListVideosRequest(), metadata=metadata.as_user())
    assert list(listed.videos) == []


async def test_register_refuses_a_source_outside_the_videos_storage_prefix(metadata: Metadata) -> None:
    request = metadata_pb2.RegisterVideoRequest(video_id=new_id("vid"), job_id=new_id("job"), tenant_id=TENANT_A,
                                                source_key=f"{TENANT_B}/elsewhere/source.mp4")
    error = await rpc_error(metadata.stub.RegisterVideo(request, metadata=metadata.as_upload_service()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "source_key" in error.details()


async def test_list_videos_pages_newest_first_without_duplicates(metadata: Metadata) -> None:
    ids = [(await register(metadata, title=f"v{i}")).video.video_id for i in range(3)]
    await register(metadata, tenant=TENANT_B)  # another tenant's video never shows
    first = await metadata.stub.ListVideos(metadata_pb2.ListVideosRequest(page_size=2), metadata=metadata.as_user())
    assert len(first.videos) == 2 and first.next_page_token
    second = await metadata.stub.ListVideos(
        metadata_pb2.ListVideosRequest(page_size=2, page_token=first.next_page_token), metadata=metadata.as_user())
    assert len(second.videos) == 1 and second.next_page_token == ""
    listed = [v.video_id for v in [*first.videos, *second.videos]]
    assert listed == list(reversed(ids))
    assert all(v.job.status == common_pb2.JOB_STATUS_QUEUED for v in [*first.videos, *second.videos])
    everything = await metadata.stub.ListVideos(metadata_pb2.ListVideosRequest(), metadata=metadata.as_user())
    assert [v.video_id for v in everything.videos] == listed and everything.next_page_token == ""


async def test_a_page_token_we_did_not_issue_is_rejected(metadata: Metadata) -> None:
    error = await rpc_error(metadata.stub.ListVideos(metadata_pb2.ListVideosRequest(page_token="bogus"),
                                                     metadata=metadata.as_user()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in error.details()



def heavy_probe() -> common_pb2.MediaProbe:
    """A probe near the 64 KiB a video may carry (a source with very many streams)."""
    heavy = probe()
    for index in range(2, 2300):
        heavy.streams.add(index=index, kind="audio", codec="aac", sample_rate=48000, channels=2, bit_rate=128000)
    assert 60_000 < heavy.ByteSize() < 64 * 1024
    return heavy


async def test_list_videos_pages_by_size_so_a_page_never_nears_the_message_limit(metadata: Metadata) -> None:
    registered = set()
    for _ in range(80):  # 80 x ~62 KB: about 5 MB, over the 4 MiB a gRPC client accepts by default
        video_id = new_id("vid")
        await metadata.stub.RegisterVideo(metadata_pb2.RegisterVideoRequest(
            video_id=video_id, job_id=new_id("job"), tenant_id=TENANT_A, title="é" * 256, filename="clip.mp4",
            probe=heavy_probe(), source_key=source_key(TENANT_A, video_id, "clip.mp4"), profile="default"),
            metadata=metadata.as_upload_service())
        registered.add(video_id)
    listed: list[str] = []
    sizes: list[int] = []
    token = ""
    while True:
        page = await metadata.stub.ListVideos(metadata_pb2.ListVideosRequest(page_size=500, page_token=token),
                                              metadata=metadata.as_user())
        sizes.append(page.ByteSize())
        listed.extend(v.video_id for v in page.videos)
        if not (token := page.next_page_token):
            break
    print(f"\n80 videos listed in {len(sizes)} pages, "
          f"largest {max(sizes)} B, all {sum(sizes)} B")
    assert len(listed) == len(set(listed)) == 80 and set(listed) == registered
    assert len(sizes) >= 5 and max(sizes) <= 1024 * 1024 < GRPC_CLIENT_MAX_RECEIVE, sizes

async def test_another_tenant_sees_nothing_of_tenant_a(metadata: Metadata) -> None:
    registered = await register(metadata, tenant=TENANT_A)
    as_b = metadata.as_user(TENANT_B)
    video_id, job_id = registered.video.video_id, registered.job.job_id
    missing_video = await rpc_error(metadata.stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=ABSENT_VIDEO),
                                                           metadata=as_b))
    missing_job = await rpc_error(metadata.stub.GetJob(metadata_pb2.GetJobRequest(job_id=ABSENT_JOB), metadata=as_b))
    for call, missing, real_id, absent_id in [
        (metadata.stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=video_id), metadata=as_b),
         missing_video, video_id, ABSENT_VIDEO),
        (metadata.stub.GetJob(metadata_pb2.GetJobRequest(job_id=job_id), metadata=as_b), missing_job, job_id,
         ABSENT_JOB),
        (metadata.stub.DeleteVideo(metadata_pb2.DeleteVideoRequest(video_id=video_id), metadata=as_b),
         missing_video, video_id, ABSENT_VIDEO),
    ]:
        error = await rpc_error(call)
        assert error.code() == missing.code() == grpc.StatusCode.NOT_FOUND
        # The same words as for an id that does not exist at all, so ids leak nothing across tenants.
        assert error.details() == missing.details().replace(absent_id, real_id)
    listed = await metadata.stub.ListVideos(metadata_pb2.ListVideosRequest(), metadata=as_b)
    assert list(listed.videos) == []
    watch = metadata.stub.WatchJob(metadata_pb2.WatchJobRequest(job_id=registered.job.job_id), metadata=as_b)
    error = await rpc_error(watch.read())
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # Tenant A still has it.
    await metadata.stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=registered.video.video_id),
                                 metadata=metadata.as_user())


async def test_reads_need_the_read_scope(metadata: Metadata) -> None:
    registered = await register(metadata)
    error = await rpc_error(metadata.stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=registered.video.video_id),
                                                   metadata=metadata.as_user(scopes=("videos:write",))))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "videos:read" in error.details()


# --- job events ----------------------------------------------------------------------------------

async def test_events_are_applied_once_in_order_and_never_after_completion(metadata: Metadata) -> None:
    job = (await register(metadata)).job
    barrier = (await register(metadata, title="barrier")).job
    history = [started(job, 1), progress(job, 2, 10.0), progress(job, 3, 50.0)]
    await publish(metadata, *history)
    running = await wait_for_job(metadata, job.job_id, lambda j: j.progress.percent == 50.0)
    assert running.status == common_pb2.JOB_STATUS_RUNNING and running.started_at.seconds > 0

    # Redelivered and out-of-order events: percent never goes back.
    await publish(metadata, *history, progress(job, 2, 20.0))
    await drain_events(metadata, barrier, 1)
    assert await get_job(metadata, job.job_id) == running

    renditions = renditions_of(job, ("360p", 640, 360), ("240p", 426, 240))
    history.append(completed(job, 4, renditions, outputs_of(renditions)))
    await publish(metadata, history[-1])
    done = await wait_for_job(metadata, job.job_id, lambda j: j.status == common_pb2.JOB_STATUS_COMPLETED)
    assert list(done.renditions) == renditions
    assert list(done.outputs) == outputs_of(renditions), "every output, completed or failed, as the worker said"
    assert done.progress.percent == 100.0 and done.finished_at.seconds > 0 and done.error == ""
    video = await metadata.stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=job.video_id),
                                         metadata=metadata.as_user())
    assert video.job == done and video.status == common_pb2.VIDEO_STATUS_READY

    # Replays, and anything after the terminal state, change nothing.
    await publish(metadata, *history, progress(job, 5, 60.0), failed(job, 6, "too late"), started(job, 1, attempt=2))
    await drain_events(metadata, barrier, 2)
    assert await get_job(metadata, job.job_id) == done
    assert metadata.bus.dead_letters(METADATA_JOB_EVENTS) == []


async def test_a_failed_job_keeps_its_reason(metadata: Metadata) -> None:
    job = (await register(metadata)).job
    await publish(metadata, started(job, 1), failed(job, 2, "the source's video stream cannot be decoded after 1.4 s"))
    done = await wait_for_job(metadata, job.job_id, lambda j: j.status == common_pb2.JOB_STATUS_FAILED)
    assert done.error == "the source's video stream cannot be decoded after 1.4 s"
    assert list(done.renditions) == [] and done.finished_at.seconds > 0
    video = await metadata.stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=job.video_id),
                                         metadata=metadata.as_user())
    assert video.status == common_pb2.VIDEO_STATUS_FAILED


async def test_a_completed_job_keeps_its_warnings(metadata: Metadata) -> None:
    job = (await register(metadata)).job
    event = completed(job, 2, renditions_of(job, ("360p", 640, 360)))
    event.completed.warnings.extend(["the source is interlaced: the renditions were deinterlaced (bwdif), one "
                                     "frame per frame", "subtitle stream 2 (subrip, eng) was not carried over"])
    await publish(metadata, started(job, 1), event)
    done = await wait_for_job(metadata, job.job_id, lambda j: j.status == common_pb2.JOB_STATUS_COMPLETED)
    assert list(done.warnings) == list(event.completed.warnings)
    video = await metadata.stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=job.video_id),
                                         metadata=metadata.as_user())
    assert list(video.job.warnings) == list(event.completed.warnings)


async def test_each_renditions_quality_report_reads_back_through_get_video(metadata: Metadata) -> None:
    job = (await register(metadata)).job
    measured, unmeasured = renditions_of(job, ("720p", 1280, 720), ("360p", 640, 360))
    measured.quality.CopyFrom(common_pb2.RenditionQuality(psnr_db=42.91, ssim=0.9909, xpsnr_db=39.69,
                                                          frames_compared=60))
    await publish(metadata, started(job, 1), completed(job, 2, [measured, unmeasured]))
    await wait_for_job(metadata, job.job_id, lambda j: j.status == common_pb2.JOB_STATUS_COMPLETED)

    video = await metadata.stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=job.video_id),
                                         metadata=metadata.as_user())

    first, second = video.job.renditions
    assert first.quality == measured.quality
    assert not second.HasField("quality"), "a rendition nobody measured does not claim a perfect score"


async def test_a_per_title_jobs_decisions_and_phase_read_back_through_get_video(metadata: Metadata) -> None:
    job = (await register(metadata)).job
    kept, = renditions_of(job, ("720p", 1280, 720))
    kept.quality.CopyFrom(common_pb2.RenditionQuality(psnr_db=41.2, ssim=0.98, xpsnr_db=33.1, frames_compared=60))
    decisions = [common_pb2.RungDecision(name="1080p", crf=31, dropped=True, target_db=33,
                                         reason="dropped: +0.21 dB XPSNR over the 720p rung scaled up to its size"),
                 common_pb2.RungDecision(name="720p", crf=29, max_bitrate=2_400_000, target_db=33, predicted_db=33.4,
                                         predicted_bitrate=950_000, probed_crfs=[26, 30])]
    kept.per_title.CopyFrom(decisions[1])
    compression = common_pb2.Compression(
        metric="xpsnr", spatial_information=61.5, temporal_information=9.25, scene_changes=2, windows_analysed=12,
        probe_window_starts=[4.0, 30.0], probe_window_seconds=1.0, rungs=decisions,
        cost=common_pb2.DecisionCost(analysis_seconds=1.5, probe_seconds=6.0, probe_encodes=8, encode_seconds=30.0,
                                     share=0.2))
    deciding = job_event(job, 2, progress=common_pb2.Progress(percent=50, phase=common_pb2.JOB_PHASE_PROBES),
                         status=common_pb2.JOB_STATUS_RUNNING)
    await publish(metadata, started(job, 1), deciding)
    running = await wait_for_job(metadata, job.job_id, lambda j: j.progress.percent == 50)
    assert running.progress.phase == common_pb2.JOB_PHASE_PROBES
    done = completed(job, 3, [kept])
    done.completed.compression.CopyFrom(compression)
    await publish(metadata, done)
    await wait_for_job(metadata, job.job_id, lambda j: j.status == common_pb2.JOB_STATUS_COMPLETED)

    video = await metadata.stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=job.video_id),
                                         metadata=metadata.as_user())

    assert video.job.compression == compression
    (rendition,) = video.job.renditions
    assert rendition.per_title == decisions[1] and rendition.quality == kept.quality


async def test_an_event_for_an_unknown_job_is_acked_and_the_consumer_goes_on(metadata: Metadata) -> None:
    barrier = (await register(metadata)).job
    ghost = common_pb2.Job(job_id=new_id("job"), video_id=new_id("vid"), tenant_id=TENANT_A)  # well formed, unknown
    await publish(metadata, started(ghost, 1), progress(ghost, 2, 50.0))
    await drain_events(metadata, barrier, 1)
    assert metadata.bus.dead_letters(METADATA_JOB_EVENTS) == []


# --- WatchJob ------------------------------------------------------------------------------------

async def read_all(call: grpc.aio.UnaryStreamCall) -> list[Any]:
    messages = []
    while (message := await call.read()) is not grpc.aio.EOF:
        messages.append(message)
    return messages


async def test_a_watcher_sees_percent_rise_to_completed_and_a_late_one_gets_the_final_state(metadata: Metadata) -> None:
    job = (await register(metadata)).job
    call = metadata.stub.WatchJob(metadata_pb2.WatchJobRequest(job_id=job.job_id), metadata=metadata.as_user())
    first = await call.read()  # once this arrives, the watcher is subscribed
    assert first.job.status == common_pb2.JOB_STATUS_QUEUED and not first.HasField("event")
    percents = [5.0, 20.0, 45.0, 80.0]
    renditions = renditions_of(job, ("360p", 640, 360))
    await publish(metadata, started(job, 1), *[progress(job, i + 2, p) for i, p in enumerate(percents)],
                  progress(job, 3, 20.0),  # a redelivery: watchers must not see it again
                  completed(job, len(percents) + 2, renditions))
    rest = await asyncio.wait_for(read_all(call), 10)
    assert await call.code() == grpc.StatusCode.OK

    assert [m.event.WhichOneof("kind") for m in rest] == ["started", *["progress"] * len(percents), "completed"]
    assert [m.event.sequence for m in rest] == list(range(1, len(percents) + 3))
    seen = [m.job.progress.percent for m in rest]
    assert seen == [0.0, *percents, 100.0]
    assert all(a < b for a, b in zip(seen[1:], seen[2:], strict=False))
    assert [m.job.status for m in rest] == [common_pb2.JOB_STATUS_RUNNING] * (len(percents) + 1) + [
        common_pb2.JOB_STATUS_COMPLETED]
    assert list(rest[-1].job.renditions) == renditions

    late = metadata.stub.WatchJob(metadata_pb2.WatchJobRequest(job_id=job.job_id), metadata=metadata.as_user())
    messages = await asyncio.wait_for(read_all(late), 10)
    assert len(messages) == 1 and not messages[0].HasField("event")
    assert messages[0].job == rest[-1].job
    assert metadata.component.watch_hub.watcher_count() == 0


async def test_a_watcher_that_disconnects_is_forgotten(metadata: Metadata) -> None:
    job = (await register(metadata)).job
    call = metadata.stub.WatchJob(metadata_pb2.WatchJobRequest(job_id=job.job_id), metadata=metadata.as_user())
    await call.read()
    hub = metadata.component.watch_hub
    assert hub.watcher_count(job.job_id) == 1
    call.cancel()
    for _ in range(200):
        if hub.watcher_count() == 0:
            break
        await asyncio.sleep(0.01)
    assert hub.watcher_count() == 0
    # Events for the job still apply with nobody watching.
    await publish(metadata, started(job, 1))
    await wait_for_job(metadata, job.job_id, lambda j: j.status == common_pb2.JOB_STATUS_RUNNING)


async def test_deleting_a_watched_video_ends_the_watch_with_not_found(metadata: Metadata) -> None:
    registered = await register(metadata)
    call = metadata.stub.WatchJob(metadata_pb2.WatchJobRequest(job_id=registered.job.job_id),
                                  metadata=metadata.as_user())
    await call.read()
    await metadata.stub.DeleteVideo(metadata_pb2.DeleteVideoRequest(video_id=registered.video.video_id),
                                    metadata=metadata.as_user())
    error = await rpc_error(asyncio.wait_for(call.read(), 10))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert metadata.component.watch_hub.watcher_count() == 0


# --- downloads and deletes -----------------------------------------------------------------------

async def store_bytes(service: Metadata, key: str, data: bytes, tmp_path: Path) -> None:
    path = tmp_path / secrets.token_hex(4)
    path.write_bytes(data)
    await service.store.put_file(key, path, "video/mp4")


async def complete_with_stored_rendition(service: Metadata, tmp_path: Path, data: bytes,
                                         ) -> tuple[metadata_pb2.RegisterVideoResponse, common_pb2.Rendition]:
    registered = await register(service)
    job = registered.job
    await store_bytes(service, registered.video.source_key, b"source bytes", tmp_path)
    [rendition] = renditions_of(job, ("360p", 640, 360))
    rendition.size_bytes = len(data)
    await store_bytes(service, rendition.storage_key, data, tmp_path)
    await publish(service, started(job, 1), completed(job, 2, [rendition]))
    await wait_for_job(service, job.job_id, lambda j: j.status == common_pb2.JOB_STATUS_COMPLETED)
    return registered, rendition


async def test_download_streams_the_exact_bytes_in_chunks_of_at_most_1_mib(metadata: Metadata, tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 12_345)
    registered, rendition = await complete_with_stored_rendition(metadata, tmp_path, data)
    call = metadata.stub.DownloadRendition(
        metadata_pb2.DownloadRenditionRequest(video_id=registered.video.video_id, rendition="360p"),
        metadata=metadata.as_user())
    chunks = [chunk async for chunk in call]
    assert len(chunks) == 3 and all(len(c.data) <= 1024 * 1024 for c in chunks)
    assert {c.content_type for c in chunks} == {"video/mp4"}
    assert b"".join(c.data for c in chunks) == data

    as_b = metadata.as_user(TENANT_B)
    for request, metadata_, code in [
        (metadata_pb2.DownloadRenditionRequest(video_id=registered.video.video_id, rendition="360p"), as_b,
         grpc.StatusCode.NOT_FOUND),
        (metadata_pb2.DownloadRenditionRequest(video_id=registered.video.video_id, rendition="4320p"),
         metadata.as_user(), grpc.StatusCode.NOT_FOUND),
    ]:
        error = await rpc_error(read_all(metadata.stub.DownloadRendition(request, metadata=metadata_)))
        assert error.code() == code


async def test_download_before_the_job_completes_says_so(metadata: Metadata) -> None:
    registered = await register(metadata)
    call = metadata.stub.DownloadRendition(
        metadata_pb2.DownloadRenditionRequest(video_id=registered.video.video_id, rendition="360p"),
        metadata=metadata.as_user())
    error = await rpc_error(read_all(call))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "QUEUED" in error.details()


async def test_delete_removes_rows_and_every_stored_object(metadata: Metadata, tmp_path: Path) -> None:
    registered, rendition = await complete_with_stored_rendition(metadata, tmp_path, os.urandom(4096))
    kept = await register(metadata, title="kept")
    await store_bytes(metadata, kept.video.source_key, b"keep me", tmp_path)
    video_id = registered.video.video_id

    error = await rpc_error(metadata.stub.DeleteVideo(metadata_pb2.DeleteVideoRequest(video_id=video_id),
                                                      metadata=metadata.as_user(scopes=("videos:read",))))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    await metadata.store.stat(rendition.storage_key)  # still there

    await metadata.stub.DeleteVideo(metadata_pb2.DeleteVideoRequest(video_id=video_id), metadata=metadata.as_user())
    for key in (registered.video.source_key, rendition.storage_key):
        with pytest.raises(NotFound):
            await metadata.store.stat(key)
    for call in (metadata.stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=video_id), metadata=metadata.as_user()),
                 metadata.stub.GetJob(metadata_pb2.GetJobRequest(job_id=registered.job.job_id),
                                      metadata=metadata.as_user()),
                 metadata.stub.DeleteVideo(metadata_pb2.DeleteVideoRequest(video_id=video_id),
                                           metadata=metadata.as_user())):
        assert (await rpc_error(call)).code() == grpc.StatusCode.NOT_FOUND
    listed = await metadata.stub.ListVideos(metadata_pb2.ListVideosRequest(), metadata=metadata.as_user())
    assert [v.video_id for v in listed.videos] == [kept.video.video_id]
    assert (await metadata.store.stat(kept.video.source_key)).size_bytes == len(b"keep me")
    # A late event of the deleted job is acked and ignored.
    await publish(metadata, progress(registered.job, 3, 99.0))
    await drain_events(metadata, kept.job, 1)
    assert metadata.bus.dead_letters(METADATA_JOB_EVENTS) == []


async def test_renditions_a_job_stores_after_its_video_was_deleted_are_removed(metadata: Metadata,
                                                                               tmp_path: Path) -> None:
    registered = await register(metadata)
    job = registered.job
    await publish(metadata, started(job, 1))
    await metadata.stub.DeleteVideo(metadata_pb2.DeleteVideoRequest(video_id=registered.video.video_id),
                                    metadata=metadata.as_user())
    # The worker, unaware of the delete, finishes and stores its output.
    [rendition] = renditions_of(job, ("360p", 640, 360))
    await store_bytes(metadata, rendition.storage_key, b"late rendition", tmp_path)
    await publish(metadata, completed(job, 2, [rendition]))
    await drain_events(metadata, (await register(metadata, title="barrier")).job, 1)
    with pytest.raises(NotFound):
        await metadata.store.stat(rendition.storage_key)


# --- dispatch again on start what a gone bus lost ------------------------------------------------

async def requested_jobs(bus: InProcessBus) -> asyncio.Queue[events_pb2.JobRequested]:
    """A test queue bound to job.requested, declared before the service starts."""
    received: asyncio.Queue[events_pb2.JobRequested] = asyncio.Queue()

    async def handle(delivery: Delivery) -> None:
        message = delivery.decode()
        assert isinstance(message, events_pb2.JobRequested)
        received.put_nowait(message)

    # Two worker slots taking requests (and never starting them), so dispatch has room for two.
    await bus.consume(PROCESS_JOBS, handle, prefetch=2)
    return received


async def test_unfinished_jobs_are_requeued_on_start_with_a_new_attempt(tmp_path: Path, database_url: str,
                                                                         keys: TestKeys) -> None:
    first_bus = InProcessBus()
    first_requested = await requested_jobs(first_bus)
    before = await start_metadata(tmp_path, database_url, keys, first_bus)
    try:
        queued = await register(before, title="queued")
        running = await register(before, title="running")
        # Both went out on the first bus, which forgets them when the process stops.
        assert {(await asyncio.wait_for(first_requested.get(), 10)).job_id for _ in range(2)} == {
            queued.job.job_id, running.job.job_id}
        done = await register(before, title="done")
        await publish(before, started(running.job, 1), progress(running.job, 2, 30.0),
                      started(done.job, 1), completed(done.job, 2, renditions_of(done.job, ("360p", 640, 360))))
        await wait_for_job(before, running.job.job_id, lambda j: j.progress.percent == 30.0)
        await wait_for_job(before, done.job.job_id, lambda j: j.status == common_pb2.JOB_STATUS_COMPLETED)
    finally:
        await before.stop()

    bus = InProcessBus()  # the process restarted: the in-process bus (a new session) remembers nothing
    requested = await requested_jobs(bus)
    after = await start_metadata(tmp_path, database_url, keys, bus)
    try:
        messages = [await asyncio.wait_for(requested.get(), 10) for _ in range(2)]
        await asyncio.sleep(0.2)
        assert requested.empty()  # the completed job is not handed out again
        by_job = {m.job_id: m for m in messages}
        assert set(by_job) == {queued.job.job_id, running.job.job_id}
        for registered in (queued, running):
            message = by_job[registered.job.job_id]
            assert (message.video_id, message.tenant_id, message.profile) == (
                registered.video.video_id, TENANT_A, "default")
            assert message.source_key == registered.video.source_key and message.probe == probe()
            assert message.attempt == 2 and message.event_id and message.requested_at.seconds > 0
            job = await get_job(after, registered.job.job_id)
            assert (job.status, job.attempt, job.progress.percent) == (common_pb2.JOB_STATUS_QUEUED, 2, 0.0)
        assert (await get_job(after, done.job.job_id)).attempt == 1

        # A straggling event of the old attempt does not undo the requeue; the new attempt's do apply.
        barrier = (await register(after, title="barrier")).job
        await publish(after, progress(running.job, 3, 35.0))
        await drain_events(after, barrier, 1)
        assert (await get_job(after, running.job.job_id)).status == common_pb2.JOB_STATUS_QUEUED
        await publish(after, started(running.job, 1, attempt=2), progress(running.job, 2, 15.0, attempt=2))
        job = await wait_for_job(after, running.job.job_id, lambda j: j.progress.percent == 15.0)
        assert (job.status, job.attempt) == (common_pb2.JOB_STATUS_RUNNING, 2)
    finally:
        await after.stop()


async def test_jobs_dispatched_on_a_broker_are_not_sent_again(tmp_path: Path, database_url: str,
                                                                keys: TestKeys) -> None:
    first_bus = InProcessBus()
    first_bus.session = "amqp:test"  # stands for a broker, which keeps its messages across our restarts
    first_requested = await requested_jobs(first_bus)
    before = await start_metadata(tmp_path, database_url, keys, first_bus)
    try:
        queued = await register(before)
        assert (await asyncio.wait_for(first_requested.get(), 10)).job_id == queued.job.job_id
    finally:
        await before.stop()
    bus = InProcessBus()
    bus.session = "amqp:test"
    requested = await requested_jobs(bus)
    after = await start_metadata(tmp_path, database_url, keys, bus)
    try:
        await asyncio.sleep(0.2)
        assert requested.empty()
        job = await get_job(after, queued.job.job_id)
        assert (job.status, job.attempt) == (common_pb2.JOB_STATUS_QUEUED, 1)
    finally:
        await after.stop()


# --- schema --------------------------------------------------------------------------------------

async def test_migrations_build_exactly_the_schema_the_models_expect(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect

    from services.metadata_svc.models import Base
    from services.metadata_svc.server import MIGRATIONS, VERSION_TABLE
    from services.shared.db import create_engine, migrate

    engine = create_engine(database_url)
    try:
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        await migrate(engine, MIGRATIONS, VERSION_TABLE)  # a restart finds the schema current

        def differences(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE,
                                                                   "compare_type": True})
            return [d for d in compare_metadata(context, Base.metadata) if d[0] != "remove_table"
                    or d[1].name != VERSION_TABLE]

        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"videos", "jobs", "renditions", "outbox", VERSION_TABLE} <= tables
    finally:
        await engine.dispose()


# --- cancel --------------------------------------------------------------------------------------

async def capture_cancels(service: Metadata) -> asyncio.Queue[events_pb2.JobCancelRequested]:
    told: asyncio.Queue[events_pb2.JobCancelRequested] = asyncio.Queue()

    async def record(delivery: Delivery) -> None:
        message = delivery.decode()
        assert isinstance(message, events_pb2.JobCancelRequested)
        told.put_nowait(message)

    await service.bus.consume_broadcast([JOB_CANCEL], record)
    return told


async def test_cancel_ends_the_job_for_watchers_and_tells_the_workers(metadata: Metadata) -> None:
    told = await capture_cancels(metadata)
    registered = await register(metadata)
    job = registered.job
    await publish(metadata, started(job, 1), progress(job, 2, 30.0))
    await wait_for_job(metadata, job.job_id, lambda j: j.progress.percent == 30.0)
    watch = metadata.stub.WatchJob(metadata_pb2.WatchJobRequest(job_id=job.job_id), metadata=metadata.as_user())
    assert (await watch.read()).job.status == common_pb2.JOB_STATUS_RUNNING

    error = await rpc_error(metadata.stub.CancelJob(metadata_pb2.CancelJobRequest(job_id=job.job_id),
                                                    metadata=metadata.as_user(scopes=("videos:read",))))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = await rpc_error(metadata.stub.CancelJob(metadata_pb2.CancelJobRequest(job_id=job.job_id),
                                                    metadata=metadata.as_user(TENANT_B)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    cancelled = await metadata.stub.CancelJob(metadata_pb2.CancelJobRequest(job_id=job.job_id),
                                              metadata=metadata.as_user())

    assert cancelled.status == common_pb2.JOB_STATUS_CANCELLED and cancelled.finished_at.seconds > 0
    last = await asyncio.wait_for(watch.read(), 10)
    assert last.job.status == common_pb2.JOB_STATUS_CANCELLED and last.event.WhichOneof("kind") == "cancelled"
    assert await watch.read() == grpc.aio.EOF
    request = await asyncio.wait_for(told.get(), 10)
    assert (request.job_id, request.video_id, request.tenant_id) == (job.job_id, job.video_id, TENANT_A)
    # Progress the worker sent before it stopped changes nothing.
    await publish(metadata, progress(job, 3, 60.0))
    await drain_events(metadata, (await register(metadata)).job, 1)
    assert (await get_job(metadata, job.job_id)).status == common_pb2.JOB_STATUS_CANCELLED


async def test_a_worker_starting_a_cancelled_job_is_told_again_and_its_late_renditions_removed(
        metadata: Metadata, tmp_path: Path) -> None:
    told = await capture_cancels(metadata)
    registered = await register(metadata)
    job = registered.job
    await metadata.stub.CancelJob(metadata_pb2.CancelJobRequest(job_id=job.job_id), metadata=metadata.as_user())
    await asyncio.wait_for(told.get(), 10)

    # A worker that missed the broadcast takes the job anyway (a redelivery to a worker started later).
    await publish(metadata, started(job, 1, attempt=2))
    again = await asyncio.wait_for(told.get(), 10)
    assert again.job_id == job.job_id
    [rendition] = renditions_of(job, ("360p", 640, 360))
    await store_bytes(metadata, rendition.storage_key, b"unwanted rendition", tmp_path)
    await publish(metadata, completed(job, 2, [rendition]))
    await drain_events(metadata, (await register(metadata)).job, 1)

    with pytest.raises(NotFound):
        await metadata.store.stat(rendition.storage_key)
    assert (await get_job(metadata, job.job_id)).status == common_pb2.JOB_STATUS_CANCELLED


async def test_a_finished_job_cannot_be_cancelled(metadata: Metadata, tmp_path: Path) -> None:
    registered, rendition = await complete_with_stored_rendition(metadata, tmp_path, b"done")
    error = await rpc_error(metadata.stub.CancelJob(metadata_pb2.CancelJobRequest(job_id=registered.job.job_id),
                                                    metadata=metadata.as_user()))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == (f"job {registered.job.job_id!r} is COMPLETED already; only a queued or running job "
                               "can be cancelled")
    assert (await metadata.store.stat(rendition.storage_key)).size_bytes == 4


async def test_deleting_a_video_whose_job_runs_cancels_the_job(metadata: Metadata) -> None:
    told = await capture_cancels(metadata)
    registered = await register(metadata)
    await publish(metadata, started(registered.job, 1))
    await wait_for_job(metadata, registered.job.job_id, lambda j: j.status == common_pb2.JOB_STATUS_RUNNING)

    await metadata.stub.DeleteVideo(metadata_pb2.DeleteVideoRequest(video_id=registered.video.video_id),
                                    metadata=metadata.as_user())

    assert (await asyncio.wait_for(told.get(), 10)).job_id == registered.job.job_id


# --- orphaned sources ----------------------------------------------------------------------------

async def test_a_source_stored_without_its_video_row_is_swept_after_the_grace_period(
        tmp_path: Path, database_url: str, keys: TestKeys) -> None:
    service = await start_metadata(tmp_path, database_url, keys, InProcessBus(), sweep=(60.0, 0.1))
    try:
        registered = await register(service)
        await store_bytes(service, registered.video.source_key, b"a registered source", tmp_path)
        # An upload service killed between storing the source and RegisterVideo leaves these behind.
        orphan, fresh = source_key(TENANT_A, new_id("vid"), "old.mov"), source_key(TENANT_A, new_id("vid"), "new.mp4")
        await store_bytes(service, orphan, b"nobody's source", tmp_path)
        await store_bytes(service, fresh, b"an upload still registering", tmp_path)
        old = time.time() - 120
        for key in (orphan, registered.video.source_key):
            os.utime(tmp_path / "objects" / key, (old, old))

        deadline = time.monotonic() + 10
        while (tmp_path / "objects" / orphan).exists():
            assert time.monotonic() < deadline, "the orphaned source was never swept"
            await asyncio.sleep(0.05)

        assert (await service.store.stat(registered.video.source_key)).size_bytes == len(b"a registered source")
        assert (await service.store.stat(fresh)).size_bytes == len(b"an upload still registering")
        assert not (tmp_path / "objects" / orphan).parent.exists(), "its video's prefix is gone"
    finally:
        await service.stop()



# --- jobs no worker can finish -------------------------------------------------------------------

async def test_a_dead_lettered_job_request_fails_its_job_with_the_crash_in_its_reason(metadata: Metadata) -> None:
    # A worker that dies on every delivery: the bus returns the request until its delivery limit, then
    # dead-letters it (on RabbitMQ the broker does this; tests/faults/ crash real worker processes).
    deliveries: list[int] = []

    async def dies(delivery: Delivery) -> None:
        deliveries.append(delivery.delivery_count)
        raise RuntimeError("worker died")

    await metadata.bus.consume(PROCESS_JOBS, dies)
    registered = await register(metadata)
    watch = metadata.stub.WatchJob(metadata_pb2.WatchJobRequest(job_id=registered.job.job_id),
                                   metadata=metadata.as_user())
    assert (await watch.read()).job.status == common_pb2.JOB_STATUS_QUEUED

    job = await wait_for_job(metadata, registered.job.job_id, lambda j: j.status == common_pb2.JOB_STATUS_FAILED)

    assert deliveries == [1, 2, 3, 4, 5]
    assert job.error.startswith("the transcoder crashed on this file 5 times: every worker that took it stopped "
                                "without finishing;")
    assert registered.job.job_id in job.error, "names the job to report"
    last = await asyncio.wait_for(watch.read(), 10)
    assert last.job.status == common_pb2.JOB_STATUS_FAILED and last.job.error == job.error
    assert metadata.bus.dead_letters(PROCESS_JOBS) == [], "the dead-letter queue is consumed"


async def test_a_dead_letter_of_a_job_that_finished_meanwhile_changes_nothing(metadata: Metadata,
                                                                             tmp_path: Path) -> None:
    registered, _ = await complete_with_stored_rendition(metadata, tmp_path, b"done")
    request = events_pb2.JobRequested(job_id=registered.job.job_id, video_id=registered.video.video_id,
                                      tenant_id=TENANT_A, attempt=1)
    await metadata.component.dead_letters.handle(Delivery(
        routing_key="job.requested", body=request.SerializeToString(), message_type="vtc.v1.JobRequested",
        message_id="m1", delivery_count=1))
    assert (await get_job(metadata, registered.job.job_id)).status == common_pb2.JOB_STATUS_COMPLETED


async def test_a_silent_job_is_handed_on_then_failed_after_the_delivery_limit(
        tmp_path: Path, database_url: str, keys: TestKeys) -> None:
    service = await start_metadata(tmp_path, database_url, keys, InProcessBus(max_deliveries=2),
                                   metadata_silent_job_seconds=0.5, metadata_silent_job_check_seconds=0.1)
    requests: asyncio.Queue[events_pb2.JobRequested] = asyncio.Queue()

    async def take(delivery: Delivery) -> None:  # a worker that takes each job, says it started, then hangs
        request = delivery.decode()
        assert isinstance(request, events_pb2.JobRequested)
        requests.put_nowait(request)

    try:
        for _ in range(2):  # two workers: dispatch sends a job only to a free worker slot
            await service.bus.consume(PROCESS_JOBS, take)
        busy, silent = await register(service, title="busy"), await register(service, title="silent")
        first = {r.job_id: r for r in [await asyncio.wait_for(requests.get(), 10) for _ in range(2)]}
        await publish(service, started(busy.job, 1), started(silent.job, 1))

        async def keep_reporting() -> None:  # the busy job's worker sends progress all along
            for sequence in itertools.count(2):
                await asyncio.sleep(0.2)
                await publish(service, progress(busy.job, sequence, min(sequence, 99.0)))

        reporting = asyncio.create_task(keep_reporting())

        again = await asyncio.wait_for(requests.get(), 10)
        assert (again.job_id, again.attempt) == (silent.job.job_id, first[silent.job.job_id].attempt + 1)
        handed_on = await get_job(service, silent.job.job_id)
        assert handed_on.status in (common_pb2.JOB_STATUS_QUEUED, common_pb2.JOB_STATUS_RUNNING)
        assert handed_on.attempt == again.attempt
        await publish(service, started(silent.job, 1, attempt=again.attempt))  # the second worker hangs too

        failed_job = await wait_for_job(service, silent.job.job_id,
                                        lambda j: j.status == common_pb2.JOB_STATUS_FAILED)
        assert failed_job.error.startswith("no worker reported on this job for 0.5 seconds, on each of its "
                                           "2 attempts; the transcoder may hang on this file.")
        assert (await get_job(service, busy.job.job_id)).status == common_pb2.JOB_STATUS_RUNNING
        assert requests.empty(), "the busy job was never handed on"
        reporting.cancel()
    finally:
        await service.stop()
