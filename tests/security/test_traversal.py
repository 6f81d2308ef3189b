"""Traversal and injection in every id and name a client sends: refused as an
invalid argument or not found; never a file outside the tenant's own objects."""

from __future__ import annotations

import grpc
import pytest

from tests.calls import bearer
from tests.security.world import World
from vtc.v1 import metadata_pb2, metadata_pb2_grpc

HOSTILE_IDS = {
    "parent traversal": "../../keys/admin.key",
    "absolute path": "/etc/passwd",
    "encoded traversal": "..%2F..%2Fkeys",
    "nul byte": "vid_\x00../../x",
    "sql injection": "' OR '1'='1",
    "sql wildcard": "%",
    "10k characters": "v" * 10_000,
    "newline log injection": "vid_x\n{\"level\":\"ERROR\",\"msg\":\"forged\"}",
}
REFUSED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}

HOSTILE_RENDITIONS = {
    "source file": "source",
    "parent traversal": "../source",
    "deep traversal": "../../../../keys/admin.key",
    "absolute path": "/etc/passwd",
    "empty": "",
    "dot": ".",
}


def _stub(channel: grpc.Channel) -> metadata_pb2_grpc.MetadataServiceStub:
    return metadata_pb2_grpc.MetadataServiceStub(channel)


@pytest.mark.parametrize("hostile", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
def test_hostile_video_id(hostile: str, world: World) -> None:
    code = world.grpc_call(lambda channel: _stub(channel).GetVideo(
        metadata_pb2.GetVideoRequest(video_id=hostile), metadata=bearer(world.a.token), timeout=10))
    assert code in REFUSED


@pytest.mark.parametrize("hostile", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
def test_hostile_job_id(hostile: str, world: World) -> None:
    code = world.grpc_call(lambda channel: _stub(channel).WatchJob(
        metadata_pb2.WatchJobRequest(job_id=hostile), metadata=bearer(world.a.token), timeout=10))
    assert code in REFUSED


@pytest.mark.parametrize("hostile", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
def test_hostile_video_id_in_a_download(hostile: str, world: World) -> None:
    code = world.grpc_call(lambda channel: _stub(channel).DownloadRendition(
        metadata_pb2.DownloadRenditionRequest(video_id=hostile, rendition="180p"), metadata=bearer(world.a.token),
        timeout=10))
    assert code in REFUSED


@pytest.mark.parametrize("hostile", HOSTILE_RENDITIONS.values(), ids=HOSTILE_RENDITIONS.keys())
def test_hostile_rendition_name(hostile: str, world: World) -> None:
    """Even on the tenant's own video, a rendition name never reaches outside its renditions."""
    code = world.grpc_call(lambda channel: _stub(channel).DownloadRendition(
        metadata_pb2.DownloadRenditionRequest(video_id=world.a_video_id, rendition=hostile),
        metadata=bearer(world.a.token), timeout=10))
    assert code in REFUSED


REST_PATHS = {
    "dot-dot video id": "/v1/videos/..%2F..%2Fkeys%2Fadmin.key",
    "dot-dot rendition": "/v1/videos/{video}/renditions/..%2Fsource:download",
    "dot-dot rendition, raw": "/v1/videos/{video}/renditions/../../keys/admin.key:download",
    "sql in job id": "/v1/jobs/'%20OR%20'1'='1",
    "nul in video id": "/v1/videos/vid_%00",
    "double-encoded traversal": "/v1/videos/%252e%252e%252fkeys",
}


@pytest.mark.parametrize("path", REST_PATHS.values(), ids=REST_PATHS.keys())
def test_hostile_rest_paths(path: str, world: World) -> None:
    with world.rest() as rest:
        reply = rest.get(path.format(video=world.a_video_id), headers={"authorization": f"Bearer {world.a.token}"})
    assert reply.status_code in {400, 404}, reply.text
    assert "vtc_key_" not in reply.text and "root:" not in reply.text
