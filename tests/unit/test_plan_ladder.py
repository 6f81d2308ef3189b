"""Whole encode plans for the default profile, from source facts alone (no media)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import av
import pytest

from services.process_svc.plan import EncodePlan, SourceInfo, VideoFilter, plan_encode
from services.process_svc.profiles import ProfileCatalog
from services.shared.errors import InvalidArgument


@pytest.fixture(scope="module")
def default_profile():  # type: ignore[no-untyped-def]
    return ProfileCatalog.load().get("default")


def source(width: int, height: int, *, fps: Fraction = Fraction(30), audio_channels: int = 2,
           rotation: int = 0, sar: Fraction = Fraction(1), duration: float = 10.0, frames: int = 0) -> SourceInfo:
    return SourceInfo(width=width, height=height, fps=fps, duration_seconds=duration,
                      has_audio=audio_channels > 0, audio_channels=audio_channels,
                      audio_sample_rate=44100 if audio_channels else 0, rotation=rotation,
                      sample_aspect_ratio=sar, video_frames=frames)


def sizes(plan: EncodePlan) -> list[tuple[str, int, int]]:
    return [(r.name, r.width, r.height) for r in plan.renditions]


def test_1080p_source_gets_the_whole_ladder_with_its_caps(default_profile) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, source(1920, 1080))

    assert sizes(plan) == [("1080p", 1920, 1080), ("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)]
    caps = {r.name: (r.max_bitrate, r.buffer_size) for r in plan.renditions}
    assert caps == {"1080p": (6_000_000, 12_000_000), "720p": (3_500_000, 7_000_000),
                    "480p": (1_600_000, 3_200_000), "360p": (900_000, 1_800_000)}
    top = plan.renditions[0]
    assert top.encoder_options() == {
        "preset": "veryfast", "crf": "23", "maxrate": "6000000", "bufsize": "12000000", "profile": "high",
        "g": "120", "keyint_min": "120", "sc_threshold": "0", "forced-idr": "1",
    }
    assert (top.codec, top.encoder, top.pix_fmt, top.container, top.file_name) == (
        "h264", "libx264", "yuv420p", "mp4", "1080p.mp4")
    assert plan.audio is not None
    assert (plan.audio.codec, plan.audio.bitrate, plan.audio.sample_rate, plan.audio.channels) == (
        "aac", 128_000, 48_000, 2)
    assert plan.upright == ()
    assert plan.total_frames == 300


def test_640x360_source_gets_360p_only(default_profile) -> None:  # type: ignore[no-untyped-def]
    assert sizes(plan_encode(default_profile, source(640, 360))) == [("360p", 640, 360)]


def test_720p_source_is_never_upscaled(default_profile) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, source(1280, 720))
    assert sizes(plan) == [("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)]


def test_source_between_rungs_starts_at_the_rung_below(default_profile) -> None:  # type: ignore[no-untyped-def]
    assert [r.name for r in plan_encode(default_profile, source(1000, 700)).renditions] == ["480p", "360p"]


@pytest.mark.parametrize(("width", "height"), [(607, 1080), (1080, 1920), (641, 361), (1921, 1079), (999, 563)])
def test_odd_and_portrait_sources_get_even_sizes_at_their_aspect(default_profile, width: int, height: int) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, source(width, height))
    assert plan.renditions
    for rendition in plan.renditions:
        assert rendition.width % 2 == 0 and rendition.height % 2 == 0, rendition
        assert rendition.width <= width + 1 and rendition.height <= height + 1, "never upscaled"
        # Aspect kept within one pixel of the exact size.
        assert abs(rendition.width - rendition.height * width / height) <= 1, rendition
        assert (rendition.width > rendition.height) == (width > height), "orientation kept"


def test_portrait_rungs_are_sized_by_their_short_side(default_profile) -> None:  # type: ignore[no-untyped-def]
    # A phone video gets the same pixel budget as its landscape twin.
    assert sizes(plan_encode(default_profile, source(1080, 1920))) == [
        ("1080p", 1080, 1920), ("720p", 720, 1280), ("480p", 480, 854), ("360p", 360, 640)]
    assert sizes(plan_encode(default_profile, source(607, 1080))) == [("480p", 480, 854), ("360p", 360, 640)]


def test_rotated_source_is_turned_upright_and_planned_at_its_display_size(default_profile) -> None:  # type: ignore[no-untyped-def]
    # Coded 1920x1080, flagged to be shown turned 90 degrees counter-clockwise: a portrait video.
    plan = plan_encode(default_profile, source(1920, 1080, rotation=90))
    assert plan.upright == (VideoFilter("transpose", "cclock"),)
    assert sizes(plan)[0] == ("1080p", 1080, 1920)
    assert plan_encode(default_profile, source(1920, 1080, rotation=-90)).upright == (
        VideoFilter("transpose", "clock"),)
    assert plan_encode(default_profile, source(1920, 1080, rotation=180)).upright == (
        VideoFilter("hflip"), VideoFilter("vflip"))
    assert sizes(plan_encode(default_profile, source(1920, 1080, rotation=180)))[0] == ("1080p", 1920, 1080)


def test_anamorphic_source_comes_out_in_square_pixels(default_profile) -> None:  # type: ignore[no-untyped-def]
    # PAL 4:3 DVD picture: 720x576 stored, 768x576 shown.
    plan = plan_encode(default_profile, source(720, 576, sar=Fraction(16, 15)))
    assert sizes(plan) == [("480p", 640, 480), ("360p", 480, 360)]
    assert VideoFilter("setsar", "1") in plan.renditions[0].filters


@pytest.mark.parametrize(("width", "height", "expected"), [
    (426, 240, [("240p", 426, 240)]),
    (320, 181, [("180p", 318, 180)]),
    (180, 320, [("180p", 180, 320)]),
    (17, 17, [("16p", 16, 16)]),
])
def test_source_below_the_smallest_rung_gets_one_rung_at_its_own_size(
        default_profile, width: int, height: int, expected: list) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, source(width, height))
    assert sizes(plan) == expected
    assert plan.renditions[0].max_bitrate == 900_000, "the smallest rung's caps"


@pytest.mark.parametrize(("fps", "keyint"), [
    (Fraction(25), 120), (Fraction(30000, 1001), 120), (Fraction(60), 240), (Fraction(24000, 1001), 120),
    (Fraction(2975, 100), 120),  # a phone's variable rate, on average
    (Fraction(0), 120),  # rate unknown: a GOP as at 30 fps
])
def test_frame_rate_is_kept_and_keyframes_fall_every_two_seconds(default_profile, fps: Fraction, keyint: int) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, source(1280, 720, fps=fps))
    for rendition in plan.renditions:
        assert rendition.keyint_seconds == 2.0, "forced by time, whatever the rate"
        # The encoder's own GOP limit: above 2 s at twice the average rate (or at 60 fps), so it adds none.
        assert rendition.keyint == keyint and rendition.min_keyint == keyint
        assert rendition.fps == (fps or Fraction(30))


def test_with_scene_cuts_the_encoder_places_keyframes_at_most_keyint_seconds_apart(default_profile) -> None:  # type: ignore[no-untyped-def]
    from services.process_svc.execute.rendition_writer import KeyframeClock

    cuts = default_profile.model_copy(update={"outputs": tuple(
        o.model_copy(update={"scene_cut": True}) if o.type == "video" else o for o in default_profile.outputs)})
    plan = plan_encode(cuts, source(1280, 720, fps=Fraction(25)))
    assert {(r.keyint, r.min_keyint) for r in plan.renditions} == {(50, 5)}
    frame = av.VideoFrame(16, 16, "yuv420p")
    frame.pts, frame.time_base = 0, Fraction(1, 25)
    assert not KeyframeClock(0.0).due(frame), "none forced: the encoder's own"


def test_source_without_audio_gets_no_audio_plan(default_profile) -> None:  # type: ignore[no-untyped-def]
    assert plan_encode(default_profile, source(1280, 720, audio_channels=0)).audio is None


@pytest.mark.parametrize(("channels", "planned"), [(1, 1), (2, 2), (6, 2)])
def test_audio_is_downmixed_to_stereo_at_most(default_profile, channels: int, planned: int) -> None:  # type: ignore[no-untyped-def]
    audio = plan_encode(default_profile, source(1280, 720, audio_channels=channels)).audio
    assert audio is not None
    assert audio.channels == planned
    assert audio.layout == ("mono" if planned == 1 else "stereo")
    assert audio.sample_rate == 48_000, "resampled from the source's 44.1 kHz"


def test_total_frames_prefers_the_container_count(default_profile) -> None:  # type: ignore[no-untyped-def]
    assert plan_encode(default_profile, source(640, 360, frames=61, duration=2.0)).total_frames == 61
    assert plan_encode(default_profile, source(640, 360, duration=2.0)).total_frames == 60


def test_filter_complex_splits_once_and_scales_per_rung(default_profile) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, source(1280, 720, rotation=90), cascade=False)
    assert plan.filter_complex("0:v:0") == (
        "[0:v:0]transpose=cclock,split=3[s0][s1][s2];"
        f"[s0]scale=w=720:h=1280:flags=bicubic:{TO_BT709},setsar=1,format=yuv420p[v0];"
        f"[s1]scale=w=480:h=854:flags=bicubic:{TO_BT709},setsar=1,format=yuv420p[v1];"
        f"[s2]scale=w=360:h=640:flags=bicubic:{TO_BT709},setsar=1,format=yuv420p[v2]"
    )


def test_cascade_scales_each_rung_from_the_one_above(default_profile) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, source(1280, 720, rotation=90))
    assert [r.scaled_from for r in plan.renditions] == [-1, 0, 0], "480 and 360 from 720; 360 not from 480"
    assert plan.filter_complex("0:v:0") == (
        "[0:v:0]transpose=cclock,split=1[s0];"
        f"[s0]scale=w=720:h=1280:flags=bicubic:{TO_BT709},setsar=1,format=yuv420p,split=3[v0][c0_0][c0_1];"
        f"[c0_0]scale=w=480:h=854:flags=bicubic:{TO_BT709},setsar=1,format=yuv420p[v1];"
        f"[c0_1]scale=w=360:h=640:flags=bicubic:{TO_BT709},setsar=1,format=yuv420p[v2]"
    )


def test_cascade_converts_colour_once_at_the_top_rung(default_profile) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, replace(source(1920, 1080), full_range=True, color_matrix="bt470"))
    scales = [r.filters[0].args.split(":", 3)[3] for r in plan.renditions]
    assert scales[0] == "in_range=pc:out_range=tv:in_color_matrix=bt470:out_color_matrix=bt709"
    assert set(scales[1:]) == {TO_BT709}


def test_a_rung_barely_smaller_than_the_one_above_is_scaled_from_the_source() -> None:
    from services.process_svc.profiles import parse_profile

    close = parse_profile({"name": "close", "video_defaults": {"crf": 23}, "outputs": [
        {"type": "video", "name": "720p", "height": 720, "maxrate": "3M", "bufsize": "6M"},
        {"type": "video", "name": "640p", "height": 640, "maxrate": "2M", "bufsize": "4M"},
        {"type": "video", "name": "360p", "height": 360, "maxrate": "1M", "bufsize": "2M"}]})
    plan = plan_encode(close, source(1280, 720))
    assert [r.scaled_from for r in plan.renditions] == [-1, -1, 1]
    assert plan.source_fed == [0, 1] and plan.fed_by(1) == [2]


def test_full_hd_ladder_cascades_from_the_nearest_rung_at_least_1_4x_larger(default_profile) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, source(1920, 1080))
    assert [(r.name, r.scaled_from) for r in plan.renditions] == [("1080p", -1), ("720p", 0), ("480p", 1),
                                                                  ("360p", 1)]


TO_BT709 = "in_range=tv:out_range=tv:in_color_matrix=bt709:out_color_matrix=bt709"


def _scale_args(plan: EncodePlan) -> set[str]:
    """The colour options of the rungs scaled from the source."""
    return {f.args.split(":", 3)[3] for i in plan.source_fed for f in plan.renditions[i].filters if f.name == "scale"}


def test_interlaced_source_is_deinterlaced_once_before_the_split(default_profile) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, replace(source(1920, 1080, rotation=90), interlaced=True))
    assert [f.name for f in plan.upright] == ["bwdif", "transpose"]
    assert "send_frame" in plan.upright[0].args, "one frame out per frame in: the rate stays the source's"


def test_full_range_source_is_scaled_to_limited_range(default_profile) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, replace(source(1280, 720), full_range=True))
    assert _scale_args(plan) == {"in_range=pc:out_range=tv:in_color_matrix=bt709:out_color_matrix=bt709"}


@pytest.mark.parametrize(("width", "height", "matrix", "expected"), [
    (720, 576, "", "bt601"), (1280, 720, "", "bt709"), (720, 576, "bt470", "bt470"), (1920, 1080, "smpte170m",
                                                                                      "smpte170m")])
def test_colour_matrix_is_converted_to_bt709(default_profile, width, height, matrix, expected) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, replace(source(width, height), color_matrix=matrix))
    assert _scale_args(plan) == {f"in_range=tv:out_range=tv:in_color_matrix={expected}:out_color_matrix=bt709"}


def test_source_without_a_picture_size_is_refused(default_profile) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument, match="picture size"):
        plan_encode(default_profile, source(0, 0, audio_channels=0))
    with pytest.raises(InvalidArgument, match="picture size"):
        plan_encode(default_profile, source(0, 360))


def test_sound_alone_skips_every_output_but_audio_saying_why(default_profile) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(default_profile, source(0, 0))
    assert plan.outputs == () and plan.renditions == ()
    assert plan.warnings == ("the source is sound alone, with no picture: 1080p, 720p, 480p, 360p, presentation, "
                             "poster, thumbnails, storyboard not made (the 'audio' profile makes audio-only "
                             "renditions of it)",)


def test_planning_imports_no_media_library() -> None:
    # Plans are pure: they must stay testable (and importable) without PyAV.
    import subprocess
    import sys

    probe = "import sys, services.process_svc.plan; print('av' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
