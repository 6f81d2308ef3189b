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
                  seconds: float, *, from_keyframe: bool = False) -> Iterator[tuple[float, av.VideoFrame]]:
    """(time, picture) of the pictures shown from start_seconds for `seconds`, times on the output's
    clock (the source's first picture is 0), decoded from the keyframe before them. from_keyframe:
    the window starts at that keyframe instead, so nothing is decoded only to be thrown away (a
    window found this way starts exactly on a keyframe when asked for again)."""
    origin = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
    begin, end = origin + start_seconds, origin + start_seconds + seconds
    try:
        container.seek(max(0, int(begin / video.time_base)), stream=video, backward=True, any_frame=False)
        codec = video.codec_context
        codec.flush_buffers()  # pictures held from before the seek are not the window's
        for packet in container.demux(video):
            for frame in packet.decode():
                if frame.time is None:
                    continue
                if from_keyframe and frame.time < begin:
                    begin, end = frame.time, frame.time + seconds
                if frame.time < begin - 1e-6:
                    continue
                if frame.time >= end - 1e-6:
                    return
                yield frame.time - origin, frame
    except av.error.FFmpegError as error:
        raise SourceUnreadable(f"the source could not be decoded at {clock(start_seconds)}: "
                               f"{ffmpeg_reason(error)}; the file may be damaged, upload it again") from None
