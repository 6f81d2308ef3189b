"""The outbox relay: publishes what metadata committed to the outbox, with
publisher confirms and mandatory routing, and deletes a row only once the
broker confirmed it. A broker outage leaves the rows where they are; the relay
retries with a growing pause and carries on where it stopped.

Plain events go out in the order written. Job requests go out only while a
worker slot is free (the consumers of process.jobs, less the jobs in flight)
plus `dispatch_ahead`, chosen fairly across tenants (dispatch.py). Several metadata replicas may relay at once: each
claims rows with FOR UPDATE SKIP LOCKED, and on PostgreSQL the dispatch
decision takes a transaction-scoped advisory lock so replicas never release
more than the free slots between them. A message may still go out twice (confirmed, then the commit
failed); consumers are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from google.protobuf import symbol_database
from google.protobuf.message import Message
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metadata_svc.dispatch import jobs_in_flight, next_job_requests, requests_in_broker, room_to_release
from services.metadata_svc.job import JobStatus
from services.metadata_svc.models import JobRow, OutboxRow
from services.shared import tracing
from services.shared.background import cancel_and_wait
from services.shared.bus import Bus
from services.shared.bus.contract import PROCESS_JOBS, is_broadcast
from vtc.v1 import events_pb2  # noqa: F401  registers the message types the outbox holds

log = logging.getLogger("vtc.metadata.relay")

# pg_advisory_xact_lock key of the dispatch decision ("vtc dispatch" as 8 bytes).
DISPATCH_LOCK = int.from_bytes(b"vtcdisp\x00", "big") >> 1
MAX_PAUSE_SECONDS = 5.0


class OutboxRelay:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: Bus, *, dispatch_ahead: int,
                 poll_seconds: float, lock_dispatch: bool, batch: int = 100) -> None:
        self._sessions = sessions
        self._bus = bus
        self._ahead = dispatch_ahead
        self._poll = poll_seconds
        self._lock_dispatch = lock_dispatch
        self._batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Something was written to the outbox, or a job started or ended: look now."""
        self._wake.set()

    async def start(self) -> None:
        # Job requests must wait in their queue even if no worker ever declared it yet.
        await self._bus.declare(PROCESS_JOBS)
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        pause = self._poll
        while True:
            self._wake.clear()
            try:
                while await self.relay_once():
                    pass
                pause = self._poll
            except Exception as error:
                pause = min(max(pause * 2, 0.2), MAX_PAUSE_SECONDS)
                log.warning("outbox relay could not publish (%s); retrying in %.1f s", error, pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def relay_once(self) -> bool:
        """One pass: pending events, then the job requests the window allows. Returns whether anything went out."""
        events = await self._publish_events()
        jobs = await self._dispatch_jobs()
        return events + jobs > 0

    async def _publish_events(self) -> int:
        failure: Exception | None = None
        published = 0
        async with self._sessions.begin() as session:
            rows = (await session.scalars(
                select(OutboxRow).where(OutboxRow.job_id.is_(None)).order_by(OutboxRow.id)
                .limit(self._batch).with_for_update(skip_locked=True))).all()
            for row in rows:
                try:
                    await self._publish(row)
                except Exception as error:  # keep what was confirmed; the rest waits for the next pass
                    failure = error
                    break
                await session.delete(row)
                published += 1
        if failure is not None:
            raise failure
        return published

    async def _dispatch_jobs(self) -> int:
        failure: Exception | None = None
        published = 0
        slots = await self._bus.consumer_count(PROCESS_JOBS) + self._ahead
        async with self._sessions.begin() as session:
            if self._lock_dispatch:
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DISPATCH_LOCK})
            room = room_to_release(slots, await jobs_in_flight(session), await requests_in_broker(session))
            for row in await next_job_requests(session, room):
                job = await session.get(JobRow, row.job_id)
                if job is None or job.status != JobStatus.QUEUED.name:
                    await session.delete(row)  # deleted, cancelled or already run: nothing to hand out
                    published += 1
                    continue
                try:
                    await self._publish(row)
                except Exception as error:
                    failure = error
                    break
                job.dispatched_at, job.dispatch_session = datetime.now(UTC), self._bus.session
                await session.delete(row)
                published += 1
        if failure is not None:
            raise failure
        if published:
            log.debug("released %d job requests", published)
        return published

    async def _publish(self, row: OutboxRow) -> None:
        if not row.traceparent:
            await self._bus.publish(row.routing_key, _message(row), message_id=row.message_id,
                                    mandatory=not is_broadcast(row.routing_key))
            return
        # In the trace of the work that wrote the row: its consumers join it through the message headers.
        with tracing.span(f"{row.routing_key} publish", kind=tracing.SpanKind.PRODUCER,
                          carrier={"traceparent": row.traceparent}, attributes={
                              "messaging.operation": "publish", "messaging.message.id": row.message_id,
                              "vtc.outbox_wait_seconds": _waited(row)}):
            await self._bus.publish(row.routing_key, _message(row), message_id=row.message_id,
                                    mandatory=not is_broadcast(row.routing_key))
            log.info("published %s from the outbox", row.routing_key)


def _waited(row: OutboxRow) -> float:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return round((datetime.now(UTC) - created).total_seconds(), 3)


def _message(row: OutboxRow) -> Message:
    message: Message = symbol_database.Default().GetSymbol(row.message_type)()
    message.ParseFromString(row.body)
    return message
