"""Re-transcoding a stored video and retrying a job, over gRPC and REST on the
all-in-one stack: a new job from the stored source, its outputs in a folder of
its own (the earlier job's files stay), a customer's own profile kept with the
job so its retry runs the same one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import grpc
import httpx
import pytest

from tests.calls import bearer, upload_requests
from tests.media import decoded_summary
from tests.stack import Stack
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2_grpc

# A profile of the customer's own: one small rung, no audio track.
OWN_PROFILE = """
name: tiny
description: one 180-line rung
outputs:
  - {type: video, name: 180p, height: 180, crf: 30, maxrate: 300k, bufsize: 600k, preset: ultrafast}
"""


def _finished(metadata: metadata_pb2_grpc.MetadataServiceStub, job_id: str, token: str) -> common_pb2.Job:
    updates = list(metadata.WatchJob(metadata_pb2.WatchJobRequest(job_id=job_id), metadata=bearer(token), timeout=120))
    return updates[-1].job


def _download(metadata: metadata_pb2_grpc.MetadataServiceStub, video_id: str, name: str, token: str,
              out: Path) -> Path:
    request = metadata_pb2.DownloadRenditionRequest(video_id=video_id, rendition=name)
    with out.open("wb") as sink:
        for chunk in metadata.DownloadRendition(request, metadata=bearer(token), timeout=60):
            sink.write(chunk.data)
    return out


@pytest.fixture(scope="module")
def uploaded(stack: Stack, clip_640x360: Path) -> tuple[str, common_pb2.Job]:
    token = stack.admin_token()
    with stack.channel() as channel:
        reply = upload_pb2_grpc.UploadServiceStub(channel).Upload(upload_requests(clip_640x360, "again"),
                                                                  metadata=bearer(token), timeout=60)
        job = _finished(metadata_pb2_grpc.MetadataServiceStub(channel), reply.job_id, token)
    assert job.status == common_pb2.JOB_STATUS_COMPLETED, job.error
    return reply.video_id, job


def test_retranscode_makes_a_new_job_from_the_stored_source_and_keeps_the_first_ones_files(
        stack: Stack, uploaded: tuple[str, common_pb2.Job], tmp_path: Path) -> None:
    video_id, first = uploaded
    token = stack.admin_token()
    with stack.channel() as channel:
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        queued = metadata.Retranscode(metadata_pb2.RetranscodeRequest(video_id=video_id, profile_document=OWN_PROFILE),
                                      metadata=bearer(token), timeout=10)
        assert queued.job_id != first.job_id and queued.video_id == video_id
        assert queued.status == common_pb2.JOB_STATUS_QUEUED
        assert queued.profile == "tiny" and queued.custom_profile

        job = _finished(metadata, queued.job_id, token)
        assert job.status == common_pb2.JOB_STATUS_COMPLETED, job.error
        assert [(r.name, r.height) for r in job.renditions] == [("180p", 180)]
        assert f"/jobs/{job.job_id}/renditions/" in job.renditions[0].storage_key

        video = metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=video_id), metadata=bearer(token), timeout=10)
        assert video.job.job_id == job.job_id, "the video shows its newest job"
        summary = decoded_summary(_download(metadata, video_id, "180p", token, tmp_path / "180p.mp4"))
        assert (summary["width"], summary["height"]) == (320, 180)
        assert summary["frames"] == 60 and not summary["has_audio"]

    objects = stack.data_dir / "objects"
    for rendition in first.renditions:  # the upload's job's files are untouched
        assert (objects / rendition.storage_key).stat().st_size == rendition.size_bytes


def test_retry_of_a_failed_job_runs_again_with_the_same_profile_and_succeeds(
        stack: Stack, uploaded: tuple[str, common_pb2.Job]) -> None:
    video_id, first = uploaded
    token = stack.admin_token()
    source = next((stack.data_dir / "objects").glob(f"*/{video_id}/source.*"))
    aside = source.with_name("aside")
    with stack.channel() as channel:
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        source.rename(aside)  # the source is gone: the job fails, for a reason a retry can mend
        try:
            queued = metadata.Retranscode(
                metadata_pb2.RetranscodeRequest(video_id=video_id, profile_document=OWN_PROFILE),
                metadata=bearer(token), timeout=10)
            failed = _finished(metadata, queued.job_id, token)
        finally:
            shutil.move(aside, source)
        assert failed.status == common_pb2.JOB_STATUS_FAILED and "no longer in storage" in failed.error

        retry = metadata.RetryJob(metadata_pb2.RetryJobRequest(job_id=failed.job_id), metadata=bearer(token),
                                  timeout=10)
        assert retry.retry_of == failed.job_id and retry.job_id != failed.job_id
        assert retry.profile == "tiny" and retry.custom_profile, "the retry runs the job's own profile"
        done = _finished(metadata, retry.job_id, token)
        assert done.status == common_pb2.JOB_STATUS_COMPLETED, done.error
        assert [r.name for r in done.renditions] == ["180p"]

        with pytest.raises(grpc.RpcError) as nothing_left:
            metadata.RetryJob(metadata_pb2.RetryJobRequest(job_id=first.job_id), metadata=bearer(token), timeout=10)
        assert nothing_left.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "nothing to retry" in nothing_left.value.details()


@pytest.mark.parametrize(("request_fields", "code", "words"), [
    ({"profile": "no-such"}, grpc.StatusCode.INVALID_ARGUMENT, "available profiles: audio, default, hevc"),
    ({"profile_document": "name: x\noutputs:\n  - {type: video, name: a, height: 361}"},
     grpc.StatusCode.INVALID_ARGUMENT, "profile_document: outputs[0].height: must be even"),
    ({"profile_document": "name: [unclosed"}, grpc.StatusCode.INVALID_ARGUMENT, "not valid YAML or JSON"),
    ({"profile_document": "x" * (65 * 1024)}, grpc.StatusCode.INVALID_ARGUMENT, "at most 65536"),
])
def test_retranscode_refuses_a_profile_it_cannot_run_and_makes_no_job(
        stack: Stack, uploaded: tuple[str, common_pb2.Job], request_fields: dict, code: grpc.StatusCode,
        words: str) -> None:
    video_id, _ = uploaded
    token = stack.admin_token()
    with stack.channel() as channel:
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        before = metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=video_id), metadata=bearer(token)).job
        with pytest.raises(grpc.RpcError) as refused:
            metadata.Retranscode(metadata_pb2.RetranscodeRequest(video_id=video_id, **request_fields),
                                 metadata=bearer(token), timeout=10)
        after = metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=video_id), metadata=bearer(token)).job
    assert refused.value.code() == code and words in refused.value.details()
    assert after.job_id == before.job_id


def test_retranscode_and_retry_over_rest(stack: Stack, uploaded: tuple[str, common_pb2.Job]) -> None:
    video_id, first = uploaded
    with httpx.Client(base_url=stack.rest_url, timeout=120) as rest:
        token = rest.post("/v1/auth/token", json={"apiKey": stack.admin_key}).raise_for_status().json()["accessToken"]
        auth = {"authorization": f"Bearer {token}"}
        job = rest.post(f"/v1/videos/{video_id}:retranscode", headers=auth,
                        json={"profile": "default"}).raise_for_status().json()
        assert job["status"] == "JOB_STATUS_QUEUED" and job["profile"] == "default"
        with rest.stream("GET", f"/v1/jobs/{job['jobId']}:watch", headers=auth) as watch:
            lines = [json.loads(line) for line in watch.iter_lines() if line.strip()]
        assert lines[-1]["job"]["status"] == "JOB_STATUS_COMPLETED", lines[-1]
        assert [r["name"] for r in lines[-1]["job"]["renditions"]] == [r.name for r in first.renditions]

        refused = rest.post(f"/v1/jobs/{job['jobId']}:retry", headers=auth, json={})
        assert refused.status_code == 400 and refused.json()["code"] == 9  # FAILED_PRECONDITION
        assert "nothing to retry" in refused.json()["message"]
        missing = rest.post("/v1/videos/vid_00000000000000000000:retranscode", headers=auth, json={})
        assert missing.status_code == 404
        bad = rest.post("/v1/videos/..%2Fx:retranscode", headers=auth, json={})
        assert bad.status_code in (400, 404)


def test_rest_upload_with_a_profile_of_ones_own(stack: Stack, clip_640x360: Path) -> None:
    data = clip_640x360.read_bytes()
    with httpx.Client(base_url=stack.rest_url, timeout=120) as rest:
        token = rest.post("/v1/auth/token", json={"apiKey": stack.admin_key}).raise_for_status().json()["accessToken"]
        auth = {"authorization": f"Bearer {token}"}
        reply = rest.post("/v1/uploads", headers={**auth, "content-type": "video/mp4"}, content=data, params={
            "header.filename": "own.mp4", "header.size_bytes": len(data),
            "header.profile_document": OWN_PROFILE}).raise_for_status().json()
        with rest.stream("GET", f"/v1/jobs/{reply['jobId']}:watch", headers=auth) as watch:
            job = [json.loads(line) for line in watch.iter_lines() if line.strip()][-1]["job"]
        assert job["status"] == "JOB_STATUS_COMPLETED" and job["profile"] == "tiny" and job["customProfile"]
        assert [r["name"] for r in job["renditions"]] == ["180p"]

        refused = rest.post("/v1/uploads", headers={**auth, "content-type": "video/mp4"}, content=data, params={
            "header.filename": "own.mp4", "header.size_bytes": len(data),
            "header.profile_document": "name: x\noutputs: []"})
        assert refused.status_code == 400 and "header.profile_document" in refused.json()["message"]


@pytest.mark.parametrize(("profile", "container", "video_codec", "audio_codec"), [
    ("hevc", "mp4", "hevc", "aac"), ("webm", "webm", "vp9", "opus"), ("modern", "mp4", "h264", "aac")])
def test_retranscode_under_a_shipped_codec_profile_serves_its_files(
        stack: Stack, uploaded: tuple[str, common_pb2.Job], tmp_path: Path, profile: str, container: str,
        video_codec: str, audio_codec: str) -> None:
    video_id, _ = uploaded
    token = stack.admin_token()
    with stack.channel() as channel:
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        queued = metadata.Retranscode(metadata_pb2.RetranscodeRequest(video_id=video_id, profile=profile),
                                      metadata=bearer(token), timeout=10)
        job = _finished(metadata, queued.job_id, token)
        assert job.status == common_pb2.JOB_STATUS_COMPLETED, job.error
        [rendition] = job.renditions  # 360p: never above the source (modern's 360p rung is H.264)
        assert (rendition.container, rendition.video_codec, rendition.audio_codec) == (container, video_codec,
                                                                                       audio_codec)
        assert rendition.storage_key.endswith(f"/jobs/{job.job_id}/renditions/360p.{container}")
        chunks = list(metadata.DownloadRendition(metadata_pb2.DownloadRenditionRequest(
            video_id=video_id, rendition="360p"), metadata=bearer(token), timeout=60))
    assert chunks[0].content_type == f"video/{container}"
    out = tmp_path / f"360p.{container}"
    out.write_bytes(b"".join(c.data for c in chunks))
    summary = decoded_summary(out)
    assert (summary["width"], summary["height"], summary["frames"]) == (640, 360, 60) and summary["has_audio"]


def test_retranscode_to_the_audio_profile_serves_aac_and_opus(stack: Stack, uploaded: tuple[str, common_pb2.Job],
                                                              tmp_path: Path) -> None:
    video_id, _ = uploaded
    token = stack.admin_token()
    with stack.channel() as channel:
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        queued = metadata.Retranscode(metadata_pb2.RetranscodeRequest(video_id=video_id, profile="audio"),
                                      metadata=bearer(token), timeout=10)
        job = _finished(metadata, queued.job_id, token)
        assert job.status == common_pb2.JOB_STATUS_COMPLETED, job.error
        assert [(r.name, r.container, r.video_codec, r.audio_codec) for r in job.renditions] == [
            ("aac", "m4a", "", "aac"), ("opus", "webm", "", "opus")]
        for rendition in job.renditions:
            chunks = list(metadata.DownloadRendition(metadata_pb2.DownloadRenditionRequest(
                video_id=video_id, rendition=rendition.name), metadata=bearer(token), timeout=60))
            out = tmp_path / f"{rendition.name}.{rendition.container}"
            out.write_bytes(b"".join(c.data for c in chunks))
            with av.open(str(out)) as container:
                assert not container.streams.video
                seconds = sum(f.samples for f in container.decode(audio=0)) / 48000
            assert abs(seconds - 2.0) < 0.05 and chunks[0].content_type == rendition.content_type


# A video rung that works and an audio output whose encoder refuses to open (libopus takes
# 500 b/s at the least): the job completes with that output FAILED, and its retry makes it alone.
HALF_BROKEN = """
name: half-broken
outputs:
  - {type: video, name: good, height: 180, crf: 30, maxrate: 300k, bufsize: 600k, preset: ultrafast}
  - {type: audio, name: bad, codec: opus, bitrate: 100}
