"""What a profile asks for: the profile schema, as pydantic models.

A profile document (YAML in profiles/, or one a customer sends) validates into
a `Profile`: a name, the audio track video renditions carry, and `outputs`, a
list of typed entries told apart by their `type`. Each output type is one model
here (in OUTPUT_SPECS), one planner (plan/outputs.py) and one executor
(execute/registry.py). Reading files and naming mistakes: profiles/catalog.py.
Schema for people: docs/transcoding-profiles.md.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from services.process_svc.plan.encoders import AUDIO_ENCODERS, audio_encoder, rendition_problems
from services.process_svc.plan.per_title_spec import METRICS, PerTitleSpec


def parse_bitrate(value: Any) -> int:
    """Bits per second from 128000, "128k", "3.5M"."""
    if isinstance(value, bool):
        raise ValueError(f"not a bitrate: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(value))
    if not match:
        raise ValueError(f"not a bitrate: {value!r} (write e.g. 900k or 3.5M)")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return round(float(match.group(1)) * scale)


# Profile and output names travel in requests and become parts of storage keys and file names.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Bitrate = Annotated[int, BeforeValidator(parse_bitrate), Field(gt=0)]  # bits per second
EvenSize = Annotated[int, Field(ge=2, multiple_of=2)]  # 4:2:0 chroma needs even picture sides


def _listed(value: Any) -> Any:
    """YAML and JSON lists are read as tuples: specs are frozen."""
    return tuple(value) if isinstance(value, list) else value


class _Spec(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)


class VideoSettings(_Spec):
    """Encoder settings of a video rendition; `video_defaults` holds any of them for every video output."""

    crf: int | None = Field(None, ge=0)  # the range the encoder takes is checked per output
    max_bitrate: Bitrate | None = Field(None, alias="maxrate")  # VBV cap
    buffer_size: Bitrate | None = Field(None, alias="bufsize")  # VBV buffer, in bits
    codec: str = "h264"  # what players see
    encoder: str = "libx264"  # the FFmpeg encoder producing it
    preset: str = "veryfast"
    h264_profile: str = "high"
    pix_fmt: str = "yuv420p"
    keyint_seconds: float = Field(2.0, gt=0)
    scene_cut: bool = False  # False: fixed GOPs, aligned across rungs (segmentable for HLS/DASH)
    scale_flags: str = "bicubic"
    container: Literal["mp4", "webm"] = "mp4"


class VideoOutput(VideoSettings):
    """A video rendition: a progressive MP4 with the profile's audio track (a rung of the ladder)."""

    kind: ClassVar[str] = "video"
    type: Literal["video"] = "video"
    name: Name  # e.g. "720p"
    height: EvenSize  # the picture's short side: height for landscape, width for portrait
    # Required once video_defaults are merged in (the Profile checks).
    crf: int = Field(ge=0)
    max_bitrate: Bitrate = Field(alias="maxrate")
    buffer_size: Bitrate = Field(alias="bufsize")

    @model_validator(mode="after")
    def _encoder_takes_it(self) -> VideoOutput:
        problems = rendition_problems(self)  # per encoder: codec, container, crf range, preset (plan/encoders.py)
        if problems:
            raise ValueError("; ".join(problems))
        return self


# Each audio-only output's codec with the containers it may go in and the FFmpeg encoder that makes it.
AUDIO_OUTPUT_ENCODERS = {"aac": "aac", "opus": "libopus"}
AUDIO_CONTAINERS = {"aac": ("m4a", "mp4"), "opus": ("webm", "ogg")}


class AudioSpec(_Spec):
    """The audio track every video rendition carries when the source has audio (`audio:`)."""

    bitrate: Bitrate
    codec: Literal["aac", "opus"] = "aac"
    encoder: str = "aac"
    sample_rate: int = Field(48000, ge=8000, le=96000)
    max_channels: Literal[1, 2] = 2  # more source channels are downmixed to this

    @model_validator(mode="after")
    def _encoder_takes_it(self) -> AudioSpec:
        if self.encoder not in AUDIO_ENCODERS:
            raise ValueError(f"encoder: {self.encoder!r} is not one we run; audio encoders: "
                             f"{', '.join(AUDIO_ENCODERS)}")
        encoder = AUDIO_ENCODERS[self.encoder]
        if self.codec != encoder.codec:
            raise ValueError(f"codec: {self.encoder} makes {encoder.codec}, not {self.codec!r}")
        if encoder.sample_rates and self.sample_rate not in encoder.sample_rates:
            raise ValueError(f"sample_rate: {self.encoder} runs at {' or '.join(map(str, encoder.sample_rates))} Hz, "
                             f"not {self.sample_rate}")
        return self


