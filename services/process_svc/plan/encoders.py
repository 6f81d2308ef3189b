"""What each encoder a profile may name needs: its AVOptions for one rung, the
codec players see, the containers it may go in, and the decoder that reads it
back (quality report, checks). Pure: no media library here.

Every encoder gets the same three things from a rung, each in its own words:
a quality target (CRF), a bitrate cap (VBV), and a longest GOP of `keyint`
frames with no extra keyframes at scene cuts. The rendition writer forces a
keyframe every `keyint_seconds` of media time (frame.pict_type = I), on the
same frames in every rung (so HLS/DASH segments line up across rungs); the
GOP limit is above that, so the encoder adds none of its own. Every encoder
makes a forced picture a keyframe a segment may start on (x264 and x265: an
IDR, with forced-idr).

    x264   crf + maxrate/bufsize, g/keyint_min, sc_threshold=0, forced-idr
    x265   crf + x265-params keyint/min-keyint/scenecut=0/open-gop=0/vbv-*, forced-idr; tag hvc1
    SVT-AV1 crf + svtav1-params mbr (capped CRF: no buffer size), g + keyint, scd=0
    VP9    crf + b (constrained quality: b is the cap), g, row-mt, tiles; preset names
           the deadline and cpu-used ("5": good 5, "realtime-8")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.process_svc.plan.model import RenditionPlan

if TYPE_CHECKING:
    from services.process_svc.plan.specs import VideoOutput

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
H264_PROFILES = ("baseline", "main", "high")


@dataclass(frozen=True)
class VideoEncoder:
    name: str  # FFmpeg's encoder
    codec: str  # what players and demuxers call the stream
    decoder: str  # FFmpeg's decoder that reads it back here
    containers: tuple[str, ...]
    crf_range: tuple[int, int]
    presets: tuple[str, ...]  # what `preset` may be
    options: Callable[[RenditionPlan], dict[str, str]]
    codec_tag: str = ""  # the sample entry written in MP4 ("" = the muxer's default)


@dataclass(frozen=True)
class AudioEncoder:
    name: str
    codec: str
    sample_format: str  # what the encoder takes
    sample_rates: tuple[int, ...]  # () = any
    containers: tuple[str, ...]


def _kbps(bits: int) -> int:
    return max(1, round(bits / 1000))


def _x264(plan: RenditionPlan) -> dict[str, str]:
    return {
        "preset": plan.preset,
        "crf": str(plan.crf),
        "maxrate": str(plan.max_bitrate),
        "bufsize": str(plan.buffer_size),
        "profile": plan.h264_profile,
        "g": str(plan.keyint),
        "keyint_min": str(plan.min_keyint),
        # 0 turns scene-cut keyframes off, so keyframes fall on the same frames in every rung.
        "sc_threshold": "40" if plan.scene_cut else "0",
        "forced-idr": "1",  # a forced keyframe is an IDR (else a plain I picture: no segment starts there)
    }


def _x265(plan: RenditionPlan) -> dict[str, str]:
    params = {
        "keyint": plan.keyint,
        "min-keyint": plan.min_keyint,
        "scenecut": 40 if plan.scene_cut else 0,
        "open-gop": 0,  # every GOP closed: a segment starts decodable on its own
        "vbv-maxrate": _kbps(plan.max_bitrate),
        "vbv-bufsize": _kbps(plan.buffer_size),
        "log-level": "error",  # x265 otherwise writes its settings to stderr for every rung
    }
    return {"preset": plan.preset, "crf": str(plan.crf), "forced-idr": "1", "x265-params": _params(params)}


def _svtav1(plan: RenditionPlan) -> dict[str, str]:
    params = {
        "keyint": plan.keyint,
        "scd": 1 if plan.scene_cut else 0,  # scene-change detection would add keyframes
        "mbr": _kbps(plan.max_bitrate),  # capped CRF; SVT-AV1 takes no buffer size with CRF
    }
    return {"preset": plan.preset, "crf": str(plan.crf), "g": str(plan.keyint), "svtav1-params": _params(params)}


# VP9 presets: "0".."5" is libvpx's good-quality deadline at that cpu-used (higher numbers are
# clamped to 5 there); "realtime-5".."realtime-9" its realtime deadline, about 4x less CPU than
# good 5 at 1080p for about 2 dB less PSNR at the same bitrate (docs/transcoding-profiles.md).
VP9_PRESETS = (*(str(n) for n in range(6)), *(f"realtime-{n}" for n in range(5, 10)))


def _vp9(plan: RenditionPlan) -> dict[str, str]:
    # Tiles let row-mt spread one frame over the cores; a tile is at least 256 pixels wide.
    tile_columns = max(0, min(2, (plan.width // 256).bit_length() - 1))
    deadline, _, speed = plan.preset.rpartition("-")
    return {
        "crf": str(plan.crf),
        "b": str(plan.max_bitrate),  # with crf: constrained quality, b is the cap
        "deadline": deadline or "good",
        "cpu-used": speed,
        "row-mt": "1",
        "tile-columns": str(tile_columns),
        # No keyint_min: equal to g, libvpx puts a keyframe every g frames counted from the first, forced
        # ones or not (an extra keyframe a frame after a forced one). Without it each keyframe restarts the
        # count, and one-pass libvpx adds none at scene cuts (measured on hard cuts, good and realtime).
        "g": str(plan.keyint),
    }


def _params(values: dict[str, object]) -> str:
    return ":".join(f"{key}={value}" for key, value in values.items())


VIDEO_ENCODERS: dict[str, VideoEncoder] = {encoder.name: encoder for encoder in (
    VideoEncoder("libx264", "h264", "h264", ("mp4",), (0, 51), X264_PRESETS, _x264),
    VideoEncoder("libx265", "hevc", "hevc", ("mp4",), (0, 51), X264_PRESETS, _x265, codec_tag="hvc1"),
    VideoEncoder("libsvtav1", "av1", "libdav1d", ("mp4", "webm"), (1, 63), tuple(str(n) for n in range(14)),
                 _svtav1),
    VideoEncoder("libvpx-vp9", "vp9", "vp9", ("webm", "mp4"), (0, 63), VP9_PRESETS, _vp9),
)}

AUDIO_ENCODERS: dict[str, AudioEncoder] = {encoder.name: encoder for encoder in (
    AudioEncoder("aac", "aac", "fltp", (), ("mp4",)),
    # Opus runs at 48 kHz (or its narrow-band rates, which no profile wants).
    AudioEncoder("libopus", "opus", "flt", (48000,), ("webm", "mp4")),
)}


def video_encoder(name: str) -> VideoEncoder:
    try:
        return VIDEO_ENCODERS[name]
    except KeyError:
        raise ValueError(f"encoder {name!r} is not one we run; video encoders: "
                         f"{', '.join(VIDEO_ENCODERS)}") from None


def audio_encoder(name: str) -> AudioEncoder:
    try:
        return AUDIO_ENCODERS[name]
    except KeyError:
        raise ValueError(f"encoder {name!r} is not one we run; audio encoders: "
                         f"{', '.join(AUDIO_ENCODERS)}") from None


def rendition_problems(spec: VideoOutput) -> list[str]:
    """What is wrong with a video rung's encoder settings, in words naming the key; [] when nothing."""
    try:
        encoder = video_encoder(spec.encoder)
    except ValueError as error:
        return [f"encoder: {error}"]
    problems = []
    if spec.codec != encoder.codec:
        problems.append(f"codec: {spec.encoder} makes {encoder.codec}, not {spec.codec!r}")
    if spec.container not in encoder.containers:
        problems.append(f"container: {encoder.codec} goes in {' or '.join(encoder.containers)}, "
                        f"not {spec.container!r}")
    low, high = encoder.crf_range
    if not low <= spec.crf <= high:
        problems.append(f"crf: {spec.encoder} takes {low}..{high}, got {spec.crf}")
    if spec.preset not in encoder.presets:
        problems.append(f"preset: {spec.encoder} takes {', '.join(encoder.presets)}; got {spec.preset!r}")
    if spec.encoder == "libx264" and spec.h264_profile not in H264_PROFILES:
        problems.append(f"h264_profile: one of {', '.join(H264_PROFILES)}, got {spec.h264_profile!r}")
    elif spec.encoder == "libx264" and spec.pix_fmt != "yuv420p":
        # x264 refuses to open otherwise ("baseline profile doesn't support 4:4:4"), failing the whole pass.
        problems.append(f"pix_fmt: H.264 {', '.join(H264_PROFILES)} take yuv420p only, not {spec.pix_fmt!r}")
    return problems
