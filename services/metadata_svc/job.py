"""The Job domain object: where a transcode stands, and the only code that
moves it. Events from the process service arrive at least once and in any
order; `Job.apply` takes each one only if it is newer than the last one taken
(by attempt, then sequence) and the job is not finished, so replays and stale
events change nothing."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.shared.errors import FailedPrecondition
from vtc.v1 import common_pb2, events_pb2


class JobStatus(enum.IntEnum):
    """Values are those of vtc.v1.JobStatus, so conversion is a cast."""

    QUEUED = common_pb2.JOB_STATUS_QUEUED
    RUNNING = common_pb2.JOB_STATUS_RUNNING
    COMPLETED = common_pb2.JOB_STATUS_COMPLETED
    FAILED = common_pb2.JOB_STATUS_FAILED
    CANCELLED = common_pb2.JOB_STATUS_CANCELLED

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)


class JobTrigger(enum.StrEnum):
    """What made a job. Only the upload's job writes into the video's own folders; later ones
    keep their outputs in a job folder (storage/keys.py), so they never overwrite an earlier job's."""

    UPLOAD = "upload"
    RETRANSCODE = "retranscode"
    RETRY = "retry"


@dataclass(frozen=True)
class Progress:
    percent: float = 0.0
    frames: int = 0
    total_frames: int = 0
    fps: float = 0.0
    speed: float = 0.0
    eta_seconds: float = 0.0
    phase: int = common_pb2.JOB_PHASE_UNSPECIFIED  # vtc.v1.JobPhase: per-title analysis, probes, then encode

    @classmethod
    def from_proto(cls, message: common_pb2.Progress) -> Progress:
        return cls(percent=min(max(message.percent, 0.0), 100.0), frames=message.frames,
                   total_frames=message.total_frames, fps=message.fps, speed=message.speed,
                   eta_seconds=message.eta_seconds, phase=message.phase)

    def to_proto(self) -> common_pb2.Progress:
        return common_pb2.Progress(percent=self.percent, frames=self.frames, total_frames=self.total_frames,
                                   fps=self.fps, speed=self.speed, eta_seconds=self.eta_seconds,
                                   phase=self.phase)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Quality:
    """A rendition against the source scaled to its size (process_svc/execute/quality.py)."""
    psnr_db: float
    ssim: float
    xpsnr_db: float
    frames_compared: int

    @classmethod
    def from_proto(cls, message: common_pb2.RenditionQuality) -> Quality:
        return cls(psnr_db=message.psnr_db, ssim=message.ssim, xpsnr_db=message.xpsnr_db,
                   frames_compared=message.frames_compared)

    def to_proto(self) -> common_pb2.RenditionQuality:
        return common_pb2.RenditionQuality(psnr_db=self.psnr_db, ssim=self.ssim, xpsnr_db=self.xpsnr_db,
                                           frames_compared=self.frames_compared)


@dataclass(frozen=True)
class Rendition:
    name: str
    width: int
    height: int
    bitrate: int
    size_bytes: int
    duration_seconds: float
    storage_key: str
    container: str = "mp4"
    video_codec: str = "h264"
    audio_codec: str = ""
    content_type: str = "video/mp4"
    quality: Quality | None = None  # None when not measured
    per_title: common_pb2.RungDecision | None = None  # per-title jobs: what was decided for this rung

    @classmethod
    def from_proto(cls, message: common_pb2.Rendition) -> Rendition:
        return cls(name=message.name, width=message.width, height=message.height, bitrate=message.bitrate,
                   size_bytes=message.size_bytes, duration_seconds=message.duration_seconds,
                   storage_key=message.storage_key, container=message.container or "mp4",
                   video_codec=message.video_codec, audio_codec=message.audio_codec,
                   content_type=message.content_type or "video/mp4",
                   quality=Quality.from_proto(message.quality) if message.HasField("quality") else None,
                   per_title=message.per_title if message.HasField("per_title") else None)

    def to_proto(self) -> common_pb2.Rendition:
        return common_pb2.Rendition(
            name=self.name, width=self.width, height=self.height, bitrate=self.bitrate,
            size_bytes=self.size_bytes, duration_seconds=self.duration_seconds, storage_key=self.storage_key,
            container=self.container, video_codec=self.video_codec, audio_codec=self.audio_codec,
            content_type=self.content_type, quality=self.quality.to_proto() if self.quality else None,
            per_title=self.per_title)


