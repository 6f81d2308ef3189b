"""Cancelling a job: the catalogue ends it CANCELLED at once (so watchers and
GetJob see it), then every worker is told on the `job.cancel` broadcast; the
one running the job stops its encoder and removes what it stored. A worker
that starts a cancelled job later (a redelivery) is told again when its
`started` event arrives (see JobEventConsumer)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from services.metadata_svc.catalog import VideoCatalog
from services.metadata_svc.job import Job
from services.metadata_svc.replica_fanout import ReplicaFanout
from services.metadata_svc.watch import JobUpdate
from services.shared.bus import Publisher
from services.shared.bus.contract import JOB_CANCEL
from services.shared.ids import new_id
from vtc.v1 import events_pb2

log = logging.getLogger("vtc.metadata.cancel")



async def cancel_job(catalog: VideoCatalog, bus: Publisher, watchers: ReplicaFanout, tenant_id: str,
                     job_id: str) -> Job:
    job, event = await catalog.cancel_job(tenant_id, job_id, datetime.now(UTC))
    if event is not None:
        await watchers.publish(JobUpdate(job=job.to_proto(), event=event))
        log.info("job cancelled; telling the workers")
    # Sent again on a repeated cancel too: the first broadcast may have been lost with its publisher.
    await tell_workers(bus, job)
    return job


async def tell_workers(bus: Publisher, job: Job) -> None:
    request = events_pb2.JobCancelRequested(event_id=new_id("evt"), job_id=job.job_id, video_id=job.video_id,
                                            tenant_id=job.tenant_id)
    request.requested_at.GetCurrentTime()
    await bus.publish(JOB_CANCEL, request, message_id=request.event_id, mandatory=False)  # a broadcast
