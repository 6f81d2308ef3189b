"""The profile catalogue: YAML in, Profile dataclasses out, mistakes named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.process_svc.profiles import (
    ProfileCatalog,
    ProfileError,
    UnknownProfile,
    parse_bitrate,
    parse_profile,
)
from services.shared.errors import InvalidArgument


def test_builtin_catalogue_has_the_default_ladder() -> None:
    catalog = ProfileCatalog.load()
    default = catalog.get("default")
    assert catalog.names == ["default", "per-title", "hevc", "modern", "webm"]
    assert [(r.name, r.height, r.crf, r.preset) for r in default.renditions] == [
        ("1080p", 1080, 23, "veryfast"), ("720p", 720, 23, "veryfast"),
        ("480p", 480, 23, "veryfast"), ("360p", 360, 23, "veryfast")]
    assert default.audio is not None and (default.audio.codec, default.audio.bitrate) == ("aac", 128_000)
    assert catalog.get("") is default, "a job that names no profile gets the default"


def test_unknown_profile_names_the_available_ones() -> None:
    with pytest.raises(UnknownProfile) as caught:
        ProfileCatalog.load().get("4k-hdr")
    assert isinstance(caught.value, InvalidArgument), "maps to INVALID_ARGUMENT at the edge"
    assert "'4k-hdr'" in caught.value.message and "default" in caught.value.message


@pytest.mark.parametrize(("text", "bits"), [(128000, 128000), ("128k", 128000), ("3.5M", 3500000), ("900k", 900000)])
def test_bitrates_read_as_people_write_them(text: object, bits: int) -> None:
    assert parse_bitrate(text) == bits


def minimal(**changes: object) -> dict:
    document = {"name": "small", "outputs": [{"type": "video", "name": "360p", "height": 360, "crf": 23,
                                              "maxrate": "1M", "bufsize": "2M"}]}
    document.update(changes)
    return document


def test_outputs_inherit_video_defaults_and_may_override_them() -> None:
    profile = parse_profile(minimal(video_defaults={"crf": 28, "preset": "medium", "maxrate": "1M", "bufsize": "2M"},
                                    outputs=[{"type": "video", "name": "a", "height": 240},
                                             {"type": "video", "name": "b", "height": 144, "crf": 30}]))
    assert [(r.name, r.crf, r.preset, r.max_bitrate) for r in profile.renditions] == [
        ("a", 28, "medium", 1_000_000), ("b", 30, "medium", 1_000_000)]
    assert profile.audio is None, "no audio section: renditions without audio"


@pytest.mark.parametrize(("document", "message"), [
    (minimal(outputs=[{"type": "hls", "name": "x"}]), "output type 'hls' (planned, not built yet) is not supported"),
    (minimal(outputs=[{"type": "gif", "name": "x"}]), "output type 'gif' is not supported"),
    (minimal(outputs=[{"type": "video", "name": "x", "height": 360, "crf": 23, "maxrate": "1M", "bufsize": "2M",
                       "bitrate": "1M"}]), "unknown key(s) bitrate"),
    (minimal(outputs=[{"type": "video", "name": "x", "height": 361, "crf": 23, "maxrate": "1M", "bufsize": "2M"}]),
     "height must be even"),
    (minimal(outputs=[{"type": "video", "name": "x", "height": 360, "crf": "high", "maxrate": "1M",
                       "bufsize": "2M"}]), "crf: expected a whole number"),
    (minimal(outputs=[{"type": "video", "name": "x", "height": 360, "maxrate": "1M", "bufsize": "2M"}]), "crf"),
    (minimal(audio={"bitrate": "128k", "max_channels": 6}), "max_channels must be 1 or 2"),
    (minimal(name="Bad Name"), "'name' must be"),
    (minimal(outputs=[]), "at least one output"),
    (minimal(extra=1), "unknown key(s) extra"),
])
def test_schema_mistakes_are_named(document: dict, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(document, source="small.yaml")
    assert message in str(caught.value)
    assert "small.yaml" in str(caught.value)


def test_catalogue_loads_from_another_folder(tmp_path: Path) -> None:
    (tmp_path / "index.yaml").write_text(yaml.safe_dump({"profiles": ["small.yaml"]}))
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(minimal()))
    assert ProfileCatalog.load(tmp_path).names == ["small"]


def test_catalogue_refuses_an_index_naming_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "index.yaml").write_text(yaml.safe_dump({"profiles": ["gone.yaml"]}))
    with pytest.raises(ProfileError, match="gone.yaml"):
        ProfileCatalog.load(tmp_path)


def test_per_title_profile_is_the_default_ladder_with_a_quality_target_per_rung() -> None:
    catalog = ProfileCatalog.load()
    default, per_title = catalog.get("default"), catalog.get("per-title")
    assert [(r.name, r.height, r.max_bitrate) for r in per_title.renditions] == [
        (r.name, r.height, r.max_bitrate) for r in default.renditions]
    assert per_title.per_title is not None and default.per_title is None
    assert [name for name, _ in per_title.per_title.targets] == ["1080p", "720p", "480p", "360p"]


@pytest.mark.parametrize(("per_title", "complaint"), [
    ({"targets": {"2160p": 40}}, "targets name rungs the profile does not have: 2160p"),
    ({"targets": {"720p": "high"}}, "target of 720p must be a number of dB"),
    ({"targets": {"720p": 38}, "metric": "vmaf"}, "metric must be one of xpsnr, psnr"),
    ({"targets": {"720p": 38}, "crf_floor": 10}, "unknown key(s) crf_floor"),
    ({"metric": "psnr"}, "'targets' must map rung names"),
])
def test_per_title_option_errors_name_the_problem(per_title: dict, complaint: str) -> None:
    document = {"name": "pt", "outputs": [{"type": "video", "name": "720p", "height": 720, "crf": 23,
                                           "maxrate": "3M", "bufsize": "6M"}], "per_title": per_title}
    with pytest.raises(ProfileError) as raised:
        parse_profile(document, source="pt.yaml")
    assert complaint in str(raised.value)
