"""The executor on real (tiny) media: every output decoded and checked."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from services.process_svc.execute import TranscodeProgress, execute, probe_source
from services.process_svc.failures import SourceUnreadable
from services.process_svc.plan import plan_encode
from services.process_svc.profiles import ProfileCatalog, parse_profile
from tests.media import decoded_summary, make_clip, renditions_made

# Three rungs small enough for a 640x360 source, to run the split with several outputs.
SMALL_LADDER = parse_profile({
    "name": "small",
    "video_defaults": {"crf": 28, "preset": "ultrafast", "keyint_seconds": 1},
    "audio": {"bitrate": "64k"},
    "outputs": [
        {"type": "video", "name": "360p", "height": 360, "maxrate": "900k", "bufsize": "1.8M"},
        {"type": "video", "name": "240p", "height": 240, "maxrate": "500k", "bufsize": "1M"},
        {"type": "video", "name": "144p", "height": 144, "maxrate": "200k", "bufsize": "400k"},
    ],
})


def keyframe_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [round(float(p.pts * p.time_base), 2) for p in container.demux(stream) if p.is_keyframe and p.size]


def test_default_profile_on_a_640x360_clip(clip_640x360: Path, tmp_path: Path) -> None:
    plan = plan_encode(ProfileCatalog.load().get("default"), probe_source(clip_640x360))
    reports: list[TranscodeProgress] = []

    produced = renditions_made(execute(plan, clip_640x360, tmp_path, reports.append, progress_interval_seconds=0.0))

    assert [(p.name, p.width, p.height) for p in produced] == [("360p", 640, 360)]
    summary = decoded_summary(produced[0].path)
    assert (summary["width"], summary["height"]) == (640, 360)
    assert summary["frames"] == 60, "every source frame, no drops or duplicates"
    assert abs(summary["duration"] - 2.0) <= 0.1
    assert summary["has_audio"]
    rendition = produced[0]
    assert rendition.size_bytes == os.path.getsize(rendition.path)
    assert rendition.bitrate == round(rendition.size_bytes * 8 / rendition.duration_seconds)
    assert (rendition.video_codec, rendition.audio_codec, rendition.content_type) == ("h264", "aac", "video/mp4")
    percents = [r.percent for r in reports]
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert reports[-1].frames == 60


def test_split_ladder_outputs_share_one_audio_encode(clip_640x360: Path, tmp_path: Path) -> None:
    plan = plan_encode(SMALL_LADDER, probe_source(clip_640x360))

    produced = renditions_made(execute(plan, clip_640x360, tmp_path))

    assert [(p.name, p.width, p.height) for p in produced] == [("360p", 640, 360), ("240p", 426, 240),
                                                               ("144p", 256, 144)]
    audio_payloads = []
    for rendition in produced:
        summary = decoded_summary(rendition.path)
        assert (summary["width"], summary["height"], summary["frames"]) == (rendition.width, rendition.height, 60)
        assert abs(summary["duration"] - 2.0) <= 0.1 and summary["has_audio"]
        # Keyframes every second, on the same frames in every rung (segmentable for HLS).
        assert keyframe_times(rendition.path) == [0.0, 1.0]
        with av.open(str(rendition.path)) as container:
            audio_payloads.append(b"".join(bytes(p) for p in container.demux(audio=0)))
    assert audio_payloads[0] and audio_payloads.count(audio_payloads[0]) == 3, "one AAC encode, muxed into each"
    assert produced[0].size_bytes > produced[1].size_bytes > produced[2].size_bytes


def test_source_without_audio_gives_renditions_without_audio(tmp_path: Path) -> None:
    silent = make_clip(tmp_path / "silent.mp4", seconds=2.0, width=320, height=180, audio=False)
    plan = plan_encode(ProfileCatalog.load().get("default"), probe_source(silent))
    assert plan.audio is None

    produced = renditions_made(execute(plan, silent, tmp_path / "out"))

    assert [(p.name, p.width, p.height, p.audio_codec) for p in produced] == [("180p", 320, 180, "")]
    summary = decoded_summary(produced[0].path)
    assert not summary["has_audio"] and summary["frames"] == 60


def write_clip(path: Path, *, rotation: int = 0, keyint: int = 250, frames: int = 30) -> Path:
    """320x180 stored, a white block in the stored top-left corner, maybe flagged to be shown turned."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(keyint)}
        if rotation:
            stream.set_display_rotation(rotation)
        picture = np.zeros((180, 320, 3), dtype=np.uint8)
        picture[:60, :100] = 255
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_rotated_source_comes_out_upright(tmp_path: Path) -> None:
    source = write_clip(tmp_path / "phone.mp4", rotation=90)
    info = probe_source(source)
    assert info.rotation == 90
    plan = plan_encode(ProfileCatalog.load().get("default"), info)

    produced = renditions_made(execute(plan, source, tmp_path / "out"))

    assert [(p.width, p.height) for p in produced] == [(180, 320)], "portrait, as the phone showed it"
    with av.open(str(produced[0].path)) as container:
        luma = next(container.decode(video=0)).to_ndarray(format="gray")
    # Turned 90 degrees counter-clockwise, the stored top-left corner is shown bottom-left.
    assert luma[-60:, :40].mean() > 200
    assert luma[:60, :40].mean() < 50


