"""Decoding short stretches of a source ("windows") without decoding the rest:
seek to the keyframe before the window, decode from there, keep the window's
pictures. Per-title analysis and probe encodes read the source this way."""

from __future__ import annotations

from collections.abc import Iterator

import av
import av.error

from services.process_svc.execute.probe import ffmpeg_reason
from services.process_svc.failures import SourceUnreadable, clock


def window_frames(container: av.container.InputContainer, video: av.VideoStream, start_seconds: float,
                  seconds: float) -> Iterator[av.VideoFrame]:
    """The pictures shown from start_seconds (on the output's clock: the source's first picture is 0)
    for `seconds`, decoded from the keyframe before them."""
    origin = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
    begin, end = origin + start_seconds, origin + start_seconds + seconds
    try:
        container.seek(max(0, int(begin / video.time_base)), stream=video, backward=True, any_frame=False)
        codec = video.codec_context
        codec.flush_buffers()  # pictures held from before the seek are not the window's
        for packet in container.demux(video):
            for frame in packet.decode():
                if frame.time is None or frame.time < begin - 1e-6:
                    continue
                if frame.time >= end - 1e-6:
                    return
                yield frame
    except av.error.FFmpegError as error:
        raise SourceUnreadable(f"the source could not be decoded at {clock(start_seconds)}: "
                               f"{ffmpeg_reason(error)}; the file may be damaged, upload it again") from None
