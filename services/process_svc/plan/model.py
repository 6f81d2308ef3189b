"""What a profile asks for, what a source is, and what the executor will do:
plain frozen dataclasses, no media library in sight."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar, Protocol


@dataclass(frozen=True)
class VideoFilter:
    """One FFmpeg filter of the ladder's graph, as `name=args` (args may be empty).

    The executor adds these to a PyAV filter graph and the benchmark joins them
    into an ffmpeg `-filter_complex`, so both run the very same filters."""

    name: str
    args: str = ""

    def __str__(self) -> str:
        return f"{self.name}={self.args}" if self.args else self.name


# What a profile asks for: plan/specs.py (the profile schema, pydantic models).


# --- What the source is ------------------------------------------------------

@dataclass(frozen=True)
class SourceInfo:
    """The facts about a source that shape its encode plan."""

    width: int  # coded picture, before rotation
    height: int
    fps: Fraction  # 0 when the container does not say
    duration_seconds: float
    has_audio: bool = False
    audio_channels: int = 0
    audio_sample_rate: int = 0
    rotation: int = 0  # degrees counter-clockwise the picture must turn to stand upright
    sample_aspect_ratio: Fraction = Fraction(1)
    video_frames: int = 0  # 0 when unknown
    video_codec: str = ""
    audio_codec: str = ""
    interlaced: bool = False  # fields, not frames: flagged so, or found combed by idet
    full_range: bool = False  # 0-255 levels (yuvj*, color_range=pc), where video wants 16-235
    color_matrix: str = ""  # FFmpeg's name of the source's YUV matrix ("bt709", "bt470bg"...); empty: unknown
    # Jumps in the source's clock (start, end in source seconds) where no stream has anything:
    # a recorder's clock reset, a bad join. The renditions close them up.
    timeline_gaps: tuple[tuple[float, float], ...] = ()
    color_transfer: str = ""  # FFmpeg's name of the transfer function ("bt709", "smpte2084", "arib-std-b67")
    extra_audio_streams: int = 0  # audio tracks after the first (renditions carry the first)
    subtitle_streams: tuple[str, ...] = ()  # each as "codec (language)"

    @property
    def sound_only(self) -> bool:
        """A file of sound alone (a podcast's MP3, cover art aside): no picture to plan for."""
        return self.has_audio and self.width <= 0 and self.height <= 0

    @property
    def quarter_turns(self) -> int:
        """Clockwise quarter turns that make the picture upright (0..3)."""
        return round(-self.rotation / 90) % 4

    @property
    def display_size(self) -> tuple[float, float]:
        """Width and height as a viewer sees them: square pixels, upright."""
        width = self.width * float(self.sample_aspect_ratio or 1)
        height = float(self.height)
        return (height, width) if self.quarter_turns % 2 else (width, height)


# --- What the executor will do -----------------------------------------------

class OutputPlan(Protocol):
    """What the executor of one output type will make of one output of the profile."""

    kind: ClassVar[str]  # the output's type, as profiles spell it: "video", "audio"...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class RenditionPlan:
    """A video output: one rung of the ladder, a progressive MP4."""

    kind: ClassVar[str] = "video"
    name: str
    width: int
    height: int
    fps: Fraction
    # The encoder's longest GOP in frames (g, keyint): above what keyint_seconds holds at any plausible
    # rate, so the encoder adds no keyframe of its own; the writer forces them by time (rendition_writer.py).
    keyint: int
    min_keyint: int
    crf: int
    max_bitrate: int
    buffer_size: int
    preset: str
    h264_profile: str
    pix_fmt: str
    scene_cut: bool
    filters: tuple[VideoFilter, ...]  # after the split: scale, square pixels, pixel format
    codec: str = "h264"
    encoder: str = "libx264"
    container: str = "mp4"
    scaled_from: int = -1  # index of the rung whose scaled picture this one is scaled from; -1: the source
    # Seconds of media time between keyframes, from the rung's first picture: a keyframe is forced on the
    # first frame at or past each multiple, so every rung has them on the same frames at any frame rate.
    keyint_seconds: float = 2.0

    @property
    def file_name(self) -> str:
        return f"{self.name}.{self.container}"

    def encoder_options(self) -> dict[str, str]:
        """AVOptions of the rung's encoder, named as the ffmpeg CLI names them (plan/encoders.py)."""
        from services.process_svc.plan.encoders import video_encoder  # it builds on these dataclasses

        return video_encoder(self.encoder).options(self)

    @property
    def force_key_frames(self) -> str:
        """The keyframes the rendition writer forces, as the ffmpeg CLI's -force_key_frames says it."""
        return f"expr:gte(t,n_forced*{self.keyint_seconds:g})"

    @property
    def decoder(self) -> str:
        """The FFmpeg decoder that reads what the encoder makes (the quality report decodes it)."""
        from services.process_svc.plan.encoders import video_encoder

        return video_encoder(self.encoder).decoder

    @property
    def codec_tag(self) -> str:
        """The MP4 sample entry to write ("hvc1" for HEVC, so Apple players take it); "": the muxer's."""
        from services.process_svc.plan.encoders import video_encoder

        return video_encoder(self.encoder).codec_tag if self.container == "mp4" else ""


@dataclass(frozen=True)
class AudioPlan:
    """The audio track every video rendition carries: encoded once, muxed into each."""

    bitrate: int
    sample_rate: int
    channels: int
    codec: str = "aac"
    encoder: str = "aac"
    sample_format: str = "fltp"  # what FFmpeg's AAC encoder takes

    @property
    def layout(self) -> str:
        return "mono" if self.channels == 1 else "stereo"


@dataclass(frozen=True)
class AudioRenditionPlan:
    """An audio-only output: the source's first audio track, encoded on its own."""

    kind: ClassVar[str] = "audio"
    name: str
    codec: str  # "aac", "opus"
    encoder: str  # "aac", "libopus"
    bitrate: int
    sample_rate: int
    channels: int
    container: str  # "m4a", "mp4", "webm", "ogg"
    # The renditions' track is this very encode (same encoder, bitrate, rate, channels): its packets are
    # muxed as they are, with no encode of its own.
    shares_track: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.name}.{self.container}"

    @property
    def layout(self) -> str:
        return "mono" if self.channels == 1 else "stereo"

    @property
    def sample_format(self) -> str:
        """What the FFmpeg encoder takes: planar float for AAC, interleaved float for libopus."""
        return "fltp" if self.codec == "aac" else "flt"


