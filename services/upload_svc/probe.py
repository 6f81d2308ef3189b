"""What is in an uploaded file, found with PyAV before it is accepted: the
container, its streams, and proof that the video decodes (for a file of sound
alone, an MP3 or a podcast's M4A: that the sound decodes; its probe has no
picture, width and height 0, and only profiles that make audio outputs take
it). A file that cannot be transcoded raises UnusableMedia with a reason a
person can act on.

probe_file() blocks (it reads and decodes); probe() runs it in a worker thread."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import av.error

from services.shared.errors import InvalidArgument
from services.shared.media_limits import MIN_PICTURE_SIDE
from services.shared.media_source import (
    RefusedMediaFormat,
    codec_name,
    main_video_stream,
    open_untrusted_media,
    packet_timing,
)
from services.upload_svc.mp4_boxes import Mp4Layout, read_mp4_layout
from vtc.v1 import common_pb2

# Packets read while looking for the first decodable frame: a stream that
# yields no picture within this many packets is not one we can transcode.
FIRST_FRAME_PACKET_BUDGET = 300
_TEXT_SAMPLE_BYTES = 4096


class UnusableMedia(InvalidArgument):
    """The file is not a video we can transcode; the message says why."""


async def probe(path: Path) -> common_pb2.MediaProbe:
    return await asyncio.to_thread(probe_file, path)


def probe_file(path: Path) -> common_pb2.MediaProbe:
    if path.stat().st_size == 0:
        raise UnusableMedia("the file is empty (0 bytes): there is nothing to transcode")
    layout = read_mp4_layout(path)
    if layout is not None and layout.truncated:
        raise UnusableMedia(_truncation_reason(layout))
    try:
        container = open_untrusted_media(path, metadata_errors="replace")
    except RefusedMediaFormat as refused:
        raise UnusableMedia(refused.message) from None
    except av.error.FFmpegError as error:
        raise UnusableMedia(_unreadable_reason(path, layout, error)) from error
    with container:
        video = main_video_stream(container)
        if video is None:
            return _audio_probe(container)
        _require_decodable_frame(container, video)
        duration = _duration_seconds(container, video)
        timing = packet_timing(path) if duration <= 0 else None  # a raw stream; a browser's recording
        if timing is not None and timing.frames > 1:
            duration = timing.duration_seconds
        if duration <= 0:
            raise UnusableMedia("the video has zero duration (a single still image?): upload a moving video")
        _require_picture_size(video)
        _require_complete(container, video, duration)
        media = _media_probe(container, video, duration)
        if timing is not None:
            media.video_frames, media.fps = timing.frames, timing.fps
            next(s for s in media.streams if s.index == video.index).frames = timing.frames
        return media


def _truncation_reason(layout: Mp4Layout) -> str:
    return (f"the file is truncated: it ends after {layout.file_size} bytes, inside its '{layout.cut_box}' box, "
            f"which runs to byte {layout.cut_box_end}; upload the complete file")


def _unreadable_reason(path: Path, layout: Mp4Layout | None, error: av.error.FFmpegError) -> str:
    if layout is not None and not layout.has_index:
        return ("the MP4/MOV file has no index (its 'moov' box is missing): it is truncated or the recording was "
                "never finished; upload the complete file")
    if layout is not None:
        return f"the MP4/MOV file is damaged and cannot be read ({error.strerror}); export it again and re-upload"
    if _looks_like_text(path):
        return "not a video file: it contains text, not audio or video"
    return f"not a video file: its format is not one we recognise ({error.strerror})"


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as handle:
        sample = handle.read(_TEXT_SAMPLE_BYTES)
    if not sample or b"\x00" in sample:
        return False
    text = sample.decode("utf-8", errors="replace")
    unreadable = sum(1 for c in text if c == "\ufffd" or (not c.isprintable() and c not in "\r\n\t\f"))
    return unreadable <= len(text) // 50  # allows a multi-byte character cut by the sample's end


def _audio_probe(container: av.container.InputContainer) -> common_pb2.MediaProbe:
    """A file of sound alone (cover art aside): its first audio stream must decode and last."""
    if not container.streams.audio:
        raise UnusableMedia("the file has no video or audio stream: upload a file with video in it")
    audio = container.streams.audio[0]
    codec = codec_name(audio)
    if (said := _first_frame_failure(container, audio)) is not None:
        raise UnusableMedia(f"the audio stream ({codec}) has no decodable frame{_decoder_said(said)}: the file is "
                            "damaged or truncated; upload the complete file")
    duration = _duration_seconds(container, audio)
    if duration <= 0:
        raise UnusableMedia("the file states no length and holds no timed sound: export it again as M4A, MP3 or "
                            "FLAC")
    _require_complete(container, audio, duration)
    return common_pb2.MediaProbe(
        container=container.format.name, duration_seconds=duration, bit_rate=container.bit_rate or 0,
        streams=[_stream_info(s) for s in container.streams], audio_codec=codec, has_audio=True)


def _require_decodable_frame(container: av.container.InputContainer, video: av.VideoStream) -> None:
    """Decodes until the first picture comes out, or fails with what the decoder said."""
    codec = codec_name(video)
    try:
        video.codec_context.open(strict=False)
    except av.error.FFmpegError as error:
        raise UnusableMedia(f"the video stream ({codec}) cannot be decoded: its decoder refuses the stream's "
                            f"parameters ({error.strerror}); export the video again in a common format") from error
    if (said := _first_frame_failure(container, video)) is None:
        return
    raise UnusableMedia(f"the video stream ({codec}) has no decodable frame{_decoder_said(said)}: "
                        "the file is damaged or truncated; upload the complete file")


def _first_frame_failure(container: av.container.InputContainer,
                         stream: av.VideoStream | av.AudioStream) -> str | None:
    """None once the stream's first packets give a frame; else what its decoder said last ("": nothing)."""
    last_error = ""
    for packets, packet in enumerate(container.demux(stream), start=1):
        try:
            if stream.decode(packet):
                return None
        except av.error.FFmpegError as error:
            # Streams cut mid-GOP start with packets that cannot decode; a later keyframe may.
            last_error = error.strerror or str(error)
        if packets >= FIRST_FRAME_PACKET_BUDGET:
            break
    return last_error


