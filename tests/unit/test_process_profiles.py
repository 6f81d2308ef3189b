"""The profile catalogue: YAML in, validated Profile models out, mistakes named with file and field."""

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
    parse_profile_text,
)
from services.shared.errors import InvalidArgument


def test_builtin_catalogue_has_the_default_ladder() -> None:
    catalog = ProfileCatalog.load()
    default = catalog.get("default")
    assert catalog.names == ["default", "per-title", "hevc", "modern", "webm", "audio"]
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


VIDEO = {"type": "video", "name": "x", "height": 360, "crf": 23, "maxrate": "1M", "bufsize": "2M"}


@pytest.mark.parametrize(("document", "message"), [
    (minimal(outputs=[VIDEO, {"type": "hls", "name": "y"}]),
     "small.yaml: outputs[1].type: unknown output type 'hls'; the types are video, audio, adaptive, poster"),
    (minimal(outputs=[VIDEO, {"name": "y"}]), "small.yaml: outputs[1].type: each output needs a 'type'"),
    (minimal(outputs=[{**VIDEO, "bitrate": "1M"}]), "small.yaml: outputs[0].bitrate: unknown key; accepted: bufsize,"),
    (minimal(outputs=[{**VIDEO, "height": 361}]), "small.yaml: outputs[0].height: must be even; got 361"),
    (minimal(outputs=[{**VIDEO, "crf": "high"}]), "small.yaml: outputs[0].crf: input should be a valid integer"),
    (minimal(outputs=[{**VIDEO, "crf": 52}]), "small.yaml: outputs[0].crf: libx264 takes 0..51, got 52"),
    (minimal(outputs=[{**VIDEO, "maxrate": "fast"}]), "small.yaml: outputs[0].maxrate: not a bitrate: 'fast'"),
    (minimal(outputs=[{k: v for k, v in VIDEO.items() if k != "crf"}]),
     "small.yaml: outputs[0].crf: required: set it on the output or in video_defaults"),
    (minimal(audio={"bitrate": "128k", "max_channels": 6}), "small.yaml: audio.max_channels: input should be 1 or 2"),
    (minimal(name="Bad Name"), "small.yaml: name: must be lower-case letters"),
    (minimal(outputs=[{**VIDEO, "name": "../x"}]), "small.yaml: outputs[0].name: must be lower-case letters"),
    (minimal(outputs=[]), "small.yaml: outputs: must list at least one output"),
    (minimal(extra=1),
     "small.yaml: extra: unknown key; accepted: audio, description, name, outputs, per_title, video_defaults"),
    (minimal(outputs=[VIDEO, {"type": "audio", "codec": "opus", "container": "m4a"}]),
     "small.yaml: outputs[1]: container 'm4a' cannot hold opus; use webm or ogg"),
    (minimal(outputs=[VIDEO, {"type": "audio", "codec": "flac"}]), "small.yaml: outputs[1].codec: input should be"),
    (minimal(outputs=[VIDEO, {"type": "audio", "name": "x"}]), "output names must be unique; x appear"),
    (minimal(outputs=[VIDEO, {"type": "adaptive", "renditions": ["x", "4k"]}]),
     "adaptive output 'presentation' names 4k, which are not video outputs of this profile (x)"),
    (minimal(outputs=[{"type": "poster"}]), "a profile needs at least one output of type video or audio"),
    (minimal(outputs=[VIDEO, {"type": "thumbnails", "count": 0}]),
     "small.yaml: outputs[1].count: input should be greater than or equal to 1"),
    (minimal(outputs=[VIDEO, {"type": "storyboard", "columns": "ten"}]), "small.yaml: outputs[1].columns: input"),
])
def test_schema_mistakes_name_the_file_and_the_field(document: dict, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(document, source="small.yaml")
    assert message in str(caught.value)
    assert isinstance(caught.value, InvalidArgument), "a customer's profile document is refused as INVALID_ARGUMENT"


def test_every_mistake_is_listed_once_and_a_wrong_default_at_its_own_place() -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(minimal(video_defaults={"crf": -1}, outputs=[
            {"type": "video", "name": "a", "height": 360, "maxrate": "1M", "bufsize": "2M"},
            {"type": "video", "name": "b", "height": 241, "maxrate": "1M", "bufsize": "2M"}]), source="p.yaml")
    assert caught.value.problems == ("video_defaults.crf: input should be greater than or equal to 0; got -1",
                                     "outputs[1].height: must be even; got 241")


def test_customer_profile_text_is_read_with_its_origin_in_errors() -> None:
    text = "name: mine\noutputs:\n  - {type: video, name: sd, height: 480, crf: 26, maxrate: 1M, bufsize: 2M}\n" \
           "  - {type: audio, codec: opus, bitrate: 96k}\n"
    profile = parse_profile_text(text, origin="upload profile")
    audio = profile.outputs[1]
    assert (audio.name, audio.codec, audio.bitrate, audio.container, audio.encoder) == (
        "audio", "opus", 96_000, "webm", "libopus")
    with pytest.raises(ProfileError, match=r"^upload profile: outputs\[0\].height: must be even"):
        parse_profile_text(text.replace("480", "481"), origin="upload profile")
    with pytest.raises(ProfileError, match="^upload profile: not valid YAML"):
        parse_profile_text("name: [", origin="upload profile")
    with pytest.raises(ProfileError, match="^upload profile: expected a mapping at the top"):
        parse_profile_text("- 1", origin="upload profile")


def test_every_output_type_has_its_defaults() -> None:
    profile = parse_profile(minimal(outputs=[VIDEO, {"type": "audio"}, {"type": "adaptive"}, {"type": "poster"},
                                             {"type": "thumbnails"}, {"type": "storyboard"}]))
    assert [(o.type, o.name) for o in profile.outputs] == [
        ("video", "x"), ("audio", "audio"), ("adaptive", "presentation"), ("poster", "poster"),
        ("thumbnails", "thumbnails"), ("storyboard", "storyboard")]
    assert (profile.outputs[1].codec, profile.outputs[1].container, profile.outputs[1].bitrate) == ("aac", "m4a",
                                                                                                     128_000)
    assert profile.outputs[2].renditions is None and profile.outputs[2].segment_seconds == 4.0


def test_a_profile_asking_for_an_output_type_the_transcoder_cannot_make_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "index.yaml").write_text(yaml.safe_dump({"profiles": ["small.yaml"]}))
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(minimal(outputs=[VIDEO, {"type": "poster"}])))
    with pytest.raises(ProfileError, match=r"small.yaml: outputs\[1\].type: output type 'poster' cannot be made"):
        ProfileCatalog.load(tmp_path, output_types={"video", "audio"})
    assert ProfileCatalog.load(tmp_path).names == ["small"], "the schema itself knows the type"


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
    ({"targets": {"720p": "high"}}, "pt.yaml: per_title.targets.720p: input should be a valid number; got 'high'"),
    ({"targets": {"720p": 5}}, "pt.yaml: per_title.targets.720p: input should be greater than or equal to 10"),
    ({"targets": {"720p": 38}, "metric": "vmaf"}, "pt.yaml: per_title.metric: input should be 'xpsnr' or 'psnr'"),
    ({"targets": {"720p": 38}, "crf_floor": 10},
     "pt.yaml: per_title.crf_floor: unknown key; accepted: analysis_seconds, analysis_windows"),
    ({"targets": {"720p": 38}, "min_crf": 30, "first_crf": 26}, "CRFs must satisfy min_crf <= first_crf <= max_crf"),
    ({"metric": "psnr"}, "pt.yaml: per_title.targets: required"),
])
def test_per_title_option_errors_name_the_problem(per_title: dict, complaint: str) -> None:
    document = {"name": "pt", "outputs": [{"type": "video", "name": "720p", "height": 720, "crf": 23,
                                           "maxrate": "3M", "bufsize": "6M"}], "per_title": per_title}
    with pytest.raises(ProfileError) as raised:
        parse_profile(document, source="pt.yaml")
    assert complaint in str(raised.value)
