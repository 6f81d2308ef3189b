"""The catalogue: every SQL read and write of videos, jobs and renditions.
Reads take the caller's tenant and treat another tenant's rows as missing,
with the same message, so ids reveal nothing across tenants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from google.protobuf.json_format import MessageToDict, ParseDict
from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metadata_svc.dispatch import job_request_row, job_requested
from services.metadata_svc.job import (
    UNFINISHED,
    Job,
    JobStatus,
    JobTrigger,
    Output,
    OutputFile,
    OutputStatus,
    Progress,
    Quality,
    Rendition,
)
from services.metadata_svc.models import JobRow, OutboxRow, OutputRow, RenditionRow, VideoRow
from services.metadata_svc.paging import PageCursor
from services.metadata_svc.quotas import TenantQuota
from services.metadata_svc.video import NewVideo, Video
from services.shared.errors import AlreadyExists, FailedPrecondition, NotFound
from vtc.v1 import common_pb2, events_pb2


def video_not_found(video_id: str) -> NotFound:
    return NotFound(f"video {video_id!r} not found")


def job_not_found(job_id: str) -> NotFound:
    return NotFound(f"job {job_id!r} not found")


@dataclass(frozen=True)
class VideoPage:
    videos: list[Video]
    next_cursor: PageCursor | None

    def first(self, count: int) -> VideoPage:
        """The first `count` videos, with the cursor after the last of them."""
        if count >= len(self.videos):
            return self
        last = self.videos[count - 1]
        return VideoPage(self.videos[:count], PageCursor(last.created_at, last.video_id))


class VideoCatalog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], quota: TenantQuota | None = None) -> None:
        self._sessions = sessions
        self._quota = quota or TenantQuota()

    async def register(self, new: NewVideo, at: datetime) -> tuple[Video, Job]:
        """Records an accepted upload, its first job and the request that
        dispatches it (an outbox row), in one transaction. Registering the same
        video and job again (a retried call) returns what was recorded.
        Raises ResourceExhausted when the tenant's quota does not allow it."""
        job = Job.queued(new.job_id, new.video_id, new.tenant_id, new.profile, at,
                         profile_document=new.profile_document)
        try:
            async with self._sessions.begin() as session:
                existing = await session.get(VideoRow, new.video_id)
                if existing is not None:
                    return _replay_of_register(existing, new)
                if await session.get(JobRow, new.job_id) is not None:
                    raise AlreadyExists(f"job {new.job_id!r} already exists")
                await self._quota.check_new_upload(session, new.tenant_id, new.size_bytes)
                job_row = _new_job_row(job)
                row = VideoRow(video_id=new.video_id, tenant_id=new.tenant_id, title=new.title,
                               filename=new.filename, size_bytes=new.size_bytes, sha256=new.sha256,
                               probe=MessageToDict(new.probe, preserving_proto_field_name=True),
                               source_key=new.source_key, created_at=at, jobs=[job_row])
                session.add(row)
                session.add(job_request_row(job_requested(job_row, row, new.probe, at), at))
        except IntegrityError as error:  # a concurrent register of the same ids won the race
            raise AlreadyExists(f"video {new.video_id!r} or job {new.job_id!r} already exists") from error
        return _video(row), job

    async def retranscode(self, tenant_id: str, video_id: str, job_id: str, profile: str, profile_document: str,
                          at: datetime) -> Job:
        """A new job of the tenant's stored video under `profile` (a customer's own when
        `profile_document` is set), with the request that dispatches it, in one transaction.
        Raises NotFound (not the tenant's video), ResourceExhausted (quota)."""
        job = Job.queued(job_id, video_id, tenant_id, profile, at, trigger=JobTrigger.RETRANSCODE,
                         profile_document=profile_document)
        async with self._sessions.begin() as session:
            video_row = await _video_row(session, tenant_id, video_id)
            await self._quota.check_new_job(session, tenant_id)
            self._add_job(session, job, video_row, at)
        return job

    async def retry_job(self, tenant_id: str, job_id: str, new_job_id: str, at: datetime) -> Job:
        """A new job making again what the tenant's finished job `job_id` did not make (Job.retry),
        with the request that dispatches it, in one transaction. Raises NotFound, FailedPrecondition
        (the job runs, or made everything), ResourceExhausted (quota)."""
        async with self._sessions.begin() as session:
            found = (await session.execute(
                select(JobRow, VideoRow).join(VideoRow, JobRow.video_id == VideoRow.video_id)
                .where(JobRow.job_id == job_id, JobRow.tenant_id == tenant_id))).first()
            if found is None:
                raise job_not_found(job_id)
            job_row, video_row = found
            retry = _job(job_row).retry(new_job_id, at)
            await self._quota.check_new_job(session, tenant_id)
            self._add_job(session, retry, video_row, at)
        return retry

    @staticmethod
    def _add_job(session: AsyncSession, job: Job, video_row: VideoRow, at: datetime) -> None:
        job_row = _new_job_row(job)
        session.add(job_row)
        probe = ParseDict(video_row.probe or {}, common_pb2.MediaProbe())
        session.add(job_request_row(job_requested(job_row, video_row, probe, at), at))

    async def get_video(self, tenant_id: str, video_id: str) -> Video:
        async with self._sessions() as session:
            return _video(await _video_row(session, tenant_id, video_id))

    async def list_videos(self, tenant_id: str, page_size: int, after: PageCursor | None) -> VideoPage:
        query = (select(VideoRow).where(VideoRow.tenant_id == tenant_id)
                 .order_by(VideoRow.created_at.desc(), VideoRow.video_id.desc()).limit(page_size + 1))
        if after is not None:
            query = query.where(or_(VideoRow.created_at < after.created_at,
                                    and_(VideoRow.created_at == after.created_at, VideoRow.video_id < after.video_id)))
        async with self._sessions() as session:
            rows = list((await session.scalars(query)).all())
        videos = [_video(row) for row in rows[:page_size]]
        more = len(rows) > page_size
        cursor = PageCursor(videos[-1].created_at, videos[-1].video_id) if more else None
        return VideoPage(videos, cursor)

    async def delete_video(self, tenant_id: str, video_id: str) -> list[str]:
        """Deletes the video with its jobs and renditions; returns the deleted job ids."""
        async with self._sessions.begin() as session:
            row = await _video_row(session, tenant_id, video_id)
            job_ids = [job.job_id for job in row.jobs]
            # A request not yet released would send a worker after a source that is gone.
            await session.execute(delete(OutboxRow).where(OutboxRow.job_id.in_(job_ids)))
            await session.delete(row)
        return job_ids

    async def get_job(self, tenant_id: str, job_id: str) -> Job:
        async with self._sessions() as session:
            row = await session.scalar(select(JobRow).where(JobRow.job_id == job_id, JobRow.tenant_id == tenant_id))
            if row is None:
                raise job_not_found(job_id)
            return _job(row)

    async def find_job(self, job_id: str) -> Job | None:
        """Any tenant's job, for the service's own bookkeeping; None when there is none."""
        async with self._sessions() as session:
            row = await session.get(JobRow, job_id)
            return _job(row) if row is not None else None

    async def known_video_ids(self, video_ids: Sequence[str]) -> set[str]:
        """Which of these videos the catalogue holds, whatever their tenant."""
        async with self._sessions() as session:
            return set((await session.scalars(select(VideoRow.video_id).where(VideoRow.video_id.in_(video_ids)))).all())

    async def unfinished_jobs(self, tenant_id: str, video_id: str) -> list[Job]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(JobRow).where(
                JobRow.video_id == video_id, JobRow.tenant_id == tenant_id,
                JobRow.status.in_([s.name for s in UNFINISHED])))).all()
            return [_job(row) for row in rows]

    async def cancel_job(self, tenant_id: str, job_id: str, at: datetime) -> tuple[Job, events_pb2.JobEvent | None]:
        """Ends a queued or running job CANCELLED; returns it with the event for watchers,
        or with None when it was cancelled already. A finished job cannot be cancelled."""
        async with self._sessions.begin() as session:
            row = await session.scalar(select(JobRow).where(JobRow.job_id == job_id, JobRow.tenant_id == tenant_id)
                                       .with_for_update())
            if row is None:
                raise job_not_found(job_id)
            job = _job(row)
            if job.status is JobStatus.CANCELLED:
                return job, None
            if job.status.is_terminal:
                raise FailedPrecondition(f"job {job_id!r} is {job.status.name} already; only a queued or running "
                                         "job can be cancelled")
            event = job.cancel(at)
            _write_job(row, job)
        return job, event

    async def find_rendition(self, tenant_id: str, video_id: str, name: str) -> Rendition:
        """The named rendition of the video's newest completed job."""
        video = await self.get_video(tenant_id, video_id)
        async with self._sessions() as session:
            jobs = [_job(row) for row in (await session.scalars(
                select(JobRow).where(JobRow.video_id == video.video_id, JobRow.status == JobStatus.COMPLETED.name)
                .order_by(JobRow.created_at.desc()))).all()]
        if not jobs:
            status = video.job.status.name if video.job else "without a job"
            raise FailedPrecondition(f"video {video_id!r} has no renditions yet: its job is {status}")
        for rendition in jobs[0].renditions:
            if rendition.name == name:
                return rendition
        names = ", ".join(r.name for r in jobs[0].renditions) or "none"
        raise NotFound(f"video {video_id!r} has no rendition {name!r} (it has: {names})")

    async def apply_event(self, event: events_pb2.JobEvent) -> Job | None:
        """Applies the event to its job in one transaction; returns the job
        after it, or None when the event was stale. Raises NotFound for a job
        the catalogue does not hold (its video was deleted)."""
        async with self._sessions.begin() as session:
            # FOR UPDATE: replicas on PostgreSQL apply one job's events one at a time.
            row = await session.get(JobRow, event.job_id, with_for_update=True)
            if row is None or row.tenant_id != event.tenant_id:
                raise job_not_found(event.job_id)
            job = _job(row)
            if not job.apply(event):
                return None
            if event.WhichOneof("kind") == "completed" and job.retry_of:
                retried = await session.get(JobRow, job.retry_of)
                if retried is not None:  # what the retried job did make stays the video's too
                    job.renditions = kept_with(job.renditions, [_rendition(r, _compression(retried))
                                                                for r in retried.renditions])
                    job.outputs = kept_with(job.outputs, _outputs(retried))
            _write_job(row, job)
            row.heartbeat_at = datetime.now(UTC)  # any event of the job's attempt says its worker lives
        return job

    async def fail_job(self, job_id: str, reason: str, at: datetime, *, newest_attempt: int,
                       silent_since: datetime | None = None) -> tuple[Job, events_pb2.JobEvent] | None:
        """Ends an unfinished job FAILED because no worker can finish it; returns it with the event for
        watchers. None, changing nothing, when the job is gone or finished, has moved on to an attempt
        after `newest_attempt`, or (with `silent_since`) had an event since."""
        async with self._sessions.begin() as session:
            row = await session.get(JobRow, job_id, with_for_update=True)
            if row is None:
                return None
            job = _job(row)
            if job.status.is_terminal or job.attempt > newest_attempt or (
                    silent_since is not None and _last_heard(row) > silent_since):
                return None
            event = job.fail(reason, at)
            _write_job(row, job)
        return job, event

    async def silent_jobs(self, since: datetime) -> list[Job]:
        """RUNNING jobs without an event since `since`."""
        heard = func.coalesce(JobRow.heartbeat_at, JobRow.started_at)
        async with self._sessions() as session:
            rows = (await session.scalars(select(JobRow).where(
                JobRow.status == JobStatus.RUNNING.name, heard < since).order_by(heard))).all()
            return [_job(row) for row in rows]

    async def hand_on(self, job_id: str, attempt: int, silent_since: datetime, at: datetime) -> Job | None:
        """Requeues a RUNNING job whose worker went silent as a new attempt, with the request that
        dispatches it (an outbox row), in one transaction. None when it moved meanwhile."""
        async with self._sessions.begin() as session:
            found = (await session.execute(
                select(JobRow, VideoRow).join(VideoRow, JobRow.video_id == VideoRow.video_id)
                .where(JobRow.job_id == job_id).with_for_update(of=JobRow))).first()
            if found is None:
                return None
            job_row, video_row = found
            job = _job(job_row)
            if job.status is not JobStatus.RUNNING or job.attempt != attempt or _last_heard(job_row) > silent_since:
                return None
            job.requeue(at)
            _write_job(job_row, job)
            job_row.dispatched_at, job_row.dispatch_session, job_row.heartbeat_at = None, "", None
            probe = ParseDict(video_row.probe or {}, common_pb2.MediaProbe())
            session.add(job_request_row(job_requested(job_row, video_row, probe, at), at))
        return job

    async def redispatch_lost(self, bus_session: str, at: datetime) -> list[str]:
        """Hands out again, as a new attempt, every unfinished job that has no
        request waiting in the outbox and was not dispatched on `bus_session`:
        the bus it went out on is gone with its messages (the in-process bus of
        a process that stopped). On a broker the session stays the same, so
        this finds nothing there. Returns the job ids."""
        waiting = and_(JobRow.status == JobStatus.QUEUED.name, exists().where(OutboxRow.job_id == JobRow.job_id))
        async with self._sessions.begin() as session:
            rows = (await session.execute(
                select(JobRow, VideoRow).join(VideoRow, JobRow.video_id == VideoRow.video_id)
                .where(JobRow.status.in_([s.name for s in UNFINISHED]), ~waiting,
                       or_(JobRow.dispatched_at.is_(None), JobRow.dispatch_session != bus_session))
                .order_by(JobRow.created_at).with_for_update(of=JobRow))).all()
            # A request of theirs still waiting (a running job's stale one) would go out as the old attempt.
            await session.execute(delete(OutboxRow).where(OutboxRow.job_id.in_([j.job_id for j, _ in rows])))
            for job_row, video_row in rows:
                job = _job(job_row)
                job.requeue(at)
                _write_job(job_row, job)
                job_row.dispatched_at, job_row.dispatch_session = None, ""
                probe = ParseDict(video_row.probe or {}, common_pb2.MediaProbe())
                session.add(job_request_row(job_requested(job_row, video_row, probe, at), at))
        return [job_row.job_id for job_row, _ in rows]


