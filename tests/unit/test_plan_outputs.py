"""One plan per output of a profile, from source facts alone (no media)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from services.process_svc.plan import (
    OUTPUT_SPECS,
    PLANNERS,
    AudioRenditionPlan,
    RenditionPlan,
    SourceInfo,
    plan_encode,
)
from services.process_svc.profiles import parse_profile
from services.shared.storage.keys import output_key

LADDER = [{"type": "video", "name": "720p", "height": 720}, {"type": "video", "name": "360p", "height": 360}]


def profile(*outputs: dict, audio: bool = True):  # type: ignore[no-untyped-def]
    return parse_profile({"name": "p", "video_defaults": {"crf": 23, "maxrate": "2M", "bufsize": "4M"},
                          "audio": {"bitrate": "128k"} if audio else None, "outputs": [*LADDER, *outputs]})


def source(width: int = 1280, height: int = 720, audio_channels: int = 2) -> SourceInfo:
    return SourceInfo(width=width, height=height, fps=Fraction(30), duration_seconds=10.0,
                      has_audio=audio_channels > 0, audio_channels=audio_channels)


def test_one_plan_per_output_in_the_profiles_order() -> None:
    plan = plan_encode(profile({"type": "audio", "name": "podcast", "codec": "opus", "bitrate": "64k"}), source())
    assert [(o.kind, o.name) for o in plan.outputs] == [("video", "720p"), ("video", "360p"), ("audio", "podcast")]
    assert plan.outputs[0] is plan.renditions[0], "a video output's plan is its rung of the ladder"
    assert plan.outputs[2] == AudioRenditionPlan(name="podcast", codec="opus", encoder="libopus", bitrate=64_000,
                                                 sample_rate=48000, channels=2, container="webm")
    assert plan.outputs[2].file_name == "podcast.webm" and plan.outputs[2].sample_format == "flt"
    assert plan.decodes_audio


def test_video_outputs_above_the_source_are_left_out_and_a_small_source_gets_its_own_size() -> None:
    assert [o.name for o in plan_encode(profile(), source(640, 360)).outputs] == ["360p"]
    [own] = plan_encode(profile(), source(320, 240)).outputs
    assert isinstance(own, RenditionPlan) and (own.name, own.width, own.height) == ("240p", 320, 240)


def test_an_audio_output_follows_the_source_channels_up_to_its_maximum() -> None:
    mono = plan_encode(profile({"type": "audio", "max_channels": 2}), source(audio_channels=1)).outputs_of("audio")
    surround = plan_encode(profile({"type": "audio", "max_channels": 1}), source(audio_channels=6)).outputs_of("audio")
    assert [(o.channels, o.codec, o.container, o.sample_format) for o in (*mono, *surround)] == [
        (1, "aac", "m4a", "fltp"), (1, "aac", "m4a", "fltp")]


def test_a_silent_source_skips_the_audio_output_and_says_so() -> None:
    plan = plan_encode(profile({"type": "audio", "name": "sound"}), source(audio_channels=0))
    assert [o.kind for o in plan.outputs] == ["video", "video"]
    assert "the source has no audio: audio output 'sound' was not made" in plan.warnings
    assert not plan.decodes_audio


def test_an_audio_output_alone_makes_the_pass_decode_audio() -> None:
    plan = plan_encode(profile({"type": "audio"}, audio=False), source())
    assert plan.audio is None and plan.decodes_audio, "the renditions stay silent, the audio output does not"


def test_every_output_type_of_the_schema_is_known_to_the_planner_or_waits_for_it() -> None:
    assert set(PLANNERS) <= set(OUTPUT_SPECS)
    assert {"video", "audio"} <= set(PLANNERS)


def test_a_profile_with_other_renditions_keeps_its_other_outputs() -> None:
    typed = profile({"type": "audio", "name": "sound"}, {"type": "adaptive", "renditions": ["720p", "360p"]})
    cheaper = typed.with_renditions(tuple(r.model_copy(update={"crf": 30}) for r in typed.renditions
                                          if r.name == "720p"))
    assert [(o.type, o.name) for o in cheaper.outputs] == [("video", "720p"), ("audio", "sound"),
                                                           ("adaptive", "presentation")]
    assert cheaper.renditions[0].crf == 30 and typed.renditions[0].crf == 23, "the original is unchanged"


@pytest.mark.parametrize("relative", ["../x/a.mp4", "/abs.mp4", "a/../../b", "", "a//b", "./a"])
def test_an_output_file_never_lands_outside_its_folder(relative: str) -> None:
    with pytest.raises(ValueError, match="must stay inside"):
        output_key("ten_a", "vid_1", relative)


def test_output_files_land_in_the_videos_folder_or_the_later_jobs() -> None:
    assert output_key("ten_a", "vid_1", "renditions/sound.m4a") == "ten_a/vid_1/renditions/sound.m4a"
    assert (output_key("ten_a", "vid_1", "images/poster.jpg", job_id="job_2")
            == "ten_a/vid_1/jobs/job_2/images/poster.jpg")


def test_an_audio_output_like_the_renditions_track_shares_its_encode() -> None:
    same = plan_encode(profile({"type": "audio", "bitrate": "128k"}), source()).outputs_of("audio")
    other_rate = plan_encode(profile({"type": "audio", "bitrate": "96k"}), source()).outputs_of("audio")
    opus = plan_encode(profile({"type": "audio", "codec": "opus", "bitrate": "128k"}), source()).outputs_of("audio")
    mono = plan_encode(profile({"type": "audio", "bitrate": "128k", "max_channels": 1}), source()).outputs_of("audio")
    silent_renditions = plan_encode(profile({"type": "audio"}, audio=False), source()).outputs_of("audio")
    assert [o.shares_track for o in (*same, *other_rate, *opus, *mono, *silent_renditions)] == [
        True, False, False, False, False]


@pytest.mark.parametrize("fps", [Fraction(2975, 100), Fraction(2959, 100), Fraction(2320, 100), Fraction(3025, 100),
                                 Fraction(1410, 100), Fraction(30000, 1001), Fraction(30)])
def test_a_variable_rate_average_keeps_the_adaptive_output(fps: Fraction) -> None:
    """Keyframes come every keyint_seconds of time, so 4 s segments hold two 2 s GOPs at any average rate."""
    plan = plan_encode(profile({"type": "adaptive", "segment_seconds": 4}), replace(source(), fps=fps))
    assert not plan.warnings
    (adaptive,) = plan.outputs_of("adaptive")
    assert [(r.name, r.keyint_seconds) for r in adaptive.rungs] == [("720p", 2.0), ("360p", 2.0)]


@pytest.mark.parametrize(("segment_seconds", "keyint_seconds", "kept"), [
    (4, 2, True), (2, 2, True), (6, 1.5, True), (1, 0.2, True), (2.4, 0.4, True),
    (3, 2, False), (1, 2, False), (5, 2, False),
])
def test_segments_must_hold_whole_gops_of_keyint_seconds(segment_seconds: float, keyint_seconds: float,
                                                        kept: bool) -> None:
    spec = parse_profile({"name": "p", "video_defaults": {"crf": 23, "maxrate": "2M", "bufsize": "4M",
                                                          "keyint_seconds": keyint_seconds},
                          "outputs": [*LADDER, {"type": "adaptive", "segment_seconds": segment_seconds}]})
    plan = plan_encode(spec, replace(source(), fps=Fraction(2975, 100)))
    assert bool(plan.outputs_of("adaptive")) == kept
    if not kept:
        (warning,) = plan.warnings
        assert f"segments of {segment_seconds:g} s" in warning and f"every {keyint_seconds:g} s" in warning
        assert "make segment_seconds a multiple of keyint_seconds" in warning
