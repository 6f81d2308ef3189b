"""Which presentation GetVideo signs, and that a failure to sign never fails GetVideo."""

from __future__ import annotations

import base64
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from services.metadata_svc.job import Job, JobStatus, JobTrigger, Output, OutputFile, OutputStatus
from services.metadata_svc.playback import Playback
from services.metadata_svc.video import Video
from services.shared.errors import FailedPrecondition
from services.shared.storage.local import LocalDirectoryStore
from services.shared.storage.signed_urls import UrlSigner

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def video_with(job: Job | None) -> Video:
    return Video(video_id="vid_1", tenant_id="ten_a", title="t", filename="f.mov", size_bytes=1, sha256="0" * 64,
                 source_key="ten_a/vid_1/source.mov", created_at=NOW, job=job)


def job(status: JobStatus, trigger: JobTrigger = JobTrigger.UPLOAD, job_id: str = "job_2") -> Job:
    return Job(job_id=job_id, video_id="vid_1", tenant_id="ten_a", profile="default", status=status,
               created_at=NOW, trigger=trigger)


def put(root: Path, key: str) -> None:
    (root / key).parent.mkdir(parents=True, exist_ok=True)
    (root / key).write_text("#EXTM3U\n")


def scope_of(url: str) -> str:
    token = urlsplit(url).path.split("/")[2]
    return base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()


@pytest.fixture
def signer() -> UrlSigner:
    return UrlSigner(os.urandom(32), "http://gateway.test")


async def test_no_presentation_no_urls(tmp_path: Path, signer: UrlSigner) -> None:
    playback = Playback(LocalDirectoryStore(tmp_path, signer), signer)
    assert await playback.urls(video_with(job(JobStatus.COMPLETED)), 60) is None


async def test_only_the_formats_present_get_a_url(tmp_path: Path, signer: UrlSigner) -> None:
    put(tmp_path, "ten_a/vid_1/presentation/master.m3u8")
    urls = await Playback(LocalDirectoryStore(tmp_path, signer), signer).urls(
        video_with(job(JobStatus.COMPLETED)), 60)

    assert urls is not None and urls.dash_url == ""
    assert scope_of(urls.hls_url) == "ten_a/vid_1/presentation/"
    assert abs(urls.expires_at.timestamp() - (time.time() + 60)) < 5


@pytest.mark.parametrize(("status", "expected"), [
    (JobStatus.COMPLETED, "ten_a/vid_1/jobs/job_2/presentation/"),  # the re-transcode's, once it completed
    (JobStatus.RUNNING, "ten_a/vid_1/presentation/"),  # meanwhile the upload's job's still plays
    (JobStatus.FAILED, "ten_a/vid_1/presentation/"),
])
async def test_a_retranscode_replaces_the_presentation_once_it_completes(
        status: JobStatus, expected: str, tmp_path: Path, signer: UrlSigner) -> None:
    for folder in ("ten_a/vid_1/presentation/", "ten_a/vid_1/jobs/job_2/presentation/"):
        put(tmp_path, folder + "master.m3u8")
        put(tmp_path, folder + "manifest.mpd")
    latest = job(status, JobTrigger.RETRANSCODE)

    urls = await Playback(LocalDirectoryStore(tmp_path, signer), signer).urls(video_with(latest), 60)

    assert urls is not None and scope_of(urls.hls_url) == scope_of(urls.dash_url) == expected


async def test_a_signing_failure_leaves_the_video_without_urls(tmp_path: Path) -> None:
    def no_secret() -> bytes:
        raise FailedPrecondition("no URL signing key")

    signer = UrlSigner(no_secret)
    put(tmp_path, "ten_a/vid_1/presentation/master.m3u8")

    assert await Playback(LocalDirectoryStore(tmp_path, signer), signer).urls(
        video_with(job(JobStatus.COMPLETED)), 60) is None


def adaptive_output(*keys: str, status: OutputStatus = OutputStatus.COMPLETED) -> Output:
    files = tuple(OutputFile(path=k.split("/", 2)[2], storage_key=k, content_type="x", size_bytes=1) for k in keys)
    return Output(name="presentation", type="adaptive", status=status, files=files)


async def test_the_jobs_record_names_the_folder_without_asking_storage(tmp_path: Path, signer: UrlSigner) -> None:
    done = job(JobStatus.COMPLETED)
    folder = "ten_a/vid_1/hls-and-dash/"
    done.outputs = [adaptive_output(*(folder + f for f in ("720p/playlist.m3u8", "master.m3u8", "manifest.mpd",
                                                             "720p/init.mp4")))]

    urls = await Playback(LocalDirectoryStore(tmp_path, signer), signer).urls(video_with(done), 60)  # nothing on disk

    assert urls is not None and scope_of(urls.hls_url) == scope_of(urls.dash_url) == "ten_a/vid_1/hls-and-dash/"
    assert urls.hls_url.endswith("/master.m3u8") and urls.dash_url.endswith("/manifest.mpd")


@pytest.mark.parametrize("output", [
    adaptive_output("ten_b/vid_9/presentation/master.m3u8"),  # another video's folder: never signed
    adaptive_output("ten_a/vid_1/presentation/master.m3u8", status=OutputStatus.FAILED),
])
async def test_a_record_that_does_not_qualify_falls_back_to_storage(output: Output, tmp_path: Path,
                                                                    signer: UrlSigner) -> None:
    done = job(JobStatus.COMPLETED)
    done.outputs = [output]
    assert await Playback(LocalDirectoryStore(tmp_path, signer), signer).urls(video_with(done), 60) is None