async def _video_row(session: AsyncSession, tenant_id: str, video_id: str) -> VideoRow:
    row = await session.scalar(select(VideoRow).where(VideoRow.video_id == video_id, VideoRow.tenant_id == tenant_id))
    if row is None:
        raise video_not_found(video_id)
    return row


def _last_heard(row: JobRow) -> datetime:
    return row.heartbeat_at or row.started_at or row.created_at


def _replay_of_register(existing: VideoRow, new: NewVideo) -> tuple[Video, Job]:
    job_row = next((j for j in existing.jobs if j.job_id == new.job_id), None)
    if existing.tenant_id != new.tenant_id or job_row is None:
        raise AlreadyExists(f"video {new.video_id!r} already exists")
    return _video(existing), _job(job_row)


class _HasName(Protocol):
    @property
    def name(self) -> str: ...


Named = TypeVar("Named", bound=_HasName)


def kept_with(made: Sequence[Named], earlier: Sequence[Named]) -> list[Named]:
    """A retry's outputs (or renditions): the retried job's, in their order, each replaced by the retry's of
    the same name, then the retry's others."""
    remade = {r.name: r for r in made}
    merged = [remade.pop(r.name, r) for r in earlier]
    return merged + [r for r in made if r.name in remade]


def _video(row: VideoRow) -> Video:
    return Video(video_id=row.video_id, tenant_id=row.tenant_id, title=row.title, filename=row.filename,
                 size_bytes=row.size_bytes, sha256=row.sha256, source_key=row.source_key,
                 created_at=row.created_at, probe=ParseDict(row.probe or {}, common_pb2.MediaProbe()),
                 job=_job(row.jobs[-1]) if row.jobs else None)