@dataclass(frozen=True)
class AdaptivePlan:
    """HLS + DASH over CMAF segments cut from the rungs' own packets (no encode of its own)."""

    kind: ClassVar[str] = "adaptive"
    name: str
    rungs: tuple[RenditionPlan, ...]  # largest first, as the ladder
    audio: AudioPlan | None  # the renditions' track, as a group of its own; None: a silent presentation
    segment_seconds: float


@dataclass(frozen=True)
class EncodePlan:
    """One pass over the source that makes every output of the profile.

    `renditions` is the ladder (largest first, the filter graph's order);
    `outputs` holds one plan per output in the profile's order (video outputs
    are the ladder's RenditionPlans), leaving out what this source cannot have
    (a rung above its size)."""

    profile: str
    source: SourceInfo
    renditions: tuple[RenditionPlan, ...]
    audio: AudioPlan | None  # the track video renditions carry
    upright: tuple[VideoFilter, ...] = field(default=())  # before the split: deinterlace, undo the rotation
    total_frames: int = 0  # estimate, for progress
    warnings: tuple[str, ...] = ()  # what the customer should know the renditions changed or left out
    outputs: tuple[OutputPlan, ...] = ()

    def outputs_of(self, kind: str) -> tuple[OutputPlan, ...]:
        return tuple(output for output in self.outputs if output.kind == kind)

    @property
    def decodes_audio(self) -> bool:
        """Whether the pass must decode the source's audio (a track for the renditions, or an audio output)."""
        return self.audio is not None or bool(self.outputs_of("audio"))

    @property
    def source_fed(self) -> list[int]:
        """The rungs scaled from the (upright) source itself, in order."""
        return [i for i, r in enumerate(self.renditions) if r.scaled_from < 0]

    def fed_by(self, rung: int) -> list[int]:
        """The rungs scaled from this rung's picture (a cascade), in order."""
        return [i for i, r in enumerate(self.renditions) if r.scaled_from == rung]

    def filter_complex(self, input_label: str = "in") -> str:
        """The whole graph in ffmpeg `-filter_complex` syntax, outputs labelled v0, v1..."""
        roots = self.source_fed
        head = ",".join([*map(str, self.upright), f"split={len(roots)}"])
        splits = "".join(f"[s{i}]" for i in roots)
        chains = []
        for i, rendition in enumerate(self.renditions):
            parent = rendition.scaled_from
            source = f"[s{i}]" if parent < 0 else f"[c{parent}_{self.fed_by(parent).index(i)}]"
            children = self.fed_by(i)
            tail = (f",split={1 + len(children)}[v{i}]" + "".join(f"[c{i}_{j}]" for j in range(len(children)))
                    if children else f"[v{i}]")
            chains.append(f"{source}{','.join(map(str, rendition.filters))}{tail}")
        return ";".join([f"[{input_label}]{head}{splits}", *chains])
