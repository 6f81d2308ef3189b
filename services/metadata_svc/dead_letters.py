"""The dead-letter queue of process.jobs, consumed. The broker gives up on a
job request once `bus_max_deliveries` workers took it and died before
finishing (a crash, a kill for memory): the job then ends FAILED with a
reason a person can act on, instead of staying RUNNING for ever."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from services.metadata_svc.catalog import VideoCatalog
from services.metadata_svc.job import Job
from services.shared.bus import Bus, Delivery
from services.shared.bus.contract import PROCESS_JOBS
from services.shared.logs import log_context
from vtc.v1 import events_pb2

log = logging.getLogger("vtc.metadata.dead_letters")

EndedJob = Callable[[Job, events_pb2.JobEvent], Awaitable[None]]


def crash_reason(deliveries: int, job_id: str) -> str:
    return (f"the transcoder crashed on this file {deliveries} times: every worker that took it stopped without "
            "finishing; the file may trigger a decoder bug. Re-encode it (for example `ffmpeg -i FILE -c:v "
            f"libx264 -c:a aac fixed.mp4`) and upload it again; if that fails too, report job {job_id}")


class DeadLetteredJobs:
    def __init__(self, catalog: VideoCatalog, *, max_deliveries: int, on_ended: EndedJob) -> None:
        self._catalog = catalog
        self._max_deliveries = max_deliveries
        self._on_ended = on_ended

    async def start(self, bus: Bus) -> None:
        await bus.consume_dead_letters(PROCESS_JOBS, self.handle)

    async def handle(self, delivery: Delivery) -> None:
        request = delivery.decode()
        if not isinstance(request, events_pb2.JobRequested):
            log.error("dead letter of type %s in %s dropped: not a job request", delivery.message_type,
                      PROCESS_JOBS.dead_letter_name)
            return
        with log_context(job_id=request.job_id, video_id=request.video_id, tenant=request.tenant_id):
            # Its deliveries ran as attempts request.attempt, +1, ...; a later attempt is another dispatch's.
            ended = await self._catalog.fail_job(
                request.job_id, crash_reason(self._max_deliveries, request.job_id), datetime.now(UTC),
                newest_attempt=request.attempt + self._max_deliveries - 1)
            if ended is None:
                log.info("dead-lettered request of a job that finished or moved on; dropped")
                return
            log.warning("job failed: dead-lettered after %d deliveries", self._max_deliveries)
            await self._on_ended(*ended)
