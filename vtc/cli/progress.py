"""Progress bars on stderr: bytes moved (hashing, upload, download), then
transcoding percent with fps, speed and ETA. Off with --json."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from vtc.cli.output import human_duration, phase_name, status_name
from vtc.v1 import common_pb2


class ByteCounter(Protocol):
    def __call__(self, moved: int) -> None: ...


def _stderr() -> Console:
    return Console(stderr=True)


@contextmanager
def byte_progress(description: str, total: int | None, *, enabled: bool) -> Iterator[ByteCounter]:
    """Yields a function to call with each count of bytes moved."""
    if not enabled:
        yield lambda moved: None
        return
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), DownloadColumn(binary_units=True),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=_stderr()) as progress:
        task = progress.add_task(description, total=total)
        yield lambda moved: progress.advance(task, moved)


class TranscodeBar:
    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task = progress.add_task("queued", total=100, fps=0.0, speed=0.0, eta="-") if progress else None

    def say(self, line: str) -> None:
        """A line on stderr, above the bar when there is one."""
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    def show(self, job: common_pb2.Job) -> None:
        if self._progress is None or self._task is None:
            return
        description = status_name(job.status)
        if job.status == common_pb2.JOB_STATUS_RUNNING and phase_name(job.progress.phase) in ("analysis", "probes"):
            description = phase_name(job.progress.phase)  # per-title deciding: its own phase, its own percent
        if job.status == common_pb2.JOB_STATUS_RUNNING:
            self._progress.update(self._task, completed=job.progress.percent, description=description,
                                  fps=job.progress.fps, speed=job.progress.speed,
                                  eta=human_duration(job.progress.eta_seconds))
        else:
            # Queued or finished: the last running figures stay on screen as the outcome.
            done = job.status == common_pb2.JOB_STATUS_COMPLETED
            self._progress.update(self._task, completed=100.0 if done else job.progress.percent,
                                  description=description, eta="-")


@contextmanager
def transcode_progress(*, enabled: bool) -> Iterator[TranscodeBar]:
    if not enabled:
        yield TranscodeBar(None)
        return
    # Rich's own ETA would guess from the bar; the worker knows its speed, so its ETA is shown.
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.fields[fps]:>6.1f} fps"), TextColumn("{task.fields[speed]:>5.2f}x"),
                  TextColumn("ETA {task.fields[eta]}"), console=_stderr()) as progress:
        yield TranscodeBar(progress)
