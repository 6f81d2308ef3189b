"""The transcode worker end to end on the in-process bus and a local store:
job requested -> started, progress..., completed (or failed), outputs stored."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.protobuf.message import Message

from services.process_svc.scratch import ScratchDir, remove_abandoned
from services.process_svc.server import ProcessComponent
from services.process_svc.settings import Settings
from services.shared.bus import Delivery
from services.shared.bus.contract import JOB_CANCEL, JOB_EVENTS, JOB_REQUESTED, PROCESS_JOBS, QueueSpec
from services.shared.bus.memory import InProcessBus
from services.shared.errors import Unavailable
from services.shared.ids import new_id
from services.shared.storage import ObjectInfo
from services.shared.storage.keys import rendition_key, source_key
from services.shared.storage.local import LocalDirectoryStore
from tests.media import decoded_summary, make_clip
from vtc.v1 import common_pb2, events_pb2

TENANT = "ten_test"
TERMINAL = {"completed", "failed", "cancelled"}


class Harness:
    def __init__(self, tmp_path: Path, bus: InProcessBus, store: LocalDirectoryStore | None = None,
                 time_limit: tuple[float, float] = (10.0, 300.0),
                 heartbeat_seconds: float = 30.0) -> None:
        self.tmp_path = tmp_path
        self.bus = bus
        self.store = store or LocalDirectoryStore(tmp_path / "objects")
        self.settings = Settings(data_dir=tmp_path / "data", process_progress_interval_seconds=0.05,
                                 process_time_limit_factor=time_limit[0],
                                 process_time_limit_min_seconds=time_limit[1],
                                 process_heartbeat_seconds=heartbeat_seconds)
        self.events: asyncio.Queue[events_pb2.JobEvent] = asyncio.Queue()

    async def start(self) -> None:
        async def capture(delivery: Delivery) -> None:
            event = delivery.decode()
            assert isinstance(event, events_pb2.JobEvent)
            self.events.put_nowait(event)

        await self.bus.consume(QueueSpec("test.job-events", (JOB_EVENTS,)), capture)
        await ProcessComponent(self.settings, self.bus, self.store).start()

    async def request(self, source: Path | bytes, *, profile: str = "", attempt: int = 1,
                      filename: str = "clip.mp4", duration_seconds: float = 0.0) -> events_pb2.JobRequested:
        video_id = f"vid_{uuid.uuid4().hex[:20]}"
        key = source_key(TENANT, video_id, filename)
        if isinstance(source, bytes):
            upload = self.tmp_path / f"{video_id}.upload"
            upload.write_bytes(source)
            source = upload
        await self.store.put_file(key, source, "video/mp4")
        request = events_pb2.JobRequested(event_id=uuid.uuid4().hex, job_id=f"job_{uuid.uuid4().hex[:20]}",
                                          video_id=video_id, tenant_id=TENANT, profile=profile, source_key=key,
                                          attempt=attempt,
                                          probe=common_pb2.MediaProbe(duration_seconds=duration_seconds))
        await self.bus.publish(JOB_REQUESTED, request)
        return request

    async def events_until_terminal(self, timeout: float = 60) -> list[events_pb2.JobEvent]:
        events: list[events_pb2.JobEvent] = []
        async with asyncio.timeout(timeout):
            while not events or events[-1].WhichOneof("kind") not in TERMINAL:
                events.append(await self.events.get())
        return events

    def scratch_files(self) -> list[Path]:
        return [p for p in self.settings.work_dir.rglob("*")] if self.settings.work_dir.exists() else []


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    bus = InProcessBus()
    await bus.start()
    harness = Harness(tmp_path, bus)
    await harness.start()
    try:
        yield harness
    finally:
        await bus.close()


def kinds(events: list[events_pb2.JobEvent]) -> list[str]:
    return [str(e.WhichOneof("kind")) for e in events]


def assert_well_formed(events: list[events_pb2.JobEvent], request: events_pb2.JobRequested) -> None:
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert len({e.event_id for e in events}) == len(events)
    for event in events:
        assert (event.job_id, event.video_id, event.tenant_id, event.attempt) == (
            request.job_id, request.video_id, request.tenant_id, request.attempt)
        assert event.occurred_at.seconds > 0


async def test_job_runs_to_completion_with_progress_and_stored_renditions(
        harness: Harness, clip_640x360: Path, tmp_path: Path) -> None:
    request = await harness.request(clip_640x360)

    events = await harness.events_until_terminal()

    assert_well_formed(events, request)
    assert kinds(events)[0] == "started" and events[0].status == common_pb2.JOB_STATUS_RUNNING
    assert kinds(events)[-1] == "completed" and events[-1].status == common_pb2.JOB_STATUS_COMPLETED
    progress = [e.progress for e in events if e.WhichOneof("kind") == "progress"]
    assert set(kinds(events)[1:-1]) <= {"progress"} and progress, "progress between start and completion"
    assert [p.percent for p in progress] == sorted(p.percent for p in progress)
    assert all(0 <= p.percent <= 100 and p.total_frames == 60 and p.frames <= 60 for p in progress)
    assert all(e.status == common_pb2.JOB_STATUS_RUNNING for e in events[:-1])
    sent = [e.occurred_at.ToNanoseconds() / 1e9 for e in events if e.WhichOneof("kind") == "progress"]
    assert all(later - earlier >= 0.045 for earlier, later in itertools.pairwise(sent)), "throttled to the interval"

    renditions = events[-1].completed.renditions
    assert [(r.name, r.width, r.height) for r in renditions] == [("360p", 640, 360)]
    rendition = renditions[0]
    assert rendition.storage_key == rendition_key(TENANT, request.video_id, "360p", "mp4")
    assert (rendition.container, rendition.video_codec, rendition.audio_codec, rendition.content_type) == (
        "mp4", "h264", "aac", "video/mp4")
    stored = await harness.store.stat(rendition.storage_key)
    assert stored.size_bytes == rendition.size_bytes
    assert rendition.bitrate == round(rendition.size_bytes * 8 / rendition.duration_seconds)
    download = tmp_path / "download.mp4"
    await harness.store.get_file(rendition.storage_key, download)
    summary = decoded_summary(download)
    assert (summary["width"], summary["height"], summary["frames"], summary["has_audio"]) == (640, 360, 60, True)
    assert abs(summary["duration"] - 2.0) <= 0.1
    assert abs(rendition.duration_seconds - summary["duration"]) < 0.01
    # The quality report, every 5th frame by default: frames 0, 5, ..., 55 of 60.
    assert rendition.quality.frames_compared == 12
    assert 25 <= rendition.quality.psnr_db <= 60 and 0.8 <= rendition.quality.ssim <= 1.0
    assert harness.scratch_files() == [], "scratch files removed"


async def test_corrupt_source_fails_once_with_a_readable_reason(harness: Harness) -> None:
    request = await harness.request(os.urandom(256 * 1024))

    events = await harness.events_until_terminal()

    assert_well_formed(events, request)
    assert kinds(events) == ["started", "failed"]
    assert events[-1].status == common_pb2.JOB_STATUS_FAILED
    assert events[-1].failed.reason.startswith("the source could not be opened as a video file: ")
    assert "/" not in events[-1].failed.reason, "no scratch paths in what a user reads"
    # Acked, not redelivered: nothing more arrives, nothing dead-lettered.
    await asyncio.sleep(0.5)
    assert harness.events.empty()
    assert harness.bus.dead_letters(PROCESS_JOBS) == []
    assert harness.scratch_files() == []


async def test_unknown_profile_fails_naming_the_available_ones(harness: Harness, clip_640x360: Path) -> None:
    await harness.request(clip_640x360, profile="8k-dolby")

    events = await harness.events_until_terminal()

    assert kinds(events) == ["started", "failed"]
    assert events[-1].failed.reason == ("unknown profile '8k-dolby'; available profiles: "
                                        "audio, default, hevc, modern, per-title, webm")


async def test_missing_source_object_fails_with_a_reason(harness: Harness, clip_640x360: Path) -> None:
    request = await harness.request(clip_640x360)
    events = await harness.events_until_terminal()
    assert kinds(events)[-1] == "completed"
    await harness.store.delete_prefix(f"{TENANT}/{request.video_id}/")

    await harness.bus.publish(JOB_REQUESTED, request)
    events = await harness.events_until_terminal()

    assert kinds(events) == ["started", "failed"]
    assert "is no longer in storage" in events[-1].failed.reason


class UnreachableStore(LocalDirectoryStore):
    """Storage whose downloads fail the first `outages` times, as during a network blip."""

    def __init__(self, root: Path, outages: int) -> None:
        super().__init__(root)
        self.outages = outages

    async def get_file(self, key: str, dest: Path) -> ObjectInfo:
        if self.outages > 0:
            self.outages -= 1
            raise Unavailable("storage did not answer")
        return await super().get_file(key, dest)


async def test_storage_outage_is_retried_and_the_retry_orders_after_the_first_try(
        tmp_path: Path, clip_640x360: Path) -> None:
    bus = InProcessBus()
    harness = Harness(tmp_path, bus, UnreachableStore(tmp_path / "objects", outages=1))
    await harness.start()
    try:
        request = await harness.request(clip_640x360, attempt=3)
        events = await harness.events_until_terminal()
    finally:
        await bus.close()

    # First delivery: started, then the outage; the bus redelivers and the second delivery completes.
    assert kinds(events)[0] == "started" and kinds(events)[1] == "started" and kinds(events)[-1] == "completed"
    assert [e.attempt for e in events[:2]] == [3, 4]
    order = [(e.attempt, e.sequence) for e in events]
    assert order == sorted(order), "a consumer keeping the newest (attempt, sequence) ends on completed"
    assert events[-1].job_id == request.job_id


async def test_storage_outage_on_every_delivery_ends_in_a_failed_event(tmp_path: Path, clip_640x360: Path) -> None:
    bus = InProcessBus(max_deliveries=2)
    harness = Harness(tmp_path, bus, UnreachableStore(tmp_path / "objects", outages=99))
    await harness.start()
    try:
        await harness.request(clip_640x360)
        events = await harness.events_until_terminal()
    finally:
        await bus.close()

    assert kinds(events) == ["started", "started", "failed"]
    assert events[-1].failed.reason == ("storage or messaging was unavailable on every attempt: "
                                        "Unavailable: storage did not answer")
    assert bus.dead_letters(PROCESS_JOBS) == []


class FlakyProgressBus(InProcessBus):
    """Every progress publish fails, as if the broker refused them."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def publish(self, routing_key: str, message: Message, *, message_id: str = "",
                      mandatory: bool = True) -> None:
        if routing_key == "job.event.progress":
            self.refused += 1
            raise ConnectionError("broker refused the message")
        await super().publish(routing_key, message, message_id=message_id, mandatory=mandatory)