class AudioOutput(_Spec):
    """An audio-only rendition: the source's first audio track alone, e.g. for a podcast feed or radio."""

    kind: ClassVar[str] = "audio"
    type: Literal["audio"] = "audio"
    name: Name = "audio"
    codec: Literal["aac", "opus"] = "aac"
    bitrate: Bitrate = 128_000
    sample_rate: Literal[48000, 44100] = 48000  # Opus runs at 48 kHz only
    max_channels: Literal[1, 2] = 2
    container: str = ""  # m4a (or mp4) for AAC, webm (or ogg) for Opus; empty: the first of those

    @model_validator(mode="after")
    def _codec_fits_container(self) -> AudioOutput:
        allowed = AUDIO_CONTAINERS[self.codec]
        if not self.container:
            object.__setattr__(self, "container", allowed[0])
        elif self.container not in allowed:
            raise ValueError(f"container {self.container!r} cannot hold {self.codec}; use {' or '.join(allowed)}")
        if self.codec == "opus" and self.sample_rate != 48000:
            raise ValueError("opus runs at sample_rate 48000 only")
        return self

    @property
    def encoder(self) -> str:
        return AUDIO_OUTPUT_ENCODERS[self.codec]


class AdaptiveOutput(_Spec):
    """HLS and DASH over one set of CMAF segments of the video renditions (and the audio track)."""

    kind: ClassVar[str] = "adaptive"
    type: Literal["adaptive"] = "adaptive"
    name: Name = "presentation"
    # The video outputs it packages, by name; none given: all of them.
    renditions: Annotated[tuple[Name, ...], BeforeValidator(_listed)] | None = None
    segment_seconds: float = Field(4.0, gt=0, le=60)


class PosterOutput(_Spec):
    """One still picture that stands for the video (JPEG and WebP)."""

    kind: ClassVar[str] = "poster"
    type: Literal["poster"] = "poster"
    name: Name = "poster"
    at_seconds: float | None = Field(None, ge=0)  # none: chosen from the video
    width: EvenSize | None = None  # none: the largest rendition's width


class ThumbnailsOutput(_Spec):
    """Still pictures spread over the video."""

    kind: ClassVar[str] = "thumbnails"
    type: Literal["thumbnails"] = "thumbnails"
    name: Name = "thumbnails"
    count: int = Field(10, ge=1, le=500)
    width: EvenSize = 320


class StoryboardOutput(_Spec):
    """A sprite sheet of small pictures every `interval_seconds`, with a WebVTT file pointing into it."""

    kind: ClassVar[str] = "storyboard"
    type: Literal["storyboard"] = "storyboard"
    name: Name = "storyboard"
    interval_seconds: float = Field(2.0, gt=0)
    tile_width: EvenSize = 160
    columns: int = Field(10, ge=1, le=50)
    # Longer videos get a larger interval rather than more tiles: one sheet of at most this many.
    max_tiles: int = Field(200, ge=1, le=2000)


OutputSpec = Annotated[
    VideoOutput | AudioOutput | AdaptiveOutput | PosterOutput | ThumbnailsOutput | StoryboardOutput,
    Field(discriminator="type"),
]
# type -> model: the schema's one list of output types.
OUTPUT_SPECS: dict[str, type[_Spec]] = {
    model.kind: model  # type: ignore[attr-defined]
    for model in (VideoOutput, AudioOutput, AdaptiveOutput, PosterOutput, ThumbnailsOutput, StoryboardOutput)
}


class PerTitleOption(_Spec):
    """`per_title:`: each rung's CRF and cap chosen per source to meet a quality target (plan/per_title.py)."""

    targets: dict[Name, Annotated[float, Field(ge=10, le=99)]] = Field(min_length=1)  # rung name -> dB of `metric`
    metric: Literal[METRICS] = "xpsnr"  # type: ignore[valid-type]
    first_crf: int = Field(26, ge=0, le=51)
    min_crf: int = Field(14, ge=0, le=51)
    max_crf: int = Field(42, ge=0, le=51)
    margin_db: float = 0.3
    min_gain_db: float = 0.5
    probe_preset: str = ""
    probe_rounds: int = Field(3, ge=1)
    bracket_crf: int = Field(6, ge=1)
    window_seconds: float = Field(0.0, ge=0)
    analysis_seconds: float = Field(0.4, gt=0)
    near_crf: int = Field(2, ge=0)
    analysis_windows: int = Field(12, ge=1)
    sample_share: float = Field(0.08, gt=0, le=1)
    cap_factor: float = Field(2.5, ge=1)
    cap_share: float = Field(0.8, gt=0, le=1)
    rung_step: float = Field(1.15, ge=1)

    @model_validator(mode="after")
    def _crfs_in_order(self) -> PerTitleOption:
        if not self.min_crf <= self.first_crf <= self.max_crf:
            raise ValueError("CRFs must satisfy min_crf <= first_crf <= max_crf")
        return self

    def spec(self) -> PerTitleSpec:
        values = {f.name: getattr(self, f.name) for f in fields(PerTitleSpec) if f.name != "targets"}
        return PerTitleSpec(targets=tuple(self.targets.items()), **values)


