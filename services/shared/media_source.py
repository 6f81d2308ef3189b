"""Opening an uploaded file with FFmpeg without letting it read anything else.

Several of FFmpeg's demuxers follow references to other files or URLs (HLS and
DASH playlists, concat lists, image2 patterns, lavfi's movie filter, SDP/RTP,
capture devices): an uploaded `.m3u8` naming another tenant's rendition would
otherwise be transcoded as if it were the upload. So every untrusted source is
opened here, with an explicit allow-list of self-contained container formats
(FFmpeg's `format_whitelist`) and only the `file` protocol. The upload's probe
and the transcode worker both use open_untrusted_media(), so what one accepts
the other can open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
from av.stream import Disposition

from services.shared.errors import InvalidArgument

# FFmpeg demuxer names (a demuxer named "mov,mp4,m4a,3gp,3g2,mj2" matches "mov").
# Only formats whose demuxer reads the one file it is given.
VIDEO_CONTAINERS = (
    "mov", "matroska", "avi", "flv", "live_flv", "mpegts", "mpeg", "mxf", "asf", "ogg", "nut", "dv", "gxf",
    "rm", "wtv", "nuv", "ivf", "obu", "gif", "apng", "yuv4mpegpipe",
)
# Raw elementary streams (a camera's or encoder's .h264/.hevc output).
ELEMENTARY_STREAMS = (
    "h264", "hevc", "vvc", "av1", "m4v", "mpegvideo", "vc1", "mjpeg", "dirac", "h261", "h263", "cavsvideo", "evc",
)
# Accepted so that an audio file or a still picture is refused with its own
# reason ("holds only audio", "a single still image") instead of a format error.
AUDIO_AND_STILLS = (
    "aac", "mp3", "wav", "w64", "flac", "ac3", "eac3", "dts", "aiff", "caf", "amr", "wv", "tta", "loas", "truehd",
    "mlp", "png_pipe", "jpeg_pipe", "bmp_pipe", "tiff_pipe", "webp_pipe", "gif_pipe",
)
ACCEPTED_FORMATS = VIDEO_CONTAINERS + ELEMENTARY_STREAMS + AUDIO_AND_STILLS

OPEN_OPTIONS = {"format_whitelist": ",".join(ACCEPTED_FORMATS), "protocol_whitelist": "file"}

REFERENCING_REASON = ("playlists and file lists are not accepted; upload the media file itself")
_SNIFF_BYTES = 4096
# Text formats that refer to other files, by how they start: (marker, what the user uploaded).
_REFERENCING_MARKERS = (
    (b"#EXTM3U", "an HLS playlist (.m3u8)"),
    (b"ffconcat", "an FFmpeg concat list"),
    (b"file ", "an FFmpeg concat list"),
    (b"<MPD", "a DASH manifest (.mpd)"),
    (b"v=0", "an SDP session description"),
    (b"[Reference]", "a reference file"),
)


class RefusedMediaFormat(InvalidArgument):
    """The file is in a format we never open: it refers to other files, or is not a media container we accept."""


def open_untrusted_media(path: Path, **open_kwargs: object) -> av.container.InputContainer:
    """Opens the file for reading with the format and protocol allow-lists.

    Raises RefusedMediaFormat when FFmpeg recognised the file as a format outside
    the list, or when the file starts like a playlist or file list (whatever its
    name: FFmpeg would not detect an .m3u8 named .mp4, but the reason is the
    same); other FFmpeg errors (unrecognised, damaged) propagate unchanged so
    callers keep their own reasons for those."""
    if (what := _referencing_kind(path)) is not None:
        raise RefusedMediaFormat(f"the file is {what}, which refers to other files: {REFERENCING_REASON}")
    try:
        return av.open(str(path), "r", container_options=dict(OPEN_OPTIONS), **open_kwargs)  # type: ignore[call-overload]
    except av.error.ArgumentError as error:  # EINVAL: detected, but "Format not on whitelist"
        raise RefusedMediaFormat(refusal_reason(path)) from error


def refusal_reason(path: Path) -> str:
    if (what := _referencing_kind(path)) is not None:
        return f"the file is {what}, which refers to other files: {REFERENCING_REASON}"
    return ("the file's format is not one we accept (" + REFERENCING_REASON + "; otherwise export it as MP4, MOV, "
            "MKV/WebM, AVI, MPEG-TS or MXF)")


def _referencing_kind(path: Path) -> str | None:
    """What kind of playlist or file list the file starts as, if it does."""
    with path.open("rb") as handle:
        start = handle.read(_SNIFF_BYTES).lstrip(b"\xef\xbb\xbf \t\r\n").upper()
    for marker, what in _REFERENCING_MARKERS:
        if start.startswith(marker.upper()):
            return what
    if start.startswith(b"<?XML") and b"<MPD" in start:
        return "a DASH manifest (.mpd)"
    return None


@dataclass(frozen=True)
class PacketTiming:
    """How long a video stream runs, found by reading its packets (no decoding)."""

    frames: int
    duration_seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.duration_seconds if self.duration_seconds > 0 else 0.0


def is_elementary_stream(container: av.container.InputContainer) -> bool:
    """A raw .h264/.hevc/... stream: no container around it, so no duration and no timestamps."""
    return any(name in ELEMENTARY_STREAMS for name in container.format.name.split(","))


def packet_timing(path: Path) -> PacketTiming:
    """For a file that states no length: a raw .h264/.hevc stream, or a WebM as a browser's
    MediaRecorder writes it (no duration, no index). Reads the main video stream's packets (headers
    only, nothing decoded). In a container the length is the span of the packets' timestamps, to the
    end of the last one; in a raw stream, which has none, each packet lasts its stated duration or one
    frame at the stream's guessed rate (the rate in an H.264/HEVC stream's own timing info)."""
    with open_untrusted_media(path) as container:
        video = main_video_stream(container) or container.streams.video[0]
        rate = float(video.guessed_rate or video.average_rate or 25)
        timestamped = not is_elementary_stream(container)
        frames, summed, first, end = 0, 0.0, math.inf, -math.inf
        for packet in container.demux(video):
            if not packet.size:
                continue
            frames += 1
            stated = packet.duration and packet.time_base and float(packet.duration * packet.time_base)
            lasts = stated if stated and stated > 0 else 1 / rate
            summed += lasts
            if timestamped and packet.pts is not None and packet.time_base:
                start = float(packet.pts * packet.time_base)
                first, end = min(first, start), max(end, start + lasts)
    return PacketTiming(frames=frames, duration_seconds=end - first if end > first else summed)


def main_video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The first video stream that is not cover art (an audio file's picture shows up as a one-picture
    "video" stream, marked attached_pic)."""
    return next((s for s in container.streams.video if not s.disposition & Disposition.attached_pic), None)


def codec_name(stream: av.stream.Stream) -> str:
    """The codec's name as people know it ("mp3", "av1", "vp9"), not the decoder
    FFmpeg picked for it ("mp3float", "libdav1d", "libvpx-vp9")."""
    context = stream.codec_context
    if context is None:
        return "unknown"
    return context.codec.canonical_name or context.name or "unknown"