async def test_failing_progress_never_fails_the_job(tmp_path: Path, clip_640x360: Path) -> None:
    bus = FlakyProgressBus()
    harness = Harness(tmp_path, bus)
    await harness.start()
    try:
        await harness.request(clip_640x360)
        events = await harness.events_until_terminal()
    finally:
        await bus.close()

    assert bus.refused >= 1
    assert kinds(events) == ["started", "completed"]
    # The numbers consumed by refused progress events leave gaps, never reorderings.
    assert events[0].sequence < events[1].sequence


async def test_shutdown_mid_job_stops_the_encoder_and_requeues_the_job(tmp_path: Path, clip_640x360: Path) -> None:
    bus = InProcessBus()
    harness = Harness(tmp_path, bus)
    await harness.start()
    request = await harness.request(clip_640x360)
    async with asyncio.timeout(60):
        while (await harness.events.get()).WhichOneof("kind") != "progress":
            pass

    await bus.close()  # what the all-in-one does on Ctrl-C: consumers are cancelled mid-job

    assert harness.scratch_files() == [], "the encoder thread stopped before its scratch files went"
    assert all(e.WhichOneof("kind") == "progress" for e in _drain(harness.events))
    # A worker started again finds the job back in its queue, as a new attempt.
    await harness.start()
    try:
        events = await harness.events_until_terminal()
    finally:
        await bus.close()
    assert kinds(events)[0] == "started" and kinds(events)[-1] == "completed"
    assert {e.attempt for e in events} == {request.attempt + 1}