def _job(row: JobRow) -> Job:
    compression = _compression(row)
    return Job(job_id=row.job_id, video_id=row.video_id, tenant_id=row.tenant_id, profile=row.profile,
               status=JobStatus[row.status], created_at=row.created_at, attempt=row.attempt,
               last_sequence=row.last_sequence, started_at=row.started_at, finished_at=row.finished_at,
               progress=Progress(percent=row.progress_percent, frames=row.progress_frames,
                                 total_frames=row.progress_total_frames, fps=row.progress_fps,
                                 speed=row.progress_speed, eta_seconds=row.progress_eta_seconds,
                                 phase=row.progress_phase or 0),
               renditions=[_rendition(r, compression) for r in row.renditions], outputs=_outputs(row),
               error=row.error,
               warnings=list(row.warnings or []), trigger=JobTrigger(row.trigger or JobTrigger.UPLOAD),
               retry_of=row.retry_of or "", only_outputs=tuple(row.only_outputs or ()),
               profile_document=row.profile_document or "", compression=compression)


def _compression(row: JobRow) -> common_pb2.Compression | None:
    return ParseDict(row.compression, common_pb2.Compression()) if row.compression else None


def _rendition(row: RenditionRow, compression: common_pb2.Compression | None = None) -> Rendition:
    # A per-title rung's decision is stored once, with the job's compression report.
    decision = next((d for d in compression.rungs if d.name == row.name), None) if compression else None
    return Rendition(name=row.name, width=row.width, height=row.height, bitrate=row.bitrate,
                     size_bytes=row.size_bytes, duration_seconds=row.duration_seconds, storage_key=row.storage_key,
                     container=row.container, video_codec=row.video_codec, audio_codec=row.audio_codec,
                     content_type=row.content_type, quality=_quality(row), per_title=decision)


