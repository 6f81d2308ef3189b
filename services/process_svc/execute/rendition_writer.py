"""One rendition's output file: its encoder (H.264, HEVC, AV1 or VP9: the
options come from plan/encoders.py) and muxer (MP4 or WebM), on a thread of
their own.

The decode-and-scale loop hands each rung its frames (and audio packets)
through a short queue; the rung's thread encodes and muxes them. Without it,
the loop waits on each x264 call in turn and the cores idle while it decodes
and scales; with it, the rungs' encoders and the loop overlap. Only this
thread touches the container, so no locks are needed.

Keyframes are forced by time (KeyframeClock), as ffmpeg's
`-force_key_frames "expr:gte(t,n_forced*2)"` does: every rung sees the same
frames at the same times, so their keyframes fall on the same frames, and a
segment of a whole number of GOPs lasts its length at any frame rate,
constant or variable.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

from services.process_svc.execute.packets import copy_packet
from services.process_svc.execute.quality import QualityMeter, RenditionQuality
from services.process_svc.plan import RenditionPlan

_FINISH = object()
# faststart puts the MP4 index up front, so players start before the whole file arrives
# (WebM's muxer writes its cues at the end; players seek with them once they have them).
_CONTAINER_OPTIONS = {"mp4": {"movflags": "+faststart"}}
# SVT-AV1 logs its whole configuration to stderr for every encoder it opens, unless told otherwise.
os.environ.setdefault("SVT_LOG", "1")  # errors only


class KeyframeClock:
    """Which frames start a GOP: the first one, then the first at or past each multiple of `seconds` after it.

    Times count from the rung's first picture, as FFmpeg's segmenter (adaptive/segmenter.py) counts its
    segment boundaries, and in whole microseconds, the unit it reads the segment length in: a segment of
    a whole number of GOPs is then cut at a forced keyframe, never a frame before or after it."""

    def __init__(self, seconds: float) -> None:
        self.step = Fraction(round(seconds * 1_000_000), 1_000_000)
        self._origin: Fraction | None = None
        self._due = Fraction(0)

    def due(self, frame: av.VideoFrame) -> bool:
        if frame.pts is None or not frame.time_base or self.step <= 0:
            return False  # no clock to go by: the encoder's GOP limit places keyframes
        time = frame.pts * Fraction(frame.time_base)
        if self._origin is None:
            self._origin = time
        elapsed = time - self._origin
        if elapsed < self._due:
            return False
        # The next multiple past this frame: after a jump in the clock, one keyframe, not one per missed GOP.
        self._due = (math.floor(elapsed / self.step) + 1) * self.step
        return True


class RenditionWriter:
    def __init__(self, plan: RenditionPlan, path: Path, time_base: Fraction, *, queue_depth: int = 4,
                 quality_sample_every: int = 0, threads: int = 0) -> None:
        """quality_sample_every: compare every Nth frame with what was encoded (quality.py); 0: no report.
        threads: the encoder's threads (thread_budget.py); 0: as many as the encoder picks."""
        self.plan = plan
        self.path = path
        self.container = av.open(str(path), "w", format=plan.container,
                                 container_options=_CONTAINER_OPTIONS.get(plan.container, {}))
        stream = self.container.add_stream(plan.encoder, rate=plan.fps)
        context = stream.codec_context
        if plan.codec_tag:
            context.codec_tag = plan.codec_tag
        context.width, context.height = plan.width, plan.height
        context.pix_fmt = plan.pix_fmt
        # The scaler made every rendition limited-range BT.709 (plan/ladder.py); say so in the stream.
        context.color_range = ColorRange.MPEG
        context.colorspace = Colorspace.ITU709
        context.color_primaries = ColorPrimaries.BT709
        context.color_trc = ColorTrc.BT709
        context.time_base = time_base  # the source's: timestamps pass through unchanged
        # Frame threads: faster and smaller files than PyAV's default slice threads (FACTS.md).
        context.thread_type = "AUTO"
        if threads:
            context.thread_count = threads
        context.options = plan.encoder_options()
        self._video = stream
        # With scene cuts the encoder places every keyframe (at cuts, and at its GOP limit).
        self._keyframes = KeyframeClock(0.0 if plan.scene_cut else plan.keyint_seconds)
        self._quality = (QualityMeter(plan.decoder, context, sample_every=quality_sample_every)
                         if quality_sample_every else None)
        self.audio_stream: av.AudioStream | None = None  # set by SharedAudioTrack before start()
        # Called on this writer's thread with (rung name, a copy of each encoded video packet); set before start().
        self.packet_listeners: list[Callable[[str, av.Packet], None]] = []
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"rendition-{plan.name}", daemon=True)

    @property
    def video_stream(self) -> av.VideoStream:
        return self._video

    def open(self) -> None:
        """Writes the header, which opens the encoders: their codec parameters are known from then on."""
        self.container.start_encoding()

    def start(self) -> None:
        """Once every stream is added: from now on only the writer's thread touches the container."""
        self._thread.start()

    def encode(self, frame: av.VideoFrame | None) -> None:
        """Queues a scaled frame; None flushes the encoder at the end of the stream."""
        self._put(frame)

    def mux_audio(self, packet: av.Packet) -> None:
        """Queues an encoded audio packet this writer alone owns."""
        self._put(packet)

    def finish(self) -> None:
        """Waits until everything queued is written; the file is complete once close() returns."""
        self._stop()
        if self._error is not None:
            raise self._error

    def quality(self) -> RenditionQuality | None:
        """The rendition's quality report, once finish() returned; None when not measured."""
        return self._quality.result() if self._quality is not None else None

    def close(self) -> None:
        self._stop()
        self.container.close()

    def _put(self, item: object) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_FINISH)
            self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _FINISH:
            if self._error is not None:
                continue  # keep draining, so the producer never blocks on a dead writer
            try:
                if isinstance(item, av.Packet):
                    item.stream = self.audio_stream
                    self.container.mux(item)
                else:
                    self._encode(item)  # type: ignore[arg-type]
            except BaseException as error:  # handed to the producer on its next call
                self._error = error

    def _encode(self, frame: av.VideoFrame | None) -> None:
        if frame is not None:
            # Set here, on this thread (the frame is shared, read-only, with stills and other listeners): a
            # keyframe when one is due by time, else none (a decoded frame keeps the source's picture type,
            # which the encoder would copy).
            frame.pict_type = PictureType.I if self._keyframes.due(frame) else PictureType.NONE
            if self._quality is not None:
                self._quality.reference(frame)
        packets = self._video.encode(frame)
        if self._quality is not None:
            self._quality.encoded(packets)  # before the muxer takes them
            if frame is None:
                self._quality.flush()
        for listener in self.packet_listeners:
            for packet in packets:
                listener(self.plan.name, copy_packet(packet))
        self.container.mux(packets)
