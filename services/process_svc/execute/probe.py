"""Reads the facts a plan needs from the source file itself (PyAV).

The upload's probe travels with the job, but the file is the authority: it
also tells the rotation and pixel aspect that the probe message lacks, and a
source that cannot be decoded fails here, before any encoder starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.filter

from services.process_svc.failures import SourceUnreadable
from services.process_svc.plan import SourceInfo
from services.shared.media_source import (
    RefusedMediaFormat,
    codec_name,
    is_elementary_stream,
    main_video_stream,
    open_untrusted_media,
    packet_timing,
)

# Give up looking for a first picture after this many packets: a source whose
# opening second does not decode is not one we can transcode.
_FIRST_FRAME_PACKET_LIMIT = 600
# Pictures idet looks at to tell fields from frames when the stream's flags may lie.
FIELD_SCAN_FRAMES = 40
_MIN_FIELD_VOTES = 10
# A jump in every stream's clock longer than this is a break in the recording, not content.
GAP_SECONDS = 30.0
_FIELD_ORDER_SHARE = 0.8
# FFmpeg's AVColorSpace values, as the scale filter's in_color_matrix names them.
_MATRIX_NAMES = {1: "bt709", 4: "fcc", 5: "bt470", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
_JPEG_RANGE = 2
_TRANSFER_NAMES = {1: "bt709", 16: "smpte2084", 18: "arib-std-b67"}


def open_source(path: Path) -> av.container.InputContainer:
    """Opens the source (format and protocol allow-listed: it never reads another
    file); raises SourceUnreadable unless it is a container with a video or audio stream."""
    try:
        container = open_untrusted_media(path)
    except RefusedMediaFormat as refused:
        raise SourceUnreadable(refused.message) from None
    except av.error.FFmpegError as error:
        raise SourceUnreadable(f"the source could not be opened as a video file: {ffmpeg_reason(error)}") from None
    if not container.streams.video and not container.streams.audio:
        container.close()
        raise SourceUnreadable("the source has no video or audio stream; upload a video file")
    return container


def probe_source(path: Path) -> SourceInfo:
    """Raises SourceUnreadable when the file is not a decodable video. A file of sound alone (cover art
    aside) has no picture: width and height 0, for the profiles that make audio outputs."""
    with open_source(path) as container:
        video = main_video_stream(container)
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None:
            assert audio is not None  # open_source saw a video or an audio stream
            return _sound_only(container, audio)
        first = _first_frame(container, video)
        interlaced = bool(first.interlaced_frame) or _looks_interlaced(container, video, first)
        rate = video.average_rate or video.guessed_rate or 0
        duration = _duration(container, video)
        frames = int(video.frames or 0)
        if duration <= 0:  # raw .h264/.hevc, a browser's MediaRecorder WebM: nothing states the length
            timing = packet_timing(path)
            duration, frames = timing.duration_seconds, timing.frames
            if is_elementary_stream(container) or not rate:
                rate = Fraction(timing.fps).limit_denominator(1001)
        gaps = timeline_gaps(path)
        duration = max(duration - sum(end - start for start, end in gaps), 0.0)
        return SourceInfo(
            width=first.width,
            height=first.height,
            fps=Fraction(rate),
            duration_seconds=duration,
            has_audio=audio is not None,
            audio_channels=audio.codec_context.channels if audio else 0,
            audio_sample_rate=audio.codec_context.sample_rate if audio else 0,
            rotation=int(first.rotation or 0),
            sample_aspect_ratio=video.sample_aspect_ratio or Fraction(1),
            video_frames=frames,
            video_codec=codec_name(video),
            audio_codec=codec_name(audio) if audio else "",
            interlaced=interlaced,
            full_range=int(first.color_range) == _JPEG_RANGE or first.format.name.startswith("yuvj"),
            color_matrix=_MATRIX_NAMES.get(int(first.colorspace), ""),
            timeline_gaps=gaps,
            color_transfer=_TRANSFER_NAMES.get(int(first.color_trc), ""),
            extra_audio_streams=max(len(container.streams.audio) - 1, 0),
            subtitle_streams=tuple(_describe(s) for s in container.streams.subtitles),
        )


def _sound_only(container: av.container.InputContainer, audio: av.AudioStream) -> SourceInfo:
    return SourceInfo(
        width=0, height=0, fps=Fraction(0), duration_seconds=_duration(container, audio), has_audio=True,
        audio_channels=audio.codec_context.channels, audio_sample_rate=audio.codec_context.sample_rate,
        audio_codec=codec_name(audio), extra_audio_streams=max(len(container.streams.audio) - 1, 0),
        subtitle_streams=tuple(_describe(s) for s in container.streams.subtitles))


def _describe(stream: av.stream.Stream) -> str:
    codec = codec_name(stream)
    language = stream.metadata.get("language", "")
    return f"{stream.index} ({codec}{', ' + language if language else ''})"


def ffmpeg_reason(error: Exception) -> str:
    """FFmpeg's own words for an error, without the file path (a temp path means nothing to a user)."""
    return str(getattr(error, "strerror", None) or error)