def _drain(queue: asyncio.Queue[events_pb2.JobEvent]) -> list[events_pb2.JobEvent]:
    drained = []
    while not queue.empty():
        drained.append(queue.get_nowait())
    return drained


async def test_a_bug_ends_in_a_failed_event_not_endless_redelivery(
        harness: Harness, clip_640x360: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug cannot be produced on demand in real code, so the executor is replaced by one that has one.
    def broken_execute(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("services.process_svc.worker.execute", broken_execute)
    await harness.request(clip_640x360)

    events = await harness.events_until_terminal()

    assert kinds(events) == ["started", "failed"]
    assert events[-1].failed.reason.startswith("internal error in the transcoder (ZeroDivisionError: division by zero)")
    await asyncio.sleep(0.3)
    assert harness.events.empty() and harness.bus.dead_letters(PROCESS_JOBS) == []
    assert harness.scratch_files() == []


@pytest.fixture(scope="module")
def clip_720p(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough to be cancelled or timed out mid-encode: 4 s of 1280x720 into three rungs."""
    return make_clip(tmp_path_factory.mktemp("media") / "clip720.mp4", seconds=4.0, width=1280, height=720)


async def _until_progress(harness: Harness) -> list[events_pb2.JobEvent]:
    seen = []
    async with asyncio.timeout(60):
        while not seen or seen[-1].WhichOneof("kind") != "progress":
            seen.append(await harness.events.get())
    return seen


def _cancel_request(request: events_pb2.JobRequested) -> events_pb2.JobCancelRequested:
    return events_pb2.JobCancelRequested(event_id=uuid.uuid4().hex, job_id=request.job_id,
                                         video_id=request.video_id, tenant_id=request.tenant_id)


async def test_a_cancel_stops_the_encoder_and_leaves_nothing_behind(harness: Harness, clip_720p: Path) -> None:
    request = await harness.request(clip_720p)
    before = await _until_progress(harness)

    asked = time.monotonic()
    await harness.bus.publish(JOB_CANCEL, _cancel_request(request), mandatory=False)
    after = await harness.events_until_terminal(timeout=10)
    stopped_after = time.monotonic() - asked

    events = before + after
    assert_well_formed(events, request)
    assert kinds(events)[-1] == "cancelled" and events[-1].status == common_pb2.JOB_STATUS_CANCELLED
    assert events[-1].cancelled.worker, "names the worker that stopped"
    print(f"\nencoder stopped {stopped_after:.2f} s after the cancel request")
    assert stopped_after <= 2.0
    assert harness.scratch_files() == []
    assert not (harness.tmp_path / "objects" / TENANT / request.video_id / "renditions").exists()
    await asyncio.sleep(0.3)
    assert harness.events.empty() and harness.bus.dead_letters(PROCESS_JOBS) == [], "acked, not redelivered"


async def test_a_job_cancelled_before_it_starts_is_dropped(harness: Harness, clip_640x360: Path) -> None:
    video_id = new_id("vid")
    request = events_pb2.JobRequested(job_id=new_id("job"), video_id=video_id, tenant_id=TENANT,
                                      source_key=source_key(TENANT, video_id, "clip.mp4"))
    await harness.bus.publish(JOB_CANCEL, _cancel_request(request), mandatory=False)
    await asyncio.sleep(0.1)
    await harness.bus.publish(JOB_REQUESTED, request)
    later = await harness.request(clip_640x360)

    events = await harness.events_until_terminal()

    assert {e.job_id for e in events} == {later.job_id}, "the cancelled job never started"
    assert kinds(events)[-1] == "completed"
    assert harness.bus.dead_letters(PROCESS_JOBS) == [], "dropped as cancelled, not refused as malformed"


async def test_a_job_past_its_time_limit_fails_with_the_limit_in_its_reason(
        tmp_path: Path, clip_720p: Path) -> None:
    bus = InProcessBus()
    harness = Harness(tmp_path, bus, time_limit=(0.1, 0.5))
    await harness.start()
    try:
        request = await harness.request(clip_720p, duration_seconds=4.0)
        events = await harness.events_until_terminal()
    finally:
        await bus.close()

    assert kinds(events)[0] == "started" and kinds(events)[-1] == "failed"
    assert events[-1].failed.reason.startswith(
        "the transcode did not finish within its time limit of 00:00.5 (the least any job gets) and was stopped;")
    assert harness.scratch_files() == []
    assert not (tmp_path / "objects" / TENANT / request.video_id / "renditions").exists()


def test_a_starting_worker_removes_scratch_of_dead_jobs_only(tmp_path: Path) -> None:
    work_dir = tmp_path / "work"
    # A worker process dies mid-job, however it dies: its scratch directory stays behind.
    killed = subprocess.run([sys.executable, "-c", (
        "import os, sys; from pathlib import Path; from services.process_svc.scratch import ScratchDir\n"
        f"scratch = ScratchDir(Path({str(work_dir)!r}), 'job_dead'); (scratch.path / 'source.mp4').write_bytes(b'x')\n"
        "os.kill(os.getpid(), 9)")], cwd=Path(__file__).parents[2])
    assert killed.returncode == -9
    [dead] = work_dir.iterdir()
    live = ScratchDir(work_dir, "job_live")  # another worker's running job
    try:
        removed = remove_abandoned(work_dir)
        assert removed == [dead] and not dead.exists()
        assert live.path.is_dir()
    finally:
        live.remove()
    assert list(work_dir.iterdir()) == []


class SlowStore(LocalDirectoryStore):
    """Storage that takes a second to hand out a source, like a large file from B2."""

    async def get_file(self, key: str, dest: Path) -> ObjectInfo:
        await asyncio.sleep(1.0)
        return await super().get_file(key, dest)


async def test_a_job_busy_fetching_its_source_still_sends_a_heartbeat(tmp_path: Path, clip_640x360: Path) -> None:
    bus = InProcessBus()
    harness = Harness(tmp_path, bus, SlowStore(tmp_path / "objects"), heartbeat_seconds=0.2)
    await harness.start()
    try:
        await harness.request(clip_640x360)
        events = await harness.events_until_terminal()
    finally:
        await bus.close()

    assert kinds(events)[0] == "started" and kinds(events)[-1] == "completed"
    before_encoding = list(itertools.takewhile(lambda e: e.progress.frames == 0, events[1:]))
    assert len(before_encoding) >= 3, "a heartbeat every 0.2 s while the source downloads"
    assert all(e.WhichOneof("kind") == "progress" and e.status == common_pb2.JOB_STATUS_RUNNING
               for e in before_encoding)


async def test_per_title_job_reports_its_decisions_phases_and_measured_quality(
        harness: Harness, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "per-title.mp4", seconds=3.0, width=640, height=360)
    request = await harness.request(clip, profile="per-title")

    events = await harness.events_until_terminal(timeout=300)

    assert_well_formed(events, request)
    assert kinds(events)[-1] == "completed", events[-1]
    phases = [e.progress.phase for e in events if e.WhichOneof("kind") == "progress"]
    # Deciding shows as its own phases in WatchJob, before the encode.
    assert common_pb2.JOB_PHASE_ANALYSIS in phases and common_pb2.JOB_PHASE_PROBES in phases
    assert phases.index(common_pb2.JOB_PHASE_PROBES) < phases.index(common_pb2.JOB_PHASE_ENCODE)
    completed = events[-1].completed
    compression = completed.compression
    assert compression.metric == "xpsnr" and compression.windows_analysed >= 1
    assert [r.name for r in compression.rungs] == ["360p"]
    decision = compression.rungs[0]
    assert decision.target_db == 31.5 and len(decision.probed_crfs) >= 1 and 14 <= decision.crf <= 42
    cost = compression.cost
    assert cost.analysis_seconds > 0 and cost.probe_seconds > 0 and cost.encode_seconds > 0
    assert 0 < cost.share < 1 and cost.probe_encodes >= 1
    (rendition,) = completed.renditions
    # The rendition carries its decision, and the quality report measured on the rendition itself.
    assert rendition.per_title == decision
    assert rendition.quality.frames_compared > 0
    assert rendition.quality.xpsnr_db >= decision.target_db - 0.5, (rendition.quality, decision)