def _outputs(row: JobRow) -> list[Output]:
    renditions = {r.name: r for r in row.renditions}
    return [Output(name=o.name, type=o.type, status=OutputStatus[o.status], error=o.error or "",
                   files=tuple(OutputFile(**f) for f in o.files or ()),
                   rendition=_rendition(renditions[o.name]) if o.has_rendition and o.name in renditions else None)
            for o in row.outputs]


def _output_rows(job_id: str, outputs: Sequence[Output]) -> list[OutputRow]:
    return [OutputRow(job_id=job_id, position=i, name=o.name, type=o.type, status=o.status.name, error=o.error,
                      files=[{"path": f.path, "storage_key": f.storage_key, "content_type": f.content_type,
                              "size_bytes": f.size_bytes} for f in o.files],
                      has_rendition=o.rendition is not None)
            for i, o in enumerate(outputs)]


def _quality(row: RenditionRow) -> Quality | None:
    if row.quality_frames is None:
        return None
    return Quality(psnr_db=row.quality_psnr_db or 0.0, ssim=row.quality_ssim or 0.0,
                   xpsnr_db=row.quality_xpsnr_db or 0.0, frames_compared=row.quality_frames)


def _new_job_row(job: Job) -> JobRow:
    row = JobRow(job_id=job.job_id, video_id=job.video_id, tenant_id=job.tenant_id, profile=job.profile,
                 created_at=job.created_at, renditions=[], outputs=[], trigger=job.trigger.value, retry_of=job.retry_of,
                 only_outputs=list(job.only_outputs), profile_document=job.profile_document)
    _write_job(row, job)
    return row