class OutputStatus(enum.IntEnum):
    """Values are those of vtc.v1.OutputStatus."""

    COMPLETED = common_pb2.OUTPUT_STATUS_COMPLETED
    FAILED = common_pb2.OUTPUT_STATUS_FAILED


@dataclass(frozen=True)
class OutputFile:
    path: str  # relative to the job's outputs folder: "renditions/720p.mp4"
    storage_key: str
    content_type: str
    size_bytes: int


@dataclass(frozen=True)
class Output:
    """One output of a job: COMPLETED with its stored files (and rendition, for video and audio), or
    FAILED with the reason."""

    name: str
    type: str
    status: OutputStatus
    error: str = ""
    files: tuple[OutputFile, ...] = ()
    rendition: Rendition | None = None

    @classmethod
    def from_proto(cls, message: common_pb2.Output) -> Output:
        return cls(name=message.name, type=message.type,
                   status=OutputStatus(message.status or common_pb2.OUTPUT_STATUS_COMPLETED), error=message.error,
                   files=tuple(OutputFile(path=f.path, storage_key=f.storage_key, content_type=f.content_type,
                                          size_bytes=f.size_bytes) for f in message.files),
                   rendition=Rendition.from_proto(message.rendition) if message.HasField("rendition") else None)

    def to_proto(self) -> common_pb2.Output:
        return common_pb2.Output(
            name=self.name, type=self.type, status=int(self.status), error=self.error,
            files=[common_pb2.OutputFile(path=f.path, storage_key=f.storage_key, content_type=f.content_type,
                                         size_bytes=f.size_bytes) for f in self.files],
            rendition=self.rendition.to_proto() if self.rendition is not None else None)


# The status each kind of event leaves the job in.
_STATUS_AFTER = {
    "started": JobStatus.RUNNING,
    "progress": JobStatus.RUNNING,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
}

FAILED_WITHOUT_REASON = "the transcode failed and the worker gave no reason; try uploading again"


