"""Carries progress from the encoding thread to the event loop.

The thread only drops the newest figure in a slot and wakes the loop; one
task on the loop publishes it, at most every `interval` seconds. A slow bus
therefore never queues a backlog, and a failed publish is logged, never
raised: progress is a courtesy, the job goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable

from services.process_svc.execute import TranscodeProgress

log = logging.getLogger("vtc.process.progress")


class ProgressRelay:
    def __init__(self, publish: Callable[[TranscodeProgress], Awaitable[None]], *,
                 interval_seconds: float = 0.5) -> None:
        self._publish = publish
        self._interval = interval_seconds
        self._loop = asyncio.get_running_loop()
        self._latest: TranscodeProgress | None = None
        self._slot = threading.Lock()
        self._wake = asyncio.Event()
        self._closing = False
        self._task = self._loop.create_task(self._run(), name="progress-relay")

    def report(self, progress: TranscodeProgress) -> None:
        """Called from any thread."""
        with self._slot:
            self._latest = progress
        with contextlib.suppress(RuntimeError):  # the loop is closing: nobody is listening any more
            self._loop.call_soon_threadsafe(self._wake.set)

    async def close(self) -> None:
        """Stops relaying; a publish in flight finishes first, so events stay in order. Unsent figures are dropped."""
        self._closing = True
        self._wake.set()
        await self._task

    def _take(self) -> TranscodeProgress | None:
        with self._slot:
            latest, self._latest = self._latest, None
        return latest

    async def _run(self) -> None:
        last_published = float("-inf")
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            pause = last_published + self._interval - time.monotonic()
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wait_closing(), pause)
                if self._closing:
                    return
            progress = self._take()
            if progress is None:
                continue
            try:
                await self._publish(progress)
            except Exception:
                log.warning("could not publish progress; the job goes on", exc_info=True)
            last_published = time.monotonic()

    async def _wait_closing(self) -> None:
        while not self._closing:
            self._wake.clear()
            await self._wake.wait()