class Profile(_Spec):
    """A whole profile document."""

    name: Name
    description: str = ""
    video_defaults: VideoSettings = VideoSettings()  # merged into every `type: video` output
    audio: AudioSpec | None = None  # the track video renditions carry; none: renditions without audio
    outputs: Annotated[tuple[OutputSpec, ...], BeforeValidator(_listed)] = Field(min_length=1)
    per_title_option: PerTitleOption | None = Field(None, alias="per_title")

    @model_validator(mode="before")
    @classmethod
    def _merge_video_defaults(cls, document: Any) -> Any:
        if not isinstance(document, dict):
            return document
        defaults = document.get("video_defaults")
        outputs = document.get("outputs")
        if not isinstance(defaults, dict) or not isinstance(outputs, list):
            return document
        merged = [{**defaults, **output} if isinstance(output, dict) and output.get("type") == "video" else output
                  for output in outputs]
        return {**document, "outputs": merged}

    @model_validator(mode="after")
    def _names_unique_and_references_known(self) -> Profile:
        names = [output.name for output in self.outputs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"output names must be unique; {', '.join(repeated)} appear more than once")
        videos = {output.name for output in self.outputs if isinstance(output, VideoOutput)}
        if self.per_title_option is not None:
            unknown = [name for name in self.per_title_option.targets if name not in videos]
            if unknown:
                raise ValueError(f"per_title targets name rungs the profile does not have: {', '.join(unknown)}; "
                                 f"its rungs: {', '.join(sorted(videos))}")
        if self.audio is not None:
            containers = audio_encoder(self.audio.encoder).containers
            for output in self.renditions:
                if output.container not in containers:
                    raise ValueError(f"video output {output.name!r}: container {output.container!r} cannot carry the "
                                     f"profile's {self.audio.codec} audio; {self.audio.codec} goes in "
                                     f"{' or '.join(containers)}")
        if not videos and not any(isinstance(output, AudioOutput) for output in self.outputs):
            raise ValueError("a profile needs at least one output of type video or audio (the other outputs are "
                             "made from those)")
        for output in self.outputs:
            if isinstance(output, PosterOutput | ThumbnailsOutput | StoryboardOutput) and not videos:
                raise ValueError(f"{output.type} output {output.name!r} needs a video output to take its pictures "
                                 "from")
            if isinstance(output, AdaptiveOutput):
                if not videos:
                    raise ValueError(f"adaptive output {output.name!r} needs video outputs to package")
                unknown = [name for name in output.renditions or () if name not in videos]
                if unknown:
                    raise ValueError(f"adaptive output {output.name!r} names {', '.join(unknown)}, which are not "
                                     f"video outputs of this profile ({', '.join(sorted(videos))})")
        return self

    @property
    def renditions(self) -> tuple[VideoOutput, ...]:
        """The video outputs: the rungs of the ladder."""
        return tuple(output for output in self.outputs if isinstance(output, VideoOutput))

    @property
    def per_title(self) -> PerTitleSpec | None:
        return self.per_title_option.spec() if self.per_title_option is not None else None

    def with_renditions(self, renditions: tuple[VideoOutput, ...]) -> Profile:
        """The same profile with these video outputs in place of its own (by name; a video output
        not among them is left out); the other outputs stay as they are."""
        kept = {rendition.name: rendition for rendition in renditions}
        outputs = tuple(kept[o.name] if isinstance(o, VideoOutput) else o for o in self.outputs
                        if not isinstance(o, VideoOutput) or o.name in kept)
        return self.model_copy(update={"outputs": outputs})

    def of_type(self, kind: str) -> tuple[Any, ...]:
        return tuple(output for output in self.outputs if output.type == kind)