def test_keyframes_follow_the_plan_not_the_source(tmp_path: Path) -> None:
    source = write_clip(tmp_path / "gop10.mp4", keyint=10, frames=120)
    assert len(keyframe_times(source)) == 12
    plan = plan_encode(ProfileCatalog.load().get("default"), probe_source(source))

    produced = renditions_made(execute(plan, source, tmp_path / "out"))

    # Every 2 s (keyint 60 at 30 fps); decoded frames' picture types must not leak into x264.
    assert keyframe_times(produced[0].path) == [0.0, 2.0]


def test_random_bytes_are_refused_with_a_reason(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(SourceUnreadable, match="could not be opened as a video file"):
        probe_source(junk)
    plan = plan_encode(ProfileCatalog.load().get("default"), probe_source(make_clip(tmp_path / "ok.mp4")))
    with pytest.raises(SourceUnreadable, match="could not be opened as a video file"):
        execute(plan, junk, tmp_path / "out")


def test_truncated_source_fails_at_the_point_it_breaks(clip_640x360: Path, tmp_path: Path) -> None:
    # A faststart MP4 (index first) cut in half still opens: the damage shows only when decoding reaches it.
    plan = plan_encode(ProfileCatalog.load().get("default"), probe_source(clip_640x360))
    whole = renditions_made(execute(plan, clip_640x360, tmp_path / "whole"))[0].path
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    plan = plan_encode(ProfileCatalog.load().get("default"), probe_source(cut))

    with pytest.raises(SourceUnreadable) as caught:
        execute(plan, cut, tmp_path / "out")

    reason = caught.value.reason
    assert reason.startswith("the source could not be decoded at 00:0") or "looks truncated" in reason, reason
    assert "upload it again" in reason


def test_a_file_of_sound_alone_gets_its_audio_outputs_and_no_others(tmp_path: Path) -> None:
    song = make_clip(tmp_path / "song.m4a", video=False, seconds=2.0)
    source = probe_source(song)
    assert source.sound_only and source.duration_seconds == pytest.approx(2.0, abs=0.1)

    audio = plan_encode(ProfileCatalog.load().get("audio"), source)
    produced = execute(audio, song, tmp_path / "audio")
    assert [(o.name, o.error) for o in produced] == [("aac", ""), ("opus", "")]

    video = plan_encode(ProfileCatalog.load().get("default"), source)
    assert video.outputs == () and video.renditions == ()
    assert video.warnings[0].startswith("the source is sound alone, with no picture: 1080p, 720p")
