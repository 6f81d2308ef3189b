"""Per-title analysis: how hard the source is to encode, from short windows
spread over it. Each window is decoded, scaled down (SI/TI rank pictures the
same at a fraction of the cost) and run through FFmpeg's `siti` (ITU-T P.910
spatial and temporal information) and `scdet` (scene changes)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import av
import av.error
import av.filter

from services.process_svc.execute.probe import open_source
from services.process_svc.execute.windows import window_frames
from services.process_svc.failures import TranscodeCancelled
from services.process_svc.plan.per_title import SourceAnalysis, WindowAnalysis

ANALYSIS_HEIGHT = 360
# scdet's score (0..100, the change between two pictures) that counts as a cut.
SCENE_THRESHOLD = 10.0


def analyse_source(path: Path, windows: Sequence[tuple[float, float]], *, height: int = ANALYSIS_HEIGHT,
                   cancel: threading.Event | None = None) -> SourceAnalysis:
    """SI, TI and scene changes of each (start, seconds) window of the source at `path`."""
    measured = []
    size = (0, 0)
    with open_source(path) as container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        for start, seconds in windows:
            if cancel is not None and cancel.is_set():
                raise TranscodeCancelled()
            window, size = _window(container, video, start, seconds, height)
            if window is not None:
                measured.append(window)
    return SourceAnalysis(windows=tuple(measured), width=size[0], height=size[1])


def _window(container: av.container.InputContainer, video: av.VideoStream, start: float, seconds: float,
            height: int) -> tuple[WindowAnalysis | None, tuple[int, int]]:
    graph: _SitiGraph | None = None
    for time, frame in window_frames(container, video, start, seconds, from_keyframe=True):
        if graph is None:
            start = round(time, 3)  # the keyframe the window starts on
            graph = _SitiGraph(frame, video, height)
        graph.push(frame)
    if graph is None:
        return None, (0, 0)
    graph.push(None)
    stats = graph.stats
    if not stats.frames:
        return None, graph.size
    return WindowAnalysis(start_seconds=start, seconds=seconds, frames=stats.frames,
                          spatial=round(stats.si / stats.frames, 2),
                          temporal=round(stats.ti / max(stats.frames - 1, 1), 2),
                          scene_changes=stats.cuts), graph.size


class _Stats:
    def __init__(self) -> None:
        self.frames = 0
        self.si = 0.0
        self.ti = 0.0
        self.cuts = 0


class _SitiGraph:
    def __init__(self, first: av.VideoFrame, video: av.VideoStream, height: int) -> None:
        scaled_height = min(height, first.height) // 2 * 2
        scaled_width = max(2, round(first.width * scaled_height / first.height / 2) * 2)
        self.size = (scaled_width, scaled_height)
        self._graph = av.filter.Graph()
        head = self._graph.add("buffer", video_size=f"{first.width}x{first.height}", pix_fmt=first.format.name,
                               time_base=str(video.time_base), pixel_aspect="1/1")
        self._source = head
        for name, args in (("scale", f"{scaled_width}:{scaled_height}:flags=bilinear"), ("format", "yuv420p"),
                           ("siti", None), ("scdet", f"threshold={SCENE_THRESHOLD}")):
            node = self._graph.add(name, args)
            head.link_to(node)
            head = node
        self._sink = self._graph.add("buffersink")
        head.link_to(self._sink)
        self._graph.configure()
        self.stats = _Stats()

    def push(self, frame: av.VideoFrame | None) -> None:
        self._source.push(frame)
        while True:
            try:
                out = self._sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            values = out.metadata
            self.stats.frames += 1
            self.stats.si += float(values.get("lavfi.siti.si", 0.0))
            self.stats.ti += float(values.get("lavfi.siti.ti", 0.0))
            if "lavfi.scd.time" in values:
                self.stats.cuts += 1
