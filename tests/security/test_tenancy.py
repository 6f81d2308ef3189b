"""Tenant B, holding a valid token of its own, goes after tenant A's video, job,
renditions and keys over gRPC and REST. Every attempt reads as "not found"
(ids reveal nothing across tenants) and A's data stays as it was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from tests.calls import bearer
from tests.security.world import World
from vtc.v1 import auth_pb2, auth_pb2_grpc, metadata_pb2, metadata_pb2_grpc

REFUSED = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED}
REFUSED_HTTP = {403, 404}


def _metadata(channel: grpc.Channel) -> metadata_pb2_grpc.MetadataServiceStub:
    return metadata_pb2_grpc.MetadataServiceStub(channel)


def _auth(channel: grpc.Channel) -> auth_pb2_grpc.AuthServiceStub:
    return auth_pb2_grpc.AuthServiceStub(channel)


GRPC_ATTACKS: dict[str, Callable[[World, grpc.Channel, list[tuple[str, str]]], Any]] = {
    "GetVideo of A's video": lambda w, c, m: _metadata(c).GetVideo(
        metadata_pb2.GetVideoRequest(video_id=w.a_video_id), metadata=m, timeout=10),
    "DeleteVideo of A's video": lambda w, c, m: _metadata(c).DeleteVideo(
        metadata_pb2.DeleteVideoRequest(video_id=w.a_video_id), metadata=m, timeout=10),
    "GetJob of A's job": lambda w, c, m: _metadata(c).GetJob(
        metadata_pb2.GetJobRequest(job_id=w.a_job_id), metadata=m, timeout=10),
    "WatchJob of A's job": lambda w, c, m: _metadata(c).WatchJob(
        metadata_pb2.WatchJobRequest(job_id=w.a_job_id), metadata=m, timeout=10),
    "DownloadRendition of A's rendition": lambda w, c, m: _metadata(c).DownloadRendition(
        metadata_pb2.DownloadRenditionRequest(video_id=w.a_video_id, rendition=w.a_rendition), metadata=m,
        timeout=10),
    "ListApiKeys of tenant A": lambda w, c, m: _auth(c).ListApiKeys(
        auth_pb2.ListApiKeysRequest(tenant_id=w.a.tenant_id), metadata=m, timeout=10),
    "CreateApiKey in tenant A": lambda w, c, m: _auth(c).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(tenant_id=w.a.tenant_id, name="backdoor"), metadata=m, timeout=10),
    "RevokeApiKey of A's key": lambda w, c, m: _auth(c).RevokeApiKey(
        auth_pb2.RevokeApiKeyRequest(tenant_id=w.a.tenant_id, key_id=w.a.key_id), metadata=m, timeout=10),
    "CancelJob of A's job": lambda w, c, m: _metadata(c).CancelJob(
        metadata_pb2.CancelJobRequest(job_id=w.a_job_id), metadata=m, timeout=10),
    "Retranscode of A's video": lambda w, c, m: _metadata(c).Retranscode(
        metadata_pb2.RetranscodeRequest(video_id=w.a_video_id, profile="default"), metadata=m, timeout=10),
    "Retranscode of A's video with a profile of B's own": lambda w, c, m: _metadata(c).Retranscode(
        metadata_pb2.RetranscodeRequest(video_id=w.a_video_id, profile_document=(
            "name: grab\noutputs:\n  - {type: video, name: all, height: 360, crf: 23, maxrate: 1M, bufsize: 2M}")),
        metadata=m, timeout=10),
    "RetryJob of A's job": lambda w, c, m: _metadata(c).RetryJob(
        metadata_pb2.RetryJobRequest(job_id=w.a_job_id), metadata=m, timeout=10),
    "ListApiKeys of tenant A's key id, own tenant named": lambda w, c, m: _auth(c).RevokeApiKey(
        auth_pb2.RevokeApiKeyRequest(tenant_id=w.b.tenant_id, key_id=w.a.key_id), metadata=m, timeout=10),
}

REST_ATTACKS: dict[str, Callable[[World], tuple[str, str, dict[str, Any]]]] = {
    "GET A's video": lambda w: ("GET", f"/v1/videos/{w.a_video_id}", {}),
    "DELETE A's video": lambda w: ("DELETE", f"/v1/videos/{w.a_video_id}", {}),
    "GET A's job": lambda w: ("GET", f"/v1/jobs/{w.a_job_id}", {}),
    "watch A's job": lambda w: ("GET", f"/v1/jobs/{w.a_job_id}:watch", {}),
    "download A's rendition": lambda w: ("GET", f"/v1/videos/{w.a_video_id}/renditions/{w.a_rendition}:download",
                                         {}),
    "list A's keys": lambda w: ("GET", f"/v1/tenants/{w.a.tenant_id}/api-keys", {}),
    "mint a key in A": lambda w: ("POST", f"/v1/tenants/{w.a.tenant_id}/api-keys", {"json": {"name": "backdoor"}}),
    "revoke A's key": lambda w: ("POST", f"/v1/tenants/{w.a.tenant_id}/api-keys/{w.a.key_id}:revoke", {"json": {}}),
    "cancel A's job": lambda w: ("POST", f"/v1/jobs/{w.a_job_id}:cancel", {"json": {}}),
    "re-transcode A's video": lambda w: ("POST", f"/v1/videos/{w.a_video_id}:retranscode", {"json": {}}),
    "retry A's job": lambda w: ("POST", f"/v1/jobs/{w.a_job_id}:retry", {"json": {}}),
    "revoke A's key through B's tenant": lambda w: ("POST", f"/v1/tenants/{w.b.tenant_id}/api-keys/{w.a.key_id}:revoke",
                                                    {"json": {}}),
}


def _a_still_has_everything(world: World) -> None:
    with world.channel() as channel:
        video = _metadata(channel).GetVideo(metadata_pb2.GetVideoRequest(video_id=world.a_video_id),
                                            metadata=bearer(world.a.token), timeout=10)
        keys = _auth(channel).ListApiKeys(auth_pb2.ListApiKeysRequest(tenant_id=world.a.tenant_id),
                                          metadata=bearer(world.operator), timeout=10)
    assert video.job.job_id == world.a_job_id, "A's video has a job A did not ask for"
    assert video.job.renditions, "A's renditions are gone"
    assert video.job.status == 3, "A's job is no longer COMPLETED"
    assert {k.key_id for k in keys.keys} >= {world.a.key_id}
    assert all(not k.HasField("revoked_at") for k in keys.keys if k.key_id == world.a.key_id)
    assert all(k.name != "backdoor" for k in keys.keys)


@pytest.mark.parametrize("attack", GRPC_ATTACKS.values(), ids=GRPC_ATTACKS.keys())
def test_foreign_tenant_over_grpc_finds_nothing(attack, world: World) -> None:  # type: ignore[no-untyped-def]
    code = world.grpc_call(lambda channel: attack(world, channel, bearer(world.b.token)))
    assert code in REFUSED
    _a_still_has_everything(world)


@pytest.mark.parametrize("attack", REST_ATTACKS.values(), ids=REST_ATTACKS.keys())
def test_foreign_tenant_over_rest_finds_nothing(attack, world: World) -> None:  # type: ignore[no-untyped-def]
    method, path, extra = attack(world)
    with world.rest() as rest:
        reply = rest.request(method, path, headers={"authorization": f"Bearer {world.b.token}"}, **extra)
    assert reply.status_code in REFUSED_HTTP, reply.text
    assert "A's unreleased film" not in reply.text
    _a_still_has_everything(world)


def test_foreign_tenant_list_does_not_show_a_video(world: World) -> None:
    with world.channel() as channel:
        listed = _metadata(channel).ListVideos(metadata_pb2.ListVideosRequest(page_size=500),
                                               metadata=bearer(world.b.token), timeout=10)
    assert world.a_video_id not in {v.video_id for v in listed.videos}
    with world.rest() as rest:
        reply = rest.get("/v1/videos", params={"pageSize": 500},
                         headers={"authorization": f"Bearer {world.b.token}"})
    assert reply.status_code == 200 and world.a_video_id not in reply.text
