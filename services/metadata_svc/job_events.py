"""Applies JobEvents from the bus to the catalogue, then tells the watchers of
every replica (replica_fanout.py).
Idempotent: a repeated or out-of-order event changes nothing (see Job.apply),
except that a cancelled job's worker is answered: told again to stop when it
starts the job, and its renditions removed when it completes it anyway."""

from __future__ import annotations

import logging
from collections.abc import Callable

from services.metadata_svc.cancel import tell_workers
from services.metadata_svc.catalog import VideoCatalog
from services.metadata_svc.job import JobStatus
from services.metadata_svc.replica_fanout import ReplicaFanout
from services.metadata_svc.watch import JobUpdate
from services.shared.bus import Bus, Delivery, Publisher, Reject
from services.shared.bus.contract import METADATA_JOB_EVENTS
from services.shared.errors import InvalidArgument, NotFound
from services.shared.ids import require_id, require_tenant_id
from services.shared.logs import log_context
from services.shared.storage import ObjectStore, validate_key
from services.shared.storage.keys import video_prefix
from services.shared.validation import slug
from vtc.v1 import events_pb2

log = logging.getLogger("vtc.metadata.events")

class JobEventConsumer:
    def __init__(self, catalog: VideoCatalog, fanout: ReplicaFanout, store: ObjectStore, *,
                 on_job_moved: Callable[[], None] = lambda: None, outbox: Publisher | None = None) -> None:
        self._catalog = catalog
        self._fanout = fanout
        self._store = store
        self._outbox = outbox  # where what metadata emits goes; the bus itself when None
        self._on_job_moved = on_job_moved  # a job started or ended: dispatch may release the next one

    async def start(self, bus: Bus) -> None:
        self._outbox = self._outbox or bus
        # Prefetch 1: one job's events are applied, and fanned out, in arrival order.
        await bus.consume(METADATA_JOB_EVENTS, self.handle, prefetch=1)

    async def handle(self, delivery: Delivery) -> None:
        event = delivery.decode()
        if not isinstance(event, events_pb2.JobEvent):
            raise Reject(f"{delivery.routing_key} carries {delivery.message_type}, not vtc.v1.JobEvent")
        try:
            check_job_event(event)
        except InvalidArgument as error:
            # Its ids would reach SQL lookups and storage prefixes (a late completion deletes one).
            raise Reject(f"job event refused: {error.message}") from None
        with log_context(job_id=event.job_id, video_id=event.video_id, tenant=event.tenant_id):
            try:
                job = await self._catalog.apply_event(event)
            except NotFound:
                # Its video was deleted while the job ran: nothing left to update, but the
                # renditions the worker stored after the delete must not outlive the video.
                log.info("event %s for an unknown job ignored", event.event_id or delivery.message_id)
                if event.WhichOneof("kind") == "completed":
                    removed = await self._store.delete_prefix(video_prefix(event.tenant_id, event.video_id))
                    log.info("removed %d objects a deleted video's job stored late", removed)
                return
            if job is None:
                log.debug("stale or repeated event ignored (attempt %d, sequence %d)", event.attempt, event.sequence)
                await self._answer_cancelled(event)
                return
            if event.WhichOneof("kind") != "progress":
                log.info("job event %s applied: job %s", event.WhichOneof("kind"), job.status.name.lower())
                self._on_job_moved()
            await self._fanout.publish(JobUpdate(job=job.to_proto(), event=event))

    async def _answer_cancelled(self, event: events_pb2.JobEvent) -> None:
        kind = event.WhichOneof("kind")
        if kind not in ("started", "completed"):
            return
        job = await self._catalog.find_job(event.job_id)
        if job is None or job.status is not JobStatus.CANCELLED:
            return
        if kind == "started" and self._outbox is not None:
            log.info("a worker started a cancelled job; telling it again to stop")
            await tell_workers(self._outbox, job)
        elif kind == "completed":
            keys = {r.storage_key for r in event.completed.renditions} | {
                f.storage_key for o in event.completed.outputs for f in o.files}
            for key in sorted(keys):
                await self._store.delete_prefix(key)
            log.info("removed %d files a cancelled job stored", len(keys))


def check_job_event(event: events_pb2.JobEvent) -> None:
    """InvalidArgument unless the event's ids are well formed and its renditions lie under its video."""
    require_id(event.job_id, "job", "job_id")
    require_id(event.video_id, "vid", "video_id")
    require_tenant_id(event.tenant_id)
    prefix = video_prefix(event.tenant_id, event.video_id)
    for rendition in event.completed.renditions:
        slug(rendition.name, "rendition name")
        if not validate_key(rendition.storage_key).startswith(prefix):
            raise InvalidArgument(f"rendition {rendition.name!r} is stored outside its video's prefix {prefix!r}")
    for output in event.completed.outputs:
        slug(output.name, "output name")
        slug(output.type, "output type")
        for file in output.files:
            if not validate_key(file.storage_key).startswith(prefix):
                raise InvalidArgument(f"output {output.name!r} has a file stored outside its video's prefix {prefix!r}")
        if output.HasField("rendition") and not validate_key(output.rendition.storage_key).startswith(prefix):
            raise InvalidArgument(f"output {output.name!r} is stored outside its video's prefix {prefix!r}")
