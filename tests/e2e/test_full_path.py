"""The whole path a customer takes, on the all-in-one service with its live
Envoy gateway: upload -> transcode -> live progress -> download -> delete, over
gRPC and over REST. Every rendition is decoded and checked."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import grpc
import httpx
import pytest

from tests.calls import bearer, upload_requests
from tests.media import decoded_summary
from tests.stack import Stack
from vtc.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    metadata_pb2,
    metadata_pb2_grpc,
    upload_pb2_grpc,
)


def _watch_to_end(metadata: metadata_pb2_grpc.MetadataServiceStub, job_id: str, token: str) -> list:
    return list(metadata.WatchJob(metadata_pb2.WatchJobRequest(job_id=job_id), metadata=bearer(token), timeout=120))


def _check_rendition(path: Path, rendition: common_pb2.Rendition, source_frames: int) -> None:
    summary = decoded_summary(path)
    assert (summary["width"], summary["height"]) == (rendition.width, rendition.height)
    assert abs(summary["duration"] - 2.0) <= 0.1
    assert summary["frames"] == source_frames
    assert summary["has_audio"]
    assert path.stat().st_size == rendition.size_bytes


def test_grpc_upload_is_transcoded_watched_downloaded_and_deleted(stack: Stack, clip_640x360: Path,
                                                                 tmp_path: Path) -> None:
    token = stack.admin_token()
    with stack.channel() as channel:
        upload = upload_pb2_grpc.UploadServiceStub(channel)
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        reply = upload.Upload(upload_requests(clip_640x360, "grpc clip"), metadata=bearer(token), timeout=60)
        assert reply.probe.width == 640 and reply.probe.has_audio

        updates = _watch_to_end(metadata, reply.job_id, token)
        assert not updates[0].HasField("event"), "the first message is the current state"
        percents = [u.job.progress.percent for u in updates]
        assert percents == sorted(percents), f"progress went backwards: {percents}"
        final = updates[-1].job
        assert final.status == common_pb2.JOB_STATUS_COMPLETED, final.error
        assert [r.name for r in final.renditions] == ["360p"]  # never above the 360-line source

        late = _watch_to_end(metadata, reply.job_id, token)
        assert len(late) == 1 and late[0].job.status == common_pb2.JOB_STATUS_COMPLETED

        for rendition in final.renditions:
            out = tmp_path / f"{rendition.name}.mp4"
            with out.open("wb") as sink:
                for chunk in metadata.DownloadRendition(metadata_pb2.DownloadRenditionRequest(
                        video_id=reply.video_id, rendition=rendition.name), metadata=bearer(token), timeout=60):
                    sink.write(chunk.data)
            _check_rendition(out, rendition, source_frames=60)

        metadata.DeleteVideo(metadata_pb2.DeleteVideoRequest(video_id=reply.video_id), metadata=bearer(token))
        with pytest.raises(grpc.RpcError) as gone:
            metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=reply.video_id), metadata=bearer(token))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        assert not list((stack.data_dir / "objects").rglob(f"*{reply.video_id}*")), "delete left objects behind"


def test_rest_upload_through_envoy_is_transcoded_and_downloadable(stack: Stack, clip_640x360: Path,
                                                                  tmp_path: Path) -> None:
    with httpx.Client(base_url=stack.rest_url, timeout=120) as rest:
        token = rest.post("/v1/auth/token", json={"apiKey": stack.admin_key}).raise_for_status().json()["accessToken"]
        auth = {"authorization": f"Bearer {token}"}
        data = clip_640x360.read_bytes()
        reply = rest.post("/v1/uploads", headers={**auth, "content-type": "video/mp4"}, content=data, params={
            "header.filename": "rest clip.mp4", "header.size_bytes": len(data),
            "header.sha256": hashlib.sha256(data).hexdigest(), "header.title": "rest clip"}).raise_for_status().json()
        assert reply["probe"]["width"] == 640

        with rest.stream("GET", f"/v1/jobs/{reply['jobId']}:watch", headers=auth) as watch:
            lines = [json.loads(line) for line in watch.iter_lines() if line.strip()]
        statuses = [line["job"]["status"] for line in lines]
        assert statuses[-1] == "JOB_STATUS_COMPLETED", lines[-1]
        percents = [line["job"]["progress"]["percent"] for line in lines]
        assert percents == sorted(percents)

        video = rest.get(f"/v1/videos/{reply['videoId']}", headers=auth).raise_for_status().json()
        assert video["title"] == "rest clip" and video["job"]["status"] == "JOB_STATUS_COMPLETED"
        listed = rest.get("/v1/videos", headers=auth).raise_for_status().json()
        assert reply["videoId"] in [v["videoId"] for v in listed["videos"]]

        rendition = common_pb2.Rendition(**{
            "name": video["job"]["renditions"][0]["name"], "width": video["job"]["renditions"][0]["width"],
            "height": video["job"]["renditions"][0]["height"],
            "size_bytes": int(video["job"]["renditions"][0]["sizeBytes"])})
        download = rest.get(f"/v1/videos/{reply['videoId']}/renditions/{rendition.name}:download", headers=auth)
        assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
        out = tmp_path / "rest.mp4"
        out.write_bytes(download.content)
        _check_rendition(out, rendition, source_frames=60)

        assert rest.delete(f"/v1/videos/{reply['videoId']}", headers=auth).status_code == 200
        missing = rest.get(f"/v1/videos/{reply['videoId']}", headers=auth)
        assert missing.status_code == 404 and missing.json()["code"] == 5


def test_rest_errors_are_json_with_the_grpc_code_and_a_reason(stack: Stack) -> None:
    with httpx.Client(base_url=stack.rest_url, timeout=30) as rest:
        unauthenticated = rest.get("/v1/videos")
        assert unauthenticated.status_code == 401 and unauthenticated.json()["code"] == 16
        token = rest.post("/v1/auth/token", json={"apiKey": stack.admin_key}).json()["accessToken"]
        text = b"this is not a video, just words\n" * 10
        refused = rest.post("/v1/uploads", headers={"authorization": f"Bearer {token}"}, content=text,
                            params={"header.filename": "notes.mp4", "header.size_bytes": len(text)})
        assert refused.status_code == 400
        assert refused.json()["code"] == 3 and "not a video" in refused.json()["message"]


def test_another_tenant_cannot_see_or_fetch_a_video(stack: Stack, clip_640x360: Path) -> None:
    admin, operator = stack.admin_token(), stack.operator_token()
    with stack.channel() as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        tenant = auth.CreateTenant(auth_pb2.CreateTenantRequest(name="tenant-b"), metadata=bearer(operator))
        key = auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=tenant.tenant_id, name="b"),
                                metadata=bearer(operator))
        other = auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=key.secret)).access_token

        reply = upload_pb2_grpc.UploadServiceStub(channel).Upload(
            upload_requests(clip_640x360, "tenant a's"), metadata=bearer(admin), timeout=60)
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        for call, request in [
            (metadata.GetVideo, metadata_pb2.GetVideoRequest(video_id=reply.video_id)),
            (metadata.GetJob, metadata_pb2.GetJobRequest(job_id=reply.job_id)),
            (metadata.DeleteVideo, metadata_pb2.DeleteVideoRequest(video_id=reply.video_id)),
        ]:
            with pytest.raises(grpc.RpcError) as denied:
                call(request, metadata=bearer(other))
            assert denied.value.code() == grpc.StatusCode.NOT_FOUND
        listed = metadata.ListVideos(metadata_pb2.ListVideosRequest(), metadata=bearer(other))
        assert reply.video_id not in [v.video_id for v in listed.videos]
        _watch_to_end(metadata, reply.job_id, admin)  # let the job finish before the stack stops


def test_revoking_a_key_stops_its_live_tokens_and_new_ones(stack: Stack) -> None:
    admin = stack.admin_token()
    with stack.channel() as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        whoami = auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=stack.admin_key))
        key = auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=whoami.tenant_id, name="to revoke"),
                                metadata=bearer(admin))
        live = auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=key.secret)).access_token
        metadata.ListVideos(metadata_pb2.ListVideosRequest(), metadata=bearer(live))  # works before

        auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id=whoami.tenant_id, key_id=key.key.key_id),
                          metadata=bearer(admin))
        with pytest.raises(grpc.RpcError) as revoked:
            auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=key.secret))
        assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "revoked" in revoked.value.details()

        deadline = time.monotonic() + 5  # the revocation travels over the bus
        while True:
            try:
                metadata.ListVideos(metadata_pb2.ListVideosRequest(), metadata=bearer(live))
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "revoked" in error.details()
                break
            assert time.monotonic() < deadline, "a revoked key's token still works"
            time.sleep(0.05)
        metadata.ListVideos(metadata_pb2.ListVideosRequest(), metadata=bearer(admin))  # others unaffected


def test_rest_profiles_list_every_output_as_the_docs_show(stack: Stack) -> None:
    """docs/rest.md's `GET /v1/profiles` example: each profile's outputs, named and typed."""
    with httpx.Client(base_url=stack.rest_url, timeout=30) as rest:
        token = rest.post("/v1/auth/token", json={"apiKey": stack.admin_key}).raise_for_status().json()["accessToken"]
        profiles = rest.get("/v1/profiles", headers={"authorization": f"Bearer {token}"}).raise_for_status().json()

    shown = {p["name"]: [f"{o['name']}:{o['type']}" for o in p["outputs"]] for p in profiles["profiles"]}
    assert shown["default"] == ["1080p:video", "720p:video", "480p:video", "360p:video", "presentation:adaptive",
                                "poster:poster", "thumbnails:thumbnails", "storyboard:storyboard"]
    per_title = {p["name"]: p["perTitle"] for p in profiles["profiles"]}
    assert per_title["per-title"] is True and per_title["default"] is False
