"""Progress of one transcode: percent, frames, fps, speed and ETA, from the
frames decoded so far. Pure arithmetic; the executor feeds it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TranscodeProgress:
    percent: float  # 0..100, never decreasing
    frames: int  # source frames decoded so far
    total_frames: int  # estimate from the plan; 0 when unknown
    fps: float  # frames processed per wall-clock second
    speed: float  # media seconds per wall-clock second (x realtime)
    eta_seconds: float
    phase: str = "encode"  # "analysis" and "probes" before it in a per-title job; percent is the phase's


class ProgressMeter:
    def __init__(self, total_frames: int, duration_seconds: float, *, interval_seconds: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._total = total_frames
        self._duration = duration_seconds
        self._interval = interval_seconds
        self._clock = clock
        self._started = clock()
        self._last_report = float("-inf")
        self._frames = 0
        self._media_seconds = 0.0
        self._percent = 0.0

    def frame_decoded(self, media_seconds: float) -> TranscodeProgress | None:
        """Counts one frame; returns a report when one is due (at most every interval)."""
        self._frames += 1
        self._media_seconds = max(self._media_seconds, media_seconds)
        now = self._clock()
        if now - self._last_report < self._interval:
            return None
        self._last_report = now
        return self._report(now, done=False)

    def finished(self) -> TranscodeProgress:
        return self._report(self._clock(), done=True)

    def _report(self, now: float, *, done: bool) -> TranscodeProgress:
        elapsed = max(now - self._started, 1e-6)
        if done:
            fraction = 1.0
        elif self._total > 0:
            fraction = self._frames / self._total
        elif self._duration > 0:
            fraction = self._media_seconds / self._duration
        else:
            fraction = 0.0
        # Estimates can overshoot (a probe that undercounts frames): hold below 100 until done.
        self._percent = max(self._percent, min(fraction * 100, 100.0 if done else 99.9))
        fps = self._frames / elapsed
        speed = self._media_seconds / elapsed
        if done:
            eta = 0.0
        elif self._total > 0 and fps > 0:
            eta = max(self._total - self._frames, 0) / fps
        elif self._duration > 0 and speed > 0:
            eta = max(self._duration - self._media_seconds, 0) / speed
        else:
            eta = 0.0
        return TranscodeProgress(percent=round(self._percent, 2), frames=self._frames, total_frames=self._total,
                                 fps=round(fps, 2), speed=round(speed, 3), eta_seconds=round(eta, 1))