def _first_frame(container: av.container.InputContainer, video: av.VideoStream) -> av.VideoFrame:
    try:
        for count, packet in enumerate(container.demux(video)):
            for frame in packet.decode():
                return frame
            if count >= _FIRST_FRAME_PACKET_LIMIT:
                break
    except av.error.FFmpegError as error:
        raise SourceUnreadable(f"the source could not be decoded at 00:00.0: {ffmpeg_reason(error)}") from None
    raise SourceUnreadable("no picture in the source could be decoded; is the file complete?")


def timeline_gaps(path: Path) -> tuple[tuple[float, float], ...]:
    """Where the source's clock jumps by more than GAP_SECONDS in every stream at once (video, and the
    first audio stream when there is one). Reads packet headers only. A long still picture over running
    audio is no gap: the audio covers it."""
    with open_untrusted_media(path) as container:
        streams = [main_video_stream(container) or container.streams.video[0], *container.streams.audio[:1]]
        indexes = [s.index for s in streams]
        last_end: dict[int, float] = {}
        jumps: dict[int, list[tuple[float, float]]] = {index: [] for index in indexes}
        for packet in container.demux(streams):
            if packet.pts is None or not packet.time_base or not packet.size:
                continue
            start = float(packet.pts * packet.time_base)
            end = start + float((packet.duration or 0) * packet.time_base)
            previous = last_end.get(packet.stream.index)
            if previous is not None and start - previous > GAP_SECONDS:
                jumps[packet.stream.index].append((previous, start))
            last_end[packet.stream.index] = max(end, previous or end)
    common = jumps[indexes[0]]
    for other in indexes[1:]:
        common = [(max(a, c), min(b, d)) for a, b in common for c, d in jumps[other] if max(a, c) < min(b, d)]
    return tuple(common)


def _looks_interlaced(container: av.container.InputContainer, video: av.VideoStream, first: av.VideoFrame) -> bool:
    """Runs idet over the opening pictures: for sources whose frames say "progressive" but hold two
    fields each (combing), as many capture and broadcast files do."""
    frames = [first]
    try:
        for packet in container.demux(video):
            frames.extend(packet.decode())
            if len(frames) >= FIELD_SCAN_FRAMES:
                break
    except av.error.FFmpegError:
        pass  # the opening pictures decode (first frame above); judge on what there is
    shape = (first.width, first.height, first.format.name)
    votes = field_votes(video, (f for f in frames[:FIELD_SCAN_FRAMES] if (f.width, f.height, f.format.name) == shape))
    # Real interlaced video has one field order throughout; idet's guesses on progressive pictures
    # (smooth gradients, fast pans) scatter over tff, bff and progressive.
    dominant = max(votes["tff"], votes["bff"])
    return dominant >= _MIN_FIELD_VOTES and dominant >= _FIELD_ORDER_SHARE * sum(votes.values())


def field_votes(video: av.VideoStream, frames: Iterable[av.VideoFrame]) -> dict[str, float]:
    """FFmpeg's idet verdicts over the frames: how many looked top-field-first, bottom-field-first
    and progressive (frames it could not decide on are not counted)."""
    graph = av.filter.Graph()
    source = graph.add_buffer(template=video)
    detector = graph.add("idet")
    sink = graph.add("buffersink")
    source.link_to(detector)
    detector.link_to(sink)
    graph.configure()
    last: dict[str, str] = {}
    for frame in frames:
        graph.push(frame)
        while True:
            try:
                last = dict(sink.pull().metadata)
            except (av.error.BlockingIOError, av.error.EOFError):
                break
    return {kind: float(last.get(f"lavfi.idet.multiple.{kind}", 0)) for kind in ("tff", "bff", "progressive")}


def _duration(container: av.container.InputContainer, stream: av.VideoStream | av.AudioStream) -> float:
    if container.duration:
        return container.duration / av.time_base
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0