"""

def test_retry_of_a_job_with_a_failed_output_makes_that_output_alone(
        stack: Stack, uploaded: tuple[str, common_pb2.Job]) -> None:
    video_id, _ = uploaded
    token = stack.admin_token()
    with stack.channel() as channel:
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        queued = metadata.Retranscode(metadata_pb2.RetranscodeRequest(video_id=video_id, profile_document=HALF_BROKEN),
                                      metadata=bearer(token), timeout=10)
        job = _finished(metadata, queued.job_id, token)
        assert job.status == common_pb2.JOB_STATUS_COMPLETED, job.error
        statuses = {o.name: (o.status, o.error) for o in job.outputs}
        assert statuses["good"][0] == common_pb2.OUTPUT_STATUS_COMPLETED
        assert statuses["bad"][0] == common_pb2.OUTPUT_STATUS_FAILED and statuses["bad"][1]

        retry = metadata.RetryJob(metadata_pb2.RetryJobRequest(job_id=job.job_id), metadata=bearer(token), timeout=10)
        assert retry.retry_of == job.job_id and retry.profile == "half-broken"
        again = _finished(metadata, retry.job_id, token)
    # The retry was asked for `bad` alone (it fails again, for the same reason): `good` was not remade.
    assert again.status == common_pb2.JOB_STATUS_FAILED
    assert again.error.startswith("no output could be made: bad: ") and "good" not in again.error
