"""Per-title probe encodes: each rung of a plan encoded over a few short
windows of the source at a few CRFs, with the rung's own encoder settings
(or a faster preset), measured with the quality report's own meter.

Each window goes through the ladder's filter graph once; every (rung, CRF,
preset) gets a fresh encoder per window, so each window starts on a keyframe
as a GOP of the rendition does, and window boundaries are never encoded as
cuts. Nothing is muxed: the packets are counted and decoded back for the
meter. Encoders run on threads of their own (one lane per rung and setting),
as the executor's rung writers do.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

from services.process_svc.execute.ladder_graph import LadderGraph
from services.process_svc.execute.probe import open_source
from services.process_svc.execute.quality import QualityMeter, RenditionQuality
from services.process_svc.execute.windows import window_frames
from services.process_svc.failures import SourceUnreadable, TranscodeCancelled
from services.process_svc.plan import EncodePlan, RenditionPlan
from services.process_svc.plan.per_title import ProbePoint

# Every 2nd probe frame is compared: the windows are short, their figures must be steady.
PROBE_SAMPLE_EVERY = 2
# A window's last pictures are encoded without the future the encoder's lookahead (and x264's
# macroblock tree) sees in a whole rendition, so they come out worse than they would there: they
# are encoded and counted in the bytes, but not compared.
UNMEASURED_TAIL_FRAMES = 10


@dataclass(frozen=True)
class ProbeSetting:
    crf: int
    preset: str


def probe_encode(plan: EncodePlan, source_path: Path, windows: Sequence[tuple[float, float]],
                 settings: dict[str, Sequence[ProbeSetting]], *, sample_every: int = PROBE_SAMPLE_EVERY,
                 cancel: threading.Event | None = None) -> dict[str, dict[ProbeSetting, ProbePoint]]:
    """For each rung named in `settings`, a probe point per setting, pooled over the windows."""
    rungs = {r.name: r for r in plan.renditions}
    lanes: list[_Lane] = []
    try:
        with open_source(source_path) as container:
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            lanes = [_Lane(rungs[name], setting, video.time_base, sample_every)
                     for name, wanted in settings.items() for setting in wanted]
            by_rung = [[lane for lane in lanes if lane.rung.name == r.name] for r in plan.renditions]
            for lane in lanes:
                lane.start()
            for start, seconds in windows:
                _window(plan, container, video, start, seconds, by_rung, lanes, cancel)
    finally:
        for lane in lanes:
            lane.stop()
    for lane in lanes:
        lane.raise_error()
    results: dict[str, dict[ProbeSetting, ProbePoint]] = {}
    for lane in lanes:
        results.setdefault(lane.rung.name, {})[lane.setting] = lane.point()
    return results


def _window(plan: EncodePlan, container: av.container.InputContainer, video: av.VideoStream, start: float,
            seconds: float, by_rung: list[list[_Lane]], lanes: list[_Lane], cancel: threading.Event | None) -> None:
    graph: LadderGraph | None = None
    fps = float(plan.renditions[0].fps) if plan.renditions and plan.renditions[0].fps else 30.0
    expected = round(seconds * fps)
    measured = max(expected - UNMEASURED_TAIL_FRAMES, (expected + 1) // 2)
    for lane in lanes:
        lane.send((_NEW_WINDOW, measured))
    for _, frame in window_frames(container, video, start, seconds):
        if cancel is not None and cancel.is_set():
            raise TranscodeCancelled()
        if graph is None:
            graph = LadderGraph(plan, frame, video.time_base)
        elif not graph.takes(frame):
            raise SourceUnreadable("the picture changes size inside a probe window; per-title needs a steady picture")
        graph.push(frame)
        _drain(graph, by_rung)
    if graph is not None:
        graph.push(None)
        _drain(graph, by_rung)
    for lane in lanes:
        lane.send(None)  # flush this window's encoder


def _drain(graph: LadderGraph, by_rung: list[list[_Lane]]) -> None:
    for rung, rung_lanes in enumerate(by_rung):
        for scaled in graph.pull(rung):
            scaled.pict_type = PictureType.NONE
            for lane in rung_lanes:
                lane.send(scaled)


_NEW_WINDOW = object()
_STOP = object()


class _Lane:
    """One rung at one setting: an encoder per window, its bytes and quality pooled."""

    def __init__(self, rung: RenditionPlan, setting: ProbeSetting, time_base: Fraction, sample_every: int) -> None:
        self.rung, self.setting = rung, setting
        self._time_base = time_base  # the source's: the graph's frames keep their timestamps
        self._sample_every = sample_every
        self._queue: queue.Queue[object] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name=f"probe-{rung.name}-{setting.crf}", daemon=True)
        self._error: BaseException | None = None
        self._encoder: av.VideoCodecContext | None = None
        self._meter: QualityMeter | None = None
        self.bytes = 0
        self.frames = 0
        self._qualities: list[RenditionQuality] = []

    def start(self) -> None:
        self._thread.start()

    def send(self, item: object) -> None:
        if self._error is None:
            self._queue.put(item)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def point(self) -> ProbePoint:
        seconds = self.frames / float(self.rung.fps) if self.frames else 1.0
        frames = sum(q.frames_compared for q in self._qualities)
        if not frames:
            raise SourceUnreadable("no picture of the probe windows could be decoded")
        return ProbePoint(crf=self.setting.crf, bitrate=self.bytes * 8 / seconds,
                          psnr_db=_pooled([(q.psnr_db, q.frames_compared) for q in self._qualities]),
                          xpsnr_db=_pooled([(q.xpsnr_db, q.frames_compared) for q in self._qualities]))

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            if self._error is not None:
                continue
            try:
                if isinstance(item, tuple) and item[0] is _NEW_WINDOW:
                    self._open(item[1])
                else:
                    self._encode(item)  # type: ignore[arg-type]
            except BaseException as error:
                self._error = error

    def _open(self, measured_frames: int) -> None:
        rung = replace(self.rung, crf=self.setting.crf, preset=self.setting.preset)
        encoder = av.CodecContext.create(rung.encoder, "w")
        encoder.width, encoder.height, encoder.pix_fmt = rung.width, rung.height, rung.pix_fmt
        encoder.time_base = self._time_base
        encoder.framerate = rung.fps
        encoder.thread_type = "AUTO"
        encoder.options = rung.encoder_options()
        self._encoder = encoder
        self._meter = QualityMeter(rung.decoder, encoder, sample_every=self._sample_every, ssim=False)
        self._window_frames = 0
        self._measured_frames = measured_frames

    def _encode(self, frame: av.VideoFrame | None) -> None:
        assert self._encoder is not None and self._meter is not None
        if frame is not None:  # shared with the other lanes of the rung: read, never changed
            self.frames += 1
            self._window_frames += 1
            if self._window_frames <= self._measured_frames:
                self._meter.reference(frame)
        packets = self._encoder.encode(frame)
        self.bytes += sum(packet.size for packet in packets)
        self._meter.encoded(packets)
        if frame is None:
            self._meter.flush()
            quality = self._meter.result()
            if quality is not None:
                self._qualities.append(quality)
            self._encoder = None


def _pooled(values: list[tuple[float, int]]) -> float:
    """dB from the mean distortion over every compared frame, as the quality report pools."""
    total = sum(n for _, n in values)
    distortion = sum(n * 10 ** (-db / 10) for db, n in values) / total
    return round(-10 * math.log10(distortion), 3) if distortion > 0 else 100.0
