"""Uploads whose content refers to other files (another tenant's rendition, the
keys directory, the process's environment): refused with INVALID_ARGUMENT and
the reason, over gRPC and REST, and nothing is stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from services.shared.media_source import REFERENCING_REASON
from tests.calls import bearer, upload_requests
from tests.security.world import World
from vtc.v1 import metadata_pb2, metadata_pb2_grpc, upload_pb2_grpc


def _victim(world: World) -> Path:
    """A's stored rendition, on the same disk as every upload's spool file."""
    renditions = [p for p in (world.stack.data_dir / "objects").rglob("*.mp4") if "renditions" in p.parts]
    assert renditions, "the world has no stored rendition to aim at"
    return renditions[0]


def _relative_victim(world: World) -> str:
    return "../../objects/" + str(_victim(world).relative_to(world.stack.data_dir / "objects"))


HOSTILE: dict[str, tuple[str, Callable[[World], str]]] = {
    "hls playlist, absolute path": ("evil.m3u8", lambda w: f"#EXTM3U\n#EXTINF:1.0,\n{_victim(w)}\n#EXT-X-ENDLIST\n"),
    "hls playlist, relative path": ("evil.m3u8",
                                    lambda w: f"#EXTM3U\n#EXTINF:1.0,\n{_relative_victim(w)}\n#EXT-X-ENDLIST\n"),
    "hls playlist named .mp4": ("holiday.mp4", lambda w: f"#EXTM3U\n#EXTINF:1.0,\n{_victim(w)}\n#EXT-X-ENDLIST\n"),
    "hls playlist, file url": ("evil.m3u8",
                               lambda w: f"#EXTM3U\n#EXTINF:1.0,\n{_victim(w).as_uri()}\n#EXT-X-ENDLIST\n"),
    "hls playlist, data uri": ("evil.m3u8", lambda w: "#EXTM3U\n#EXTINF:1.0,\ndata:video/mp4;base64,AAAA\n"
                                                      "#EXT-X-ENDLIST\n"),
    "ffconcat list": ("list.txt", lambda w: f"ffconcat version 1.0\nfile '{_victim(w)}'\n"),
    "concat list without header": ("list.mov", lambda w: f"file '{_victim(w)}'\n"),
    "dash manifest": ("manifest.mpd", lambda w: '<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011">'
                                                f'<BaseURL>{_victim(w)}</BaseURL></MPD>'),
    "sdp session": ("cam.sdp", lambda w: "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
                                         "m=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n"),
}


def _video_count(world: World) -> int:
    with world.channel() as channel:
        return len(metadata_pb2_grpc.MetadataServiceStub(channel).ListVideos(
            metadata_pb2.ListVideosRequest(page_size=500), metadata=bearer(world.b.token), timeout=10).videos)


@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_source_over_grpc(hostile, world: World) -> None:  # type: ignore[no-untyped-def]
    name, content = hostile
    path = world.media_dir / name
    path.write_text(content(world))
    before = _video_count(world)

    with world.channel() as channel, pytest.raises(grpc.RpcError) as refused:
        upload_pb2_grpc.UploadServiceStub(channel).Upload(upload_requests(path), metadata=bearer(world.b.token),
                                                          timeout=30)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert REFERENCING_REASON in refused.value.details()
    assert _video_count(world) == before


@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_source_over_rest(hostile, world: World) -> None:  # type: ignore[no-untyped-def]
    name, content = hostile
    body = content(world).encode()
    before = _video_count(world)

    with world.rest() as rest:
        reply = rest.post("/v1/uploads", content=body, headers={"authorization": f"Bearer {world.b.token}"},
                          params={"header.filename": name, "header.size_bytes": len(body)})

    assert reply.status_code == 400, reply.text
    assert REFERENCING_REASON in reply.json()["message"]
    assert _video_count(world) == before
