"""Each encoder's options for one rung, and the profile checks that keep an
encoder from being asked for what it cannot do."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from services.process_svc.plan import SourceInfo, plan_encode
from services.process_svc.plan.model import RenditionPlan
from services.process_svc.profiles import ProfileCatalog, ProfileError, parse_profile

SOURCE = SourceInfo(width=1920, height=1080, fps=Fraction(30), duration_seconds=10.0, has_audio=True,
                    audio_channels=2, audio_sample_rate=44100)


def rung(encoder: str, **fields: object) -> RenditionPlan:
    base = RenditionPlan(name="720p", width=1280, height=720, fps=Fraction(30), keyint=60, min_keyint=60, crf=30,
                         max_bitrate=2_500_000, buffer_size=5_000_000, preset="veryfast", h264_profile="high",
                         pix_fmt="yuv420p", scene_cut=False, filters=(), encoder=encoder)
    return replace(base, **fields)  # type: ignore[arg-type]


def test_x264_caps_with_vbv_and_fixes_the_gop() -> None:
    assert rung("libx264").encoder_options() == {
        "preset": "veryfast", "crf": "30", "maxrate": "2500000", "bufsize": "5000000", "profile": "high",
        "g": "60", "keyint_min": "60", "sc_threshold": "0", "forced-idr": "1"}


def test_x265_speaks_through_x265_params_in_kbps_and_is_tagged_hvc1() -> None:
    plan = rung("libx265", codec="hevc")
    assert plan.encoder_options() == {
        "preset": "veryfast", "crf": "30", "forced-idr": "1",
        "x265-params": "keyint=60:min-keyint=60:scenecut=0:open-gop=0:vbv-maxrate=2500:vbv-bufsize=5000:"
                       "log-level=error"}
    assert (plan.codec_tag, plan.decoder) == ("hvc1", "hevc")
    assert "scenecut=40" in rung("libx265", codec="hevc", scene_cut=True).encoder_options()["x265-params"]


def test_svtav1_gets_a_numbered_preset_capped_crf_and_a_fixed_gop() -> None:
    plan = rung("libsvtav1", codec="av1", preset="8")
    assert plan.encoder_options() == {"preset": "8", "crf": "30", "g": "60",
                                      "svtav1-params": "keyint=60:scd=0:mbr=2500"}
    assert plan.decoder == "libdav1d", "FFmpeg's native av1 decoder needs a hardware accelerator"
    assert plan.codec_tag == ""


def test_vp9_is_constrained_quality_with_row_threads_and_tiles_for_the_width() -> None:
    options = rung("libvpx-vp9", codec="vp9", preset="5", container="webm").encoder_options()
    assert options == {"crf": "30", "b": "2500000", "deadline": "good", "cpu-used": "5", "row-mt": "1",
                       "tile-columns": "2", "g": "60"}
    realtime = rung("libvpx-vp9", codec="vp9", preset="realtime-8", container="webm").encoder_options()
    assert (realtime["deadline"], realtime["cpu-used"]) == ("realtime", "8")
    assert rung("libvpx-vp9", width=426, preset="5").encoder_options()["tile-columns"] == "0"
    assert rung("libvpx-vp9", width=640, preset="5").encoder_options()["tile-columns"] == "1"


def test_shipped_profiles_plan_their_encoders_and_audio() -> None:
    catalog = ProfileCatalog.load()
    plans = {name: plan_encode(catalog.get(name), SOURCE) for name in ("hevc", "modern", "webm")}
    assert {r.encoder for r in plans["hevc"].renditions} == {"libx265"}
    assert [(r.name, r.encoder) for r in plans["modern"].renditions] == [
        ("1080p", "libsvtav1"), ("720p", "libsvtav1"), ("480p", "libx264"), ("360p", "libx264")]
    assert {(r.keyint_seconds, r.keyint) for r in plans["modern"].renditions} == {(2.0, 120)}, "one GOP for both codecs"
    assert {(r.encoder, r.container) for r in plans["webm"].renditions} == {("libvpx-vp9", "webm")}
    webm_audio = plans["webm"].audio
    assert webm_audio is not None
    assert (webm_audio.encoder, webm_audio.sample_rate, webm_audio.sample_format) == ("libopus", 48000, "flt")


def _profile(**video: object) -> dict:
    return {"name": "p", "outputs": [{"type": "video", "name": "a", "height": 360, "crf": 30, "maxrate": "1M",
                                      "bufsize": "2M", **video}]}


@pytest.mark.parametrize(("video", "words"), [
    ({"encoder": "libaom-av1", "codec": "av1"}, "encoder 'libaom-av1' is not one we run"),
    ({"encoder": "libx265", "codec": "h264"}, "codec: libx265 makes hevc, not 'h264'"),
    ({"encoder": "libx265", "codec": "hevc", "container": "webm"}, "container: hevc goes in mp4, not 'webm'"),
    ({"encoder": "libsvtav1", "codec": "av1", "preset": "veryfast"}, "preset: libsvtav1 takes 0, 1"),
    ({"encoder": "libsvtav1", "codec": "av1", "preset": "8", "crf": 70}, "crf: libsvtav1 takes 1..63, got 70"),
    ({"crf": 52}, "crf: libx264 takes 0..51, got 52"),
    ({"preset": "ludicrous"}, "preset: libx264 takes ultrafast"),
    ({"h264_profile": "baseline", "pix_fmt": "yuv444p"}, "yuv420p only, not 'yuv444p'"),
    ({"encoder": "libvpx-vp9", "codec": "vp9", "container": "webm", "preset": "8"}, "preset: libvpx-vp9 takes 0, 1"),
])
def test_an_encoder_asked_for_what_it_cannot_do_is_a_profile_error(video: dict, words: str) -> None:
    with pytest.raises(ProfileError) as error:
        parse_profile(_profile(**video))
    assert "<profile>: outputs[0]." in str(error.value) and words in str(error.value)


@pytest.mark.parametrize(("audio", "video", "words"), [
    ({"codec": "aac", "encoder": "aac", "bitrate": "128k"}, {"encoder": "libvpx-vp9", "codec": "vp9",
                                                              "container": "webm", "preset": "5"},
     "container 'webm' cannot carry the profile's aac audio"),
    ({"codec": "opus", "encoder": "libopus", "bitrate": "96k", "sample_rate": 44100}, {},
     "sample_rate: libopus runs at 48000 Hz, not 44100"),
    ({"codec": "opus", "encoder": "aac", "bitrate": "96k"}, {}, "codec: aac makes aac, not 'opus'"),
])
def test_audio_that_the_encoder_or_container_cannot_take_is_a_profile_error(audio: dict, video: dict,
                                                                           words: str) -> None:
    with pytest.raises(ProfileError) as error:
        parse_profile({**_profile(**video), "audio": audio})
    assert words in str(error.value)
