"""The gauges metrics scrape from metadata: jobs in the database by state and
profile, the outbox's backlog, and the broker's queues (messages waiting,
consumers, dead letters). Read every `metadata_metrics_sample_seconds` in the
background, so a scrape never waits on the database or the broker. Every
replica reports the same figures: aggregate them with max(), not sum()."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metadata_svc.models import JobRow, OutboxRow
from services.shared import metrics
from services.shared.background import cancel_and_wait
from services.shared.bus import Bus
from services.shared.bus.contract import METADATA_JOB_EVENTS, PROCESS_JOBS, QueueSpec

log = logging.getLogger("vtc.metadata.gauges")

SAMPLED_QUEUES: tuple[QueueSpec, ...] = (PROCESS_JOBS, METADATA_JOB_EVENTS)
OUTBOX_KINDS = ("job_request", "event")


class StateGauges:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: Bus, *, interval_seconds: float) -> None:
        self._sessions = sessions
        self._bus = bus
        self._interval = interval_seconds
        self._job_labels: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="metadata-state-gauges")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        # The job figures were this database's: a stopped sampler leaves none behind in the process's
        # registry (another metadata in the same process, as in the tests, would show them as its own).
        for labels in self._job_labels:
            with contextlib.suppress(KeyError):
                metrics.JOBS.remove(*labels)
        self._job_labels = set()

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception as error:  # the gauges keep their last figures; readiness reports outages
                log.debug("could not sample the gauges: %s", error)
            await asyncio.sleep(self._interval)

    async def sample(self, now: datetime | None = None) -> None:
        await self._sample_database(now or datetime.now(UTC))
        if self._bus.connected:
            for queue in SAMPLED_QUEUES:
                stats = await self._bus.queue_stats(queue)
                metrics.QUEUE_MESSAGES.labels(queue.name).set(stats.messages)
                metrics.QUEUE_CONSUMERS.labels(queue.name).set(stats.consumers)
                metrics.QUEUE_MESSAGES.labels(queue.dead_letter_name).set(stats.dead_letters)

    async def _sample_database(self, now: datetime) -> None:
        kind = case((OutboxRow.job_id.is_(None), "event"), else_="job_request")
        async with self._sessions() as session:
            jobs = (await session.execute(
                select(JobRow.status, JobRow.profile, func.count()).group_by(JobRow.status, JobRow.profile))).all()
            outbox = (await session.execute(
                select(kind, func.count(), func.min(OutboxRow.created_at)).group_by(kind))).all()
        seen = set()
        for status, profile, count in jobs:
            labels = (str(status).lower(), str(profile or "default"))
            seen.add(labels)
            metrics.JOBS.labels(*labels).set(count)
        for gone in self._job_labels - seen:  # a state no job is in any more reads 0, not its last count
            metrics.JOBS.labels(*gone).set(0)
        self._job_labels |= seen
        backlog = {str(k): (int(n), oldest) for k, n, oldest in outbox}
        for name in OUTBOX_KINDS:
            count, oldest = backlog.get(name, (0, None))
            metrics.OUTBOX_MESSAGES.labels(name).set(count)
            metrics.OUTBOX_OLDEST_AGE.labels(name).set(_age(oldest, now))


def _age(oldest: datetime | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return max((now - oldest).total_seconds(), 0.0)
