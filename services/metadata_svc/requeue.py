"""Hands unfinished jobs out again on start. The in-process bus forgets
everything when the process stops, but the DB does not: every job it holds as
queued or running is requeued as a new attempt, so a restart loses no job."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from services.metadata_svc.catalog import Requeued, VideoCatalog
from services.shared.bus import Bus
from services.shared.ids import new_id
from services.shared.logs import log_context
from vtc.v1 import events_pb2

log = logging.getLogger("vtc.metadata.requeue")

ROUTING_KEY = "job.requested"


async def requeue_unfinished_jobs(catalog: VideoCatalog, bus: Bus) -> int:
    """Returns how many jobs were requeued."""
    now = datetime.now(UTC)
    # Committed before publishing: if publishing fails, the jobs are still unfinished
    # in the DB and the next start hands them out again.
    requeued = await catalog.requeue_unfinished(now)
    for item in requeued:
        request = job_requested(item, now)
        with log_context(job_id=item.job.job_id, video_id=item.video.video_id, tenant=item.video.tenant_id):
            await bus.publish(ROUTING_KEY, request, message_id=request.event_id)
            log.info("requeued job as attempt %d", item.job.attempt)
    return len(requeued)


def job_requested(item: Requeued, at: datetime) -> events_pb2.JobRequested:
    request = events_pb2.JobRequested(
        event_id=new_id("evt"), job_id=item.job.job_id, video_id=item.video.video_id,
        tenant_id=item.video.tenant_id, profile=item.job.profile, source_key=item.video.source_key,
        probe=item.video.probe, attempt=item.job.attempt)
    request.requested_at.FromDatetime(at)
    return request
