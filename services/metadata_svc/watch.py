"""WatchJob fan-out: every applied JobEvent goes to the watchers of its job
in this process (replica_fanout.py brings those applied by other replicas).
A watcher subscribes before it reads the job's current state, so nothing
applied in between is lost; updates its snapshot or an earlier update
already reflects are skipped by ordering (attempt, sequence), so a repeat, or
copies from two replicas arriving out of order, are never sent twice.

The broadcast between replicas is best effort (a replica restarting may not yet
be bound to it when another applies the job's last event), so a watcher that
hears nothing for RECHECK_SECONDS reads the job again: a state it has not sent
goes out, without an event, and a finished job ends the watch. No watch waits
for ever on a job that has already ended."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

from services.metadata_svc.job import Job
from services.shared.metrics import WATCH_SUBSCRIBERS
from vtc.v1 import common_pb2, events_pb2

# How long a watcher waits for news before it reads the job again itself (a running job reports
# progress every half second, so this only fires while queued, or when a broadcast was lost).
RECHECK_SECONDS = 10.0

_TERMINAL = frozenset({common_pb2.JOB_STATUS_COMPLETED, common_pb2.JOB_STATUS_FAILED,
                       common_pb2.JOB_STATUS_CANCELLED})


@dataclass(frozen=True)
class JobUpdate:
    job: common_pb2.Job  # the state after the event; never mutated once published
    event: events_pb2.JobEvent | None  # None: the state as read again from the database (no event seen)

    @property
    def finished(self) -> bool:
        return self.job.status in _TERMINAL


class JobGone(Exception):
    """The job was deleted while someone watched it."""


class Subscription:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._updates: asyncio.Queue[JobUpdate | None] = asyncio.Queue()

    def deliver(self, update: JobUpdate | None) -> None:
        self._updates.put_nowait(update)

    async def after(self, snapshot: Job, reread: Callable[[], Awaitable[Job]] | None = None, *,
                    recheck_seconds: float = RECHECK_SECONDS) -> AsyncIterator[JobUpdate]:
        """Updates newer than `snapshot`, in order, until the job is finished. Raises JobGone.
        reread: the job as stored now (raises JobGone when it is gone), asked after recheck_seconds
        without an update."""
        if snapshot.status.is_terminal:
            return
        position = (snapshot.attempt, snapshot.last_sequence)
        while True:
            try:
                update = await asyncio.wait_for(self._updates.get(), recheck_seconds if reread else None)
            except TimeoutError:
                assert reread is not None
                stored = await reread()
                if (stored.attempt, stored.last_sequence) <= position:
                    continue
                update = JobUpdate(job=stored.to_proto(), event=None)
                position = (stored.attempt, stored.last_sequence)
            else:
                if update is None:
                    raise JobGone(self.job_id)
                assert update.event is not None  # published updates carry their event
                if (update.event.attempt, update.event.sequence) <= position:
                    continue  # already in what the watcher was sent
                position = (update.event.attempt, update.event.sequence)
            yield update
            if update.finished:
                return


class JobWatchHub:
    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}

    @contextlib.contextmanager
    def subscribe(self, job_id: str) -> Iterator[Subscription]:
        subscription = Subscription(job_id)
        self._subscriptions.setdefault(job_id, set()).add(subscription)
        WATCH_SUBSCRIBERS.inc()
        try:
            yield subscription
        finally:
            WATCH_SUBSCRIBERS.dec()
            # Runs when the stream ends, fails or the client goes away: no watcher outlives its call.
            watchers = self._subscriptions.get(job_id)
            if watchers is not None:
                watchers.discard(subscription)
                if not watchers:
                    del self._subscriptions[job_id]

    def publish(self, update: JobUpdate) -> None:
        for subscription in self._subscriptions.get(update.job.job_id, ()):
            subscription.deliver(update)

    def end(self, job_ids: list[str]) -> None:
        """Ends the streams of deleted jobs."""
        for job_id in job_ids:
            for subscription in self._subscriptions.get(job_id, ()):
                subscription.deliver(None)

    def watcher_count(self, job_id: str | None = None) -> int:
        if job_id is not None:
            return len(self._subscriptions.get(job_id, ()))
        return sum(len(s) for s in self._subscriptions.values())
