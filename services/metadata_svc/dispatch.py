"""Dispatch: which job goes to the workers next, and the JobRequested that
carries it. Metadata owns dispatch: a job request is an outbox row written in
the transaction that created (or requeued) the job, so an accepted upload can
never be lost between the database and the broker.

Fairness: the relay releases a job request only when a worker slot is free
(the workers' consumer count, less the jobs in flight: dispatched or
running; at least one is always waiting in the broker while jobs are queued),
plus `ahead` more if configured, and takes it from the tenant with
the fewest jobs in flight; among equals, from the one served least recently
(round-robin), then the oldest request. One
tenant's burst therefore waits in the database, not in a FIFO queue in front
of everyone else: a quiet tenant's lone job is the next one released as soon
as a worker frees up.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.metadata_svc.job import JobStatus, JobTrigger
from services.metadata_svc.models import JobRow, OutboxRow, VideoRow
from services.shared.bus.contract import JOB_REQUESTED
from services.shared.ids import new_id
from vtc.v1 import common_pb2, events_pb2


def job_requested(job: JobRow, video: VideoRow, probe: common_pb2.MediaProbe, at: datetime) -> events_pb2.JobRequested:
    """The one builder of the message that hands a job attempt to a worker."""
    request = events_pb2.JobRequested(
        event_id=new_id("evt"), job_id=job.job_id, video_id=video.video_id, tenant_id=video.tenant_id,
        profile=job.profile, source_key=video.source_key, probe=probe, attempt=job.attempt,
        profile_document=job.profile_document, only_outputs=job.only_outputs,
        outputs_in_job_folder=job.trigger != JobTrigger.UPLOAD)
    request.requested_at.FromDatetime(at)
    return request


def job_request_row(request: events_pb2.JobRequested, at: datetime) -> OutboxRow:
    return OutboxRow(routing_key=JOB_REQUESTED, message_type=request.DESCRIPTOR.full_name,
                     message_id=request.event_id, body=request.SerializeToString(), created_at=at,
                     tenant_id=request.tenant_id, job_id=request.job_id)


def choose_fairly(pending: Mapping[str, Sequence[int]], in_flight: Mapping[str, int],
                  last_served: Mapping[str, datetime], room: int) -> list[int]:
    """Up to `room` outbox ids, taken one at a time from the tenant with the
    fewest jobs in flight (each pick counts as one more), then the one served
    least recently (never: first), then the oldest request. `pending`: each
    tenant's waiting request ids, oldest first; `last_served`: when each
    tenant last had a job dispatched."""

    def served(tenant: str) -> tuple[int, float]:
        return (1, last_served[tenant].timestamp()) if tenant in last_served else (0, 0.0)

    heap = [(in_flight.get(tenant, 0), served(tenant), ids[0], tenant, 0) for tenant, ids in pending.items() if ids]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and len(chosen) < room:
        flying, _, head, tenant, index = heapq.heappop(heap)
        chosen.append(head)
        ids = pending[tenant]
        if index + 1 < len(ids):  # served just now: after every tenant served before
            heapq.heappush(heap, (flying + 1, (2, float(len(chosen))), ids[index + 1], tenant, index + 1))
    return chosen


_IN_FLIGHT = or_(JobRow.status == JobStatus.RUNNING.name,
                 and_(JobRow.status == JobStatus.QUEUED.name, JobRow.dispatched_at.is_not(None)))


async def jobs_in_flight(session: AsyncSession) -> int:
    """Jobs a worker runs, or whose request waits in the broker for one."""
    return int(await session.scalar(select(func.count()).select_from(JobRow).where(_IN_FLIGHT)) or 0)


async def requests_in_broker(session: AsyncSession) -> int:
    """Released requests no worker has started yet."""
    return int(await session.scalar(select(func.count()).select_from(JobRow).where(
        JobRow.status == JobStatus.QUEUED.name, JobRow.dispatched_at.is_not(None))) or 0)


def room_to_release(slots: int, in_flight: int, in_broker: int) -> int:
    """Requests to release now: one per free worker slot; and one anyway when none
    waits in the broker, so a job stuck RUNNING (its worker gone, its end not yet
    known) can never hold every other job back. A quiet tenant's job is
    therefore at worst the second to go."""
    return max(slots - in_flight, 1 - in_broker)


async def next_job_requests(session: AsyncSession, room: int) -> list[OutboxRow]:
    """The job requests to release now, fairly across tenants (locked on PostgreSQL)."""
    if room <= 0:
        return []
    # Each tenant's `room` oldest requests are all a fair choice of `room` can need.
    rank = func.row_number().over(partition_by=OutboxRow.tenant_id, order_by=OutboxRow.id).label("rank")
    ranked = select(OutboxRow.id, OutboxRow.tenant_id, rank).where(OutboxRow.job_id.is_not(None)).subquery()
    rows = (await session.execute(select(ranked.c.id, ranked.c.tenant_id).where(ranked.c.rank <= room)
                                  .order_by(ranked.c.id))).all()
    if not rows:
        return []
    pending: dict[str, list[int]] = {}
    for outbox_id, tenant in rows:
        pending.setdefault(tenant or "", []).append(outbox_id)
    tenants = list(pending)
    counts = (await session.execute(select(JobRow.tenant_id, func.count()).where(
        _IN_FLIGHT, JobRow.tenant_id.in_(tenants)).group_by(JobRow.tenant_id))).all()
    served = (await session.execute(select(JobRow.tenant_id, func.max(JobRow.dispatched_at)).where(
        JobRow.tenant_id.in_(tenants), JobRow.dispatched_at.is_not(None)).group_by(JobRow.tenant_id))).all()
    chosen = choose_fairly(pending, dict(counts), {tenant: _utc(at) for tenant, at in served if at}, room)
    claimed = (await session.scalars(select(OutboxRow).where(OutboxRow.id.in_(chosen))
                                     .order_by(OutboxRow.id).with_for_update(skip_locked=True))).all()
    order = {outbox_id: position for position, outbox_id in enumerate(chosen)}
    return sorted(claimed, key=lambda row: order[row.id])


def _utc(at: datetime) -> datetime:
    # max() comes back as the column's raw value: naive UTC on SQLite.
    return at if at.tzinfo else at.replace(tzinfo=UTC)
