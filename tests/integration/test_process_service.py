"""ProcessService over real gRPC on port 0: the profile catalogue, behind a token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from services.process_svc.server import ProcessComponent
from services.process_svc.settings import Settings
from services.shared.bus.memory import InProcessBus
from services.shared.server import RunningServer, start_server
from services.shared.storage.local import LocalDirectoryStore
from tests.tokens import TestKeys
from vtc.v1 import process_pb2, process_pb2_grpc

KEYS = TestKeys()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    bus = InProcessBus()
    component = ProcessComponent(Settings(data_dir=tmp_path), bus, LocalDirectoryStore(tmp_path / "objects"))
    running = await start_server([component], KEYS.verifier(), "127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.stop(0)
        await bus.close()


async def list_profiles(port: int, metadata: list[tuple[str, str]] | None) -> process_pb2.ListProfilesResponse:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        return await process_pb2_grpc.ProcessServiceStub(channel).ListProfiles(
            process_pb2.ListProfilesRequest(), metadata=metadata, timeout=10)


async def test_list_profiles_shows_the_default_ladder(server: RunningServer) -> None:
    reply = await list_profiles(server.port, KEYS.metadata(scopes=("videos:read",)))

    assert [p.name for p in reply.profiles] == ["default", "per-title", "hevc", "modern", "webm", "audio"]
    profile = reply.profiles[0]
    assert profile.name == "default" and "1080p" in profile.description
    assert [(r.name, r.height, r.video_codec, r.crf, r.max_bitrate, r.buffer_size, r.audio_codec, r.audio_bitrate)
            for r in profile.renditions] == [
        ("1080p", 1080, "h264", 23, 6_000_000, 12_000_000, "aac", 128_000),
        ("720p", 720, "h264", 23, 3_500_000, 7_000_000, "aac", 128_000),
        ("480p", 480, "h264", 23, 1_600_000, 3_200_000, "aac", 128_000),
        ("360p", 360, "h264", 23, 900_000, 1_800_000, "aac", 128_000),
    ]


async def test_list_profiles_shows_each_rungs_codec(server: RunningServer) -> None:
    reply = await list_profiles(server.port, KEYS.metadata(scopes=("videos:read",)))
    shown = {p.name: [(r.name, r.video_codec, r.audio_codec) for r in p.renditions] for p in reply.profiles}
    assert shown["modern"] == [("1080p", "av1", "aac"), ("720p", "av1", "aac"), ("480p", "h264", "aac"),
                               ("360p", "h264", "aac")]
    assert {codecs for rung in shown["webm"] for codecs in rung[1:]} == {"vp9", "opus"}
    assert {rung[1] for rung in shown["hevc"]} == {"hevc"}


async def test_list_profiles_shows_every_output_a_job_will_have(server: RunningServer) -> None:
    """Not only the ladder: the presentation, stills and audio-only outputs, named as a job's outputs are."""
    reply = await list_profiles(server.port, KEYS.metadata(scopes=("videos:read",)))
    profiles = {p.name: p for p in reply.profiles}

    default = profiles["default"]
    assert [(o.name, o.type) for o in default.outputs] == [
        ("1080p", "video"), ("720p", "video"), ("480p", "video"), ("360p", "video"), ("presentation", "adaptive"),
        ("poster", "poster"), ("thumbnails", "thumbnails"), ("storyboard", "storyboard")]
    video, presentation, poster = default.outputs[1], default.outputs[4], default.outputs[5]
    assert (video.codec, video.container, video.height, video.bitrate) == ("h264", "mp4", 720, 3_500_000)
    assert list(presentation.formats) == ["hls", "dash"]
    assert list(presentation.renditions) == ["1080p", "720p", "480p", "360p"]
    assert (poster.width, list(poster.formats)) == (1280, ["jpeg", "webp"])
    assert not default.per_title and profiles["per-title"].per_title

    audio = profiles["audio"]
    assert not audio.renditions
    assert [(o.name, o.type, o.codec, o.container, o.bitrate) for o in audio.outputs] == [
        ("aac", "audio", "aac", "m4a", 128_000), ("opus", "audio", "opus", "webm", 96_000)]


async def test_list_profiles_needs_a_token(server: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_profiles(server.port, None)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_broken_profile_folder_stops_the_service_at_start(tmp_path: Path) -> None:
    (tmp_path / "index.yaml").write_text("profiles: [missing.yaml]\n")
    with pytest.raises(ValueError, match="missing.yaml"):
        ProcessComponent(Settings(data_dir=tmp_path, process_profiles_dir=tmp_path), InProcessBus(),
                         LocalDirectoryStore(tmp_path / "objects"))
