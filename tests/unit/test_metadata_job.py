"""The Job domain object: which events it takes, and what each one does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.metadata_svc.job import FAILED_WITHOUT_REASON, Job, JobStatus
from vtc.v1 import common_pb2, events_pb2

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def event(sequence: int, *, attempt: int = 1, at: datetime | None = None, **kind: Any) -> events_pb2.JobEvent:
    message = events_pb2.JobEvent(event_id=f"evt_{attempt}_{sequence}", job_id="job_1", video_id="vid_1",
                                  tenant_id="ten_a", attempt=attempt, sequence=sequence, **kind)
    message.occurred_at.FromDatetime(at or T0 + timedelta(seconds=sequence))
    return message


def started(sequence: int, **kw: Any) -> events_pb2.JobEvent:
    return event(sequence, started=events_pb2.JobStarted(worker="w1"), status=common_pb2.JOB_STATUS_RUNNING, **kw)


def progress(sequence: int, percent: float, **kw: Any) -> events_pb2.JobEvent:
    return event(sequence, progress=common_pb2.Progress(percent=percent, frames=int(percent), total_frames=100),
                 status=common_pb2.JOB_STATUS_RUNNING, **kw)


def completed(sequence: int, **kw: Any) -> events_pb2.JobEvent:
    renditions = [common_pb2.Rendition(name="360p", width=640, height=360, bitrate=800_000, size_bytes=200_000,
                                       duration_seconds=2.0, storage_key="ten_a/vid_1/renditions/360p.mp4",
                                       container="mp4", video_codec="h264", audio_codec="aac",
                                       content_type="video/mp4")]
    return event(sequence, completed=events_pb2.JobCompleted(renditions=renditions),
                 status=common_pb2.JOB_STATUS_COMPLETED, **kw)


def failed(sequence: int, reason: str = "source is corrupt after 1.2 s", **kw: Any) -> events_pb2.JobEvent:
    return event(sequence, failed=events_pb2.JobFailed(reason=reason), status=common_pb2.JOB_STATUS_FAILED, **kw)


@pytest.fixture
def job() -> Job:
    return Job.queued("job_1", "vid_1", "ten_a", "default", T0)


def test_a_new_job_is_queued_with_nothing_started(job: Job) -> None:
    assert (job.status, job.attempt, job.started_at, job.finished_at) == (JobStatus.QUEUED, 1, None, None)
    assert job.progress.percent == 0


def test_started_then_progress_moves_status_and_start_time(job: Job) -> None:
    assert job.apply(started(1))
    assert job.status is JobStatus.RUNNING and job.started_at == T0 + timedelta(seconds=1)
    assert job.apply(progress(2, 10.0)) and job.apply(progress(3, 50.0))
    assert job.progress.percent == 50.0 and job.progress.total_frames == 100
    assert job.started_at == T0 + timedelta(seconds=1)  # progress does not restart the clock


def test_repeated_and_older_events_change_nothing(job: Job) -> None:
    for e in (started(1), progress(2, 10.0), progress(3, 50.0)):
        job.apply(e)
    before = (job.status, job.progress, job.last_sequence, job.started_at)
    assert not job.apply(progress(3, 50.0))  # a redelivery
    assert not job.apply(progress(2, 10.0))  # out of order
    assert not job.apply(started(1))
    assert (job.status, job.progress, job.last_sequence, job.started_at) == before


def test_completed_stores_renditions_and_finish_time_and_then_nothing_moves_it(job: Job) -> None:
    job.apply(started(1))
    job.apply(progress(2, 60.0))
    assert job.apply(completed(3))
    assert job.status is JobStatus.COMPLETED and job.finished_at == T0 + timedelta(seconds=3)
    assert [r.name for r in job.renditions] == ["360p"] and job.renditions[0].audio_codec == "aac"
    assert job.progress.percent == 100.0
    final = (job.status, job.progress, job.renditions, job.finished_at, job.error)
    assert not job.apply(progress(4, 70.0))
    assert not job.apply(failed(5))
    assert not job.apply(started(1, attempt=2))  # not even a newer attempt reopens a finished job
    assert (job.status, job.progress, job.renditions, job.finished_at, job.error) == final


def test_failed_keeps_the_reason_a_person_can_act_on(job: Job) -> None:
    job.apply(started(1))
    assert job.apply(failed(2, "the source has no video stream"))
    assert job.status is JobStatus.FAILED and job.error == "the source has no video stream"
    assert job.finished_at == T0 + timedelta(seconds=2)


def test_failed_without_a_reason_still_says_something(job: Job) -> None:
    job.apply(failed(1, reason=""))
    assert job.error == FAILED_WITHOUT_REASON


def test_progress_before_started_still_marks_the_job_running(job: Job) -> None:
    assert job.apply(progress(2, 20.0))
    assert job.status is JobStatus.RUNNING and job.started_at == T0 + timedelta(seconds=2)
    assert not job.apply(started(1))  # the late started event is older


def test_percent_outside_0_to_100_is_clamped(job: Job) -> None:
    job.apply(progress(1, 140.0))
    assert job.progress.percent == 100.0


def test_a_cancellation_finishes_the_job_without_renditions(job: Job) -> None:
    job.apply(started(1))
    assert job.apply(event(2, cancelled=events_pb2.JobCancelled(), status=common_pb2.JOB_STATUS_CANCELLED))
    assert job.status is JobStatus.CANCELLED and job.finished_at == T0 + timedelta(seconds=2)
    assert not job.apply(progress(3, 50.0))


def test_cancel_ends_a_running_job_with_an_event_watchers_take_after_their_snapshot(job: Job) -> None:
    job.apply(started(1))
    job.apply(progress(2, 40.0))
    snapshot = Job(**vars(job))

    cancelled = job.cancel(T0 + timedelta(minutes=1))

    assert job.status is JobStatus.CANCELLED and job.finished_at == T0 + timedelta(minutes=1)
    assert cancelled.status == common_pb2.JOB_STATUS_CANCELLED and cancelled.WhichOneof("kind") == "cancelled"
    assert snapshot.is_newer(cancelled)
    assert not job.apply(completed(3)), "the worker's late completion changes nothing"
    with pytest.raises(ValueError, match="CANCELLED"):
        job.cancel(T0 + timedelta(minutes=2))


def test_fail_ends_a_job_no_worker_could_finish_with_its_reason(job: Job) -> None:
    job.apply(started(1, attempt=3))

    failed_event = job.fail("the transcoder crashed on this file 5 times", T0 + timedelta(minutes=9))

    assert (job.status, job.error, job.finished_at) == (
        JobStatus.FAILED, "the transcoder crashed on this file 5 times", T0 + timedelta(minutes=9))
    assert (failed_event.attempt, failed_event.sequence) == (3, 2)
    assert failed_event.failed.reason == job.error
    assert not job.apply(progress(1, 50.0, attempt=4)), "a zombie worker's later attempt changes nothing"


def test_an_event_without_a_kind_is_ignored(job: Job) -> None:
    assert not job.apply(event(1, status=common_pb2.JOB_STATUS_RUNNING))
    assert job.status is JobStatus.QUEUED and job.last_sequence == 0


def test_requeue_starts_a_new_attempt_from_scratch(job: Job) -> None:
    job.apply(started(1))
    job.apply(progress(2, 40.0))
    job.requeue(T0 + timedelta(minutes=5))
    assert (job.status, job.attempt, job.last_sequence) == (JobStatus.QUEUED, 2, 0)
    assert job.started_at is None and job.progress.percent == 0
    # The old attempt's late events order before the new attempt's.
    assert not job.apply(progress(3, 45.0))
    assert job.apply(started(1, attempt=2, at=T0 + timedelta(minutes=6)))
    assert job.status is JobStatus.RUNNING and job.started_at == T0 + timedelta(minutes=6)


def test_requeue_of_a_finished_job_is_refused(job: Job) -> None:
    job.apply(completed(1))
    with pytest.raises(ValueError):
        job.requeue(T0)
    assert job.status is JobStatus.COMPLETED and job.attempt == 1


def test_an_event_of_a_newer_attempt_resets_progress(job: Job) -> None:
    job.apply(started(1))
    job.apply(progress(2, 80.0))
    assert job.apply(progress(1, 5.0, attempt=2, at=T0 + timedelta(minutes=1)))
    assert (job.attempt, job.last_sequence, job.progress.percent) == (2, 1, 5.0)
    assert job.started_at == T0 + timedelta(minutes=1)


def test_to_proto_carries_status_times_and_renditions(job: Job) -> None:
    job.apply(started(1))
    job.apply(completed(2))
    message = job.to_proto()
    assert message.status == common_pb2.JOB_STATUS_COMPLETED
    assert message.started_at.ToDatetime(tzinfo=UTC) == T0 + timedelta(seconds=1)
    assert message.finished_at.ToDatetime(tzinfo=UTC) == T0 + timedelta(seconds=2)
    assert message.renditions[0].storage_key == "ten_a/vid_1/renditions/360p.mp4"
    assert message.progress.percent == 100.0 and message.attempt == 1