def _write_job(row: JobRow, job: Job) -> None:
    row.status = job.status.name
    row.attempt, row.last_sequence = job.attempt, job.last_sequence
    row.progress_percent, row.progress_frames = job.progress.percent, job.progress.frames
    row.progress_total_frames, row.progress_fps = job.progress.total_frames, job.progress.fps
    row.progress_speed, row.progress_eta_seconds = job.progress.speed, job.progress.eta_seconds
    row.progress_phase = job.progress.phase
    row.compression = MessageToDict(job.compression) if job.compression is not None else None
    row.error = job.error
    row.warnings = list(job.warnings)
    row.started_at, row.finished_at = job.started_at, job.finished_at
    if [_rendition(r, job.compression) for r in row.renditions] != job.renditions:
        row.renditions = _rendition_rows(job.job_id, job.renditions)
    if _outputs(row) != job.outputs:
        row.outputs = _output_rows(job.job_id, job.outputs)


def _rendition_rows(job_id: str, renditions: Sequence[Rendition]) -> list[RenditionRow]:
    return [RenditionRow(job_id=job_id, position=i, name=r.name, width=r.width, height=r.height, bitrate=r.bitrate,
                         size_bytes=r.size_bytes, duration_seconds=r.duration_seconds, storage_key=r.storage_key,
                         container=r.container, video_codec=r.video_codec, audio_codec=r.audio_codec,
                         content_type=r.content_type,
                         quality_psnr_db=r.quality.psnr_db if r.quality else None,
                         quality_ssim=r.quality.ssim if r.quality else None,
                         quality_xpsnr_db=r.quality.xpsnr_db if r.quality else None,
                         quality_frames=r.quality.frames_compared if r.quality else None)
            for i, r in enumerate(renditions)]