@dataclass
class Job:
    job_id: str
    video_id: str
    tenant_id: str
    profile: str
    status: JobStatus
    created_at: datetime
    attempt: int = 1
    last_sequence: int = 0  # sequence of the last event applied within `attempt`
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: Progress = field(default_factory=Progress)
    renditions: list[Rendition] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)  # every output of the profile, completed or failed
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    trigger: JobTrigger = JobTrigger.UPLOAD
    retry_of: str = ""  # the job this one retries
    only_outputs: tuple[str, ...] = ()  # what a retry makes again; empty: everything the profile makes
    profile_document: str = ""  # a customer's own profile (YAML/JSON); `profile` is then its name
    compression: common_pb2.Compression | None = None  # per-title: the analysis, decisions and their cost

    @classmethod
    def queued(cls, job_id: str, video_id: str, tenant_id: str, profile: str, at: datetime, *,
               trigger: JobTrigger = JobTrigger.UPLOAD, retry_of: str = "", only_outputs: tuple[str, ...] = (),
               profile_document: str = "") -> Job:
        return cls(job_id=job_id, video_id=video_id, tenant_id=tenant_id, profile=profile,
                   status=JobStatus.QUEUED, created_at=at, trigger=trigger, retry_of=retry_of,
                   only_outputs=only_outputs, profile_document=profile_document)

    @property
    def outputs_in_job_folder(self) -> bool:
        return self.trigger is not JobTrigger.UPLOAD

    def retry(self, job_id: str, at: datetime) -> Job:
        """A new job making again, with the same profile, what this finished one did not make: the
        outputs that FAILED in a completed job, or everything a failed or cancelled job was asked to
        make. FailedPrecondition while it runs, or when every output was made."""
        if not self.status.is_terminal:
            raise FailedPrecondition(f"job {self.job_id!r} is {self.status.name}: only a finished job can be "
                                     "retried (cancel it first)")
        only = self.only_outputs
        if self.status is JobStatus.COMPLETED:
            only = tuple(output.name for output in self.outputs if output.status is OutputStatus.FAILED)
            if not only:
                raise FailedPrecondition(f"job {self.job_id!r} COMPLETED with every output: there is nothing to "
                                         "retry; to make them again, re-transcode the video")
        return Job.queued(job_id, self.video_id, self.tenant_id, self.profile, at, trigger=JobTrigger.RETRY,
                          retry_of=self.job_id, only_outputs=only, profile_document=self.profile_document)

    def is_newer(self, event: events_pb2.JobEvent) -> bool:
        """Whether the event orders after the last one applied."""
        return (event.attempt, event.sequence) > (self.attempt, self.last_sequence)

    def apply(self, event: events_pb2.JobEvent) -> bool:
        """Applies the event if it is newer and the job unfinished; returns whether anything changed."""
        kind = event.WhichOneof("kind")
        target = _STATUS_AFTER.get(kind or "")
        if target is None or self.status.is_terminal or not self.is_newer(event):
            return False
        at = _occurred_at(event)
        if event.attempt > self.attempt:
            # A worker took the job again without us re-enqueueing it (a redelivery).
            self._begin_attempt(event.attempt, at)
        if kind == "started":
            self.progress = Progress()
        elif kind == "progress":
            self.progress = Progress.from_proto(event.progress)
        elif kind == "completed":
            self.renditions = [Rendition.from_proto(r) for r in event.completed.renditions]
            self.outputs = [Output.from_proto(o) for o in event.completed.outputs]
            self.warnings = list(event.completed.warnings)
            self.compression = event.completed.compression if event.completed.HasField("compression") else None
            self.progress = Progress(percent=100.0, frames=self.progress.frames,
                                     total_frames=self.progress.total_frames)
        elif kind == "failed":
            self.error = event.failed.reason or FAILED_WITHOUT_REASON
        self.last_sequence = event.sequence
        self._move_to(target, at)
        return True

    def cancel(self, at: datetime) -> events_pb2.JobEvent:
        """Ends the unfinished job CANCELLED; returns the event watchers are sent."""
        return self._end(at, common_pb2.JOB_STATUS_CANCELLED, cancelled=events_pb2.JobCancelled())

    def fail(self, reason: str, at: datetime) -> events_pb2.JobEvent:
        """Ends the unfinished job FAILED when no worker can (dead-lettered, silent); returns the event."""
        return self._end(at, common_pb2.JOB_STATUS_FAILED, failed=events_pb2.JobFailed(reason=reason))

    def _end(self, at: datetime, status: common_pb2.JobStatus, **kind: object) -> events_pb2.JobEvent:
        """An event of metadata's own that ends the job, numbered after the last one applied."""
        if self.status.is_terminal:
            raise ValueError(f"job {self.job_id} is {self.status.name} already; only unfinished jobs are ended")
        event = events_pb2.JobEvent(
            event_id=uuid.uuid4().hex, job_id=self.job_id, video_id=self.video_id, tenant_id=self.tenant_id,
            attempt=self.attempt, sequence=self.last_sequence + 1, status=status, **kind)
        event.occurred_at.FromDatetime(at)
        self.apply(event)
        return event

    def to_proto(self) -> common_pb2.Job:
        job = common_pb2.Job(job_id=self.job_id, video_id=self.video_id, tenant_id=self.tenant_id,
                             status=int(self.status), profile=self.profile, progress=self.progress.to_proto(),
                             renditions=[r.to_proto() for r in self.renditions], error=self.error,
                             outputs=[o.to_proto() for o in self.outputs],
                             attempt=self.attempt, warnings=self.warnings, retry_of=self.retry_of,
                             custom_profile=bool(self.profile_document), compression=self.compression)
        job.created_at.FromDatetime(self.created_at)
        if self.started_at is not None:
            job.started_at.FromDatetime(self.started_at)
        if self.finished_at is not None:
            job.finished_at.FromDatetime(self.finished_at)
        return job

    def requeue(self, at: datetime) -> None:
        """Hands an unfinished job out again as a new attempt, so events of the
        old attempt (if any still arrive) order before the new one's."""
        if self.status.is_terminal:
            raise ValueError(f"job {self.job_id} is {self.status.name}; only unfinished jobs are re-enqueued")
        self._begin_attempt(self.attempt + 1, at)

    def _begin_attempt(self, attempt: int, at: datetime) -> None:
        self.attempt, self.last_sequence = attempt, 0
        self.progress, self.renditions, self.outputs, self.error, self.warnings = Progress(), [], [], "", []
        self.compression = None
        self._move_to(JobStatus.QUEUED, at)

    def _move_to(self, status: JobStatus, at: datetime) -> None:
        """The one place the status changes, together with the timestamps that go with it."""
        if status is JobStatus.QUEUED:
            self.started_at = self.finished_at = None
        elif status is JobStatus.RUNNING:
            self.started_at = self.started_at or at
        else:
            self.finished_at = at
        self.status = status


def _occurred_at(event: events_pb2.JobEvent) -> datetime:
    if event.HasField("occurred_at"):
        return event.occurred_at.ToDatetime(tzinfo=UTC)
    return datetime.now(UTC)