def _decoder_said(said: str) -> str:
    return f" (the decoder said: {said})" if said else ""


def _require_complete(container: av.container.InputContainer, stream: av.VideoStream | av.AudioStream,
                      duration: float) -> None:
    """A file whose header states a length its pictures do not reach was cut short (an interrupted copy
    or recording). Looks at the last pictures only: one seek to the stated end, to the packet there
    rather than back to a keyframe (which can be most of the file away; only timestamps are read here),
    and back to the keyframe where the format cannot seek to a packet."""
    if not container.duration or duration <= 1.0:
        return
    # The stated length is the longest stream's: pictures that stop early under sound that runs on
    # (a title card over narration) are complete, so the sound counts too.
    streams = [stream, *(s for s in container.streams.audio if s is not stream)]
    times: list[float] = []
    for any_frame in (True, False):
        try:
            container.seek(container.duration, backward=True, any_frame=any_frame)
            times = [float(p.pts * p.time_base) for p in container.demux(streams) if p.pts is not None and p.time_base]
        except av.error.FFmpegError:
            continue  # not seekable this way; not at all: the transcode's own check still applies
        if times:
            break
    start = container.start_time / av.time_base if container.start_time else 0.0
    last = max(times, default=0.0) - start
    if times and last < duration * 0.9 - 0.5:
        what = "pictures stop" if stream.type == "video" else "sound stops"
        raise UnusableMedia(f"the file is truncated: its {what} at {_clock(last)} though it says it lasts "
                            f"{_clock(duration)}; upload the complete file")


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes:02d}:{rest:04.1f}"


def _require_picture_size(video: av.VideoStream) -> None:
    width, height = video.codec_context.width, video.codec_context.height
    if min(width, height) < MIN_PICTURE_SIDE:
        raise UnusableMedia(f"the picture is {width}x{height} pixels; the smallest we transcode is "
                            f"{MIN_PICTURE_SIDE}x{MIN_PICTURE_SIDE}: upload the video at its real size")


def _duration_seconds(container: av.container.InputContainer, stream: av.VideoStream | av.AudioStream) -> float:
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


def _rate(stream: av.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else 0.0


def _stream_info(stream: av.stream.Stream) -> common_pb2.StreamInfo:
    context = stream.codec_context
    info = common_pb2.StreamInfo(index=stream.index, kind=stream.type, frames=max(stream.frames, 0))
    if context is None:
        return info
    info.codec = codec_name(stream)
    info.bit_rate = context.bit_rate or 0
    if stream.type == "video":
        info.width, info.height = context.width, context.height
        info.fps = _rate(stream)  # type: ignore[arg-type]
    elif stream.type == "audio":
        info.sample_rate = context.sample_rate or 0
        info.channels = context.channels or 0
    return info


def _media_probe(container: av.container.InputContainer, video: av.VideoStream,
                 duration: float) -> common_pb2.MediaProbe:
    audio = next(iter(container.streams.audio), None)
    return common_pb2.MediaProbe(
        container=container.format.name,
        duration_seconds=duration,
        bit_rate=container.bit_rate or 0,
        streams=[_stream_info(s) for s in container.streams],
        width=video.codec_context.width,
        height=video.codec_context.height,
        fps=_rate(video),
        video_codec=codec_name(video),
        audio_codec=codec_name(audio) if audio is not None else "",
        has_audio=audio is not None,
        video_frames=max(video.frames, 0),
    )
