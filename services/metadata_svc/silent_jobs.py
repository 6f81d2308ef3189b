"""Jobs whose worker went silent. Workers send progress at least every
`process_heartbeat_seconds` while they run a job; a RUNNING job with no event
for `metadata_silent_job_seconds` has lost its worker without the broker
noticing (a hung process, a network partition). It is handed to another
worker as a new attempt (through the outbox), and FAILED with a reason once
it has had `bus_max_deliveries` attempts. Events the silent worker may still
send belong to an older attempt and change nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from services.metadata_svc.catalog import VideoCatalog
from services.metadata_svc.dead_letters import EndedJob
from services.metadata_svc.job import Job
from services.shared.background import cancel_and_wait
from services.shared.logs import log_context

log = logging.getLogger("vtc.metadata.silent_jobs")


def silence_reason(silence: timedelta, attempts: int, job_id: str) -> str:
    seconds = silence.total_seconds()
    span = f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} seconds"
    return (f"no worker reported on this job for {span}, on each of its {attempts} attempts; the "
            "transcoder may hang on this file. Re-encode it and upload it again; if that fails too, report job "
            f"{job_id}")


class SilentJobWatch:
    def __init__(self, catalog: VideoCatalog, *, silence_seconds: float, max_attempts: int, interval_seconds: float,
                 on_ended: EndedJob, on_handed_on: Callable[[], None] = lambda: None) -> None:
        self._catalog = catalog
        self._silence = timedelta(seconds=silence_seconds)
        self._max_attempts = max_attempts
        self._interval = interval_seconds
        self._on_ended = on_ended
        self._on_handed_on = on_handed_on
        self._task: asyncio.Task[None] | None = None

    async def check_once(self, now: datetime | None = None) -> list[Job]:
        """Hands on or fails every silent job; returns them as they are now."""
        now = now or datetime.now(UTC)
        moved = []
        for silent in await self._catalog.silent_jobs(now - self._silence):
            with log_context(job_id=silent.job_id, video_id=silent.video_id, tenant=silent.tenant_id):
                if silent.attempt >= self._max_attempts:
                    ended = await self._catalog.fail_job(
                        silent.job_id, silence_reason(self._silence, silent.attempt, silent.job_id), now,
                        newest_attempt=silent.attempt, silent_since=now - self._silence)
                    if ended is not None:
                        log.warning("job failed: its worker went silent on its last attempt")
                        await self._on_ended(*ended)
                        moved.append(ended[0])
                else:
                    handed = await self._catalog.hand_on(silent.job_id, silent.attempt, now - self._silence, now)
                    if handed is not None:
                        log.warning("worker silent for %s; job handed on as attempt %d", self._silence,
                                    handed.attempt)
                        self._on_handed_on()
                        moved.append(handed)
        return moved

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="silent-job-watch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check_once()
            except Exception:  # the DB away: the next round tries again
                log.warning("could not look for silent jobs", exc_info=True)
