"""Later jobs of a video: what a retry takes over from the job it retries, what
the video keeps of it, and which profile a worker runs for each."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.metadata_svc.catalog import kept_with
from services.metadata_svc.job import Job, JobStatus, JobTrigger, Output, OutputStatus, Rendition
from services.process_svc.profiles import ProfileCatalog
from services.process_svc.worker import job_profile
from services.shared.errors import FailedPrecondition, InvalidArgument
from services.shared.storage.keys import rendition_key
from vtc.v1 import events_pb2

T0 = datetime(2030, 1, 1, tzinfo=UTC)
OWN = "name: own\noutputs:\n  - {type: video, name: small, height: 240, crf: 28, maxrate: 500k, bufsize: 1M}\n"


def _job(status: JobStatus, **fields: object) -> Job:
    job = Job.queued("job_1", "vid_1", "ten_a", "own", T0, profile_document=OWN, **fields)  # type: ignore[arg-type]
    job.status = status
    return job


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_retry_runs_the_same_profile_and_names_the_job_it_retries(status: JobStatus) -> None:
    retry = _job(status).retry("job_2", T0)
    assert (retry.job_id, retry.retry_of, retry.trigger, retry.status) == ("job_2", "job_1", JobTrigger.RETRY,
                                                                          JobStatus.QUEUED)
    assert (retry.profile, retry.profile_document) == ("own", OWN)
    assert retry.outputs_in_job_folder
    assert retry.to_proto().retry_of == "job_1" and retry.to_proto().custom_profile


def test_a_retry_of_a_retry_makes_only_what_that_one_was_asked_to_make() -> None:
    retry = _job(JobStatus.FAILED, only_outputs=("small",)).retry("job_3", T0)
    assert retry.only_outputs == ("small",)


@pytest.mark.parametrize(("status", "words"), [(JobStatus.QUEUED, "only a finished job"),
                                               (JobStatus.RUNNING, "only a finished job"),
                                               (JobStatus.COMPLETED, "nothing to retry")])
def test_a_running_or_completed_job_cannot_be_retried(status: JobStatus, words: str) -> None:
    with pytest.raises(FailedPrecondition, match=words):
        _job(status).retry("job_2", T0)


def test_a_retry_of_a_completed_job_makes_only_its_failed_outputs() -> None:
    job = _job(JobStatus.COMPLETED)
    job.outputs = [Output(name="720p", type="video", status=OutputStatus.COMPLETED),
                   Output(name="poster", type="poster", status=OutputStatus.FAILED, error="disk full"),
                   Output(name="audio", type="audio", status=OutputStatus.FAILED, error="encoder failed")]
    retry = job.retry("job_2", T0)
    assert retry.only_outputs == ("poster", "audio") and retry.retry_of == "job_1"


def test_only_the_uploads_job_writes_into_the_videos_own_folders() -> None:
    upload = Job.queued("job_1", "vid_1", "ten_a", "default", T0)
    again = Job.queued("job_2", "vid_1", "ten_a", "default", T0, trigger=JobTrigger.RETRANSCODE)
    assert not upload.outputs_in_job_folder and again.outputs_in_job_folder
    assert rendition_key("ten_a", "vid_1", "720p") == "ten_a/vid_1/renditions/720p.mp4"
    assert (rendition_key("ten_a", "vid_1", "720p", "webm", job_id="job_2")
            == "ten_a/vid_1/jobs/job_2/renditions/720p.webm")


def _rendition(name: str, key: str) -> Rendition:
    return Rendition(name=name, width=2, height=2, bitrate=1, size_bytes=1, duration_seconds=1.0, storage_key=key)


def test_a_retry_keeps_what_the_retried_job_made_and_replaces_what_it_made_again() -> None:
    earlier = [_rendition("720p", "a/720p"), _rendition("360p", "a/360p")]
    made = [_rendition("360p", "b/360p"), _rendition("extra", "b/extra")]
    assert [(r.name, r.storage_key) for r in kept_with(made, earlier)] == [
        ("720p", "a/720p"), ("360p", "b/360p"), ("extra", "b/extra")]


def _request(**fields: object) -> events_pb2.JobRequested:
    return events_pb2.JobRequested(job_id="job_1", video_id="vid_1", tenant_id="ten_a", **fields)  # type: ignore[arg-type]


def test_the_worker_runs_the_customers_own_profile_cut_down_to_the_outputs_retried() -> None:
    catalog = ProfileCatalog.load()
    assert [r.name for r in job_profile(catalog, _request(profile="default")).renditions] == [
        "1080p", "720p", "480p", "360p"]
    assert [r.name for r in job_profile(catalog, _request(profile="default", only_outputs=["720p", "360p"]))
            .renditions] == ["720p", "360p"]
    own = job_profile(catalog, _request(profile="own", profile_document=OWN))
    assert own.name == "own" and [r.height for r in own.renditions] == [240]
    with pytest.raises(InvalidArgument, match="has no output 4k to make again"):
        job_profile(catalog, _request(profile="default", only_outputs=["4k"]))
