"""Applies JobEvents from the bus to the catalogue, then tells the watchers.
Idempotent: a repeated or out-of-order event changes nothing (see Job.apply)."""

from __future__ import annotations

import logging

from services.metadata_svc.catalog import VideoCatalog
from services.metadata_svc.watch import JobUpdate, JobWatchHub
from services.shared.bus import Bus, Delivery, Reject
from services.shared.errors import NotFound
from services.shared.logs import log_context
from services.shared.storage import ObjectStore
from services.shared.storage.keys import video_prefix
from vtc.v1 import events_pb2

log = logging.getLogger("vtc.metadata.events")

QUEUE = "metadata.job-events"
BINDING = "job.event.#"


class JobEventConsumer:
    def __init__(self, catalog: VideoCatalog, hub: JobWatchHub, store: ObjectStore) -> None:
        self._catalog = catalog
        self._hub = hub
        self._store = store

    async def start(self, bus: Bus) -> None:
        # Prefetch 1: one job's events are applied, and fanned out, in arrival order.
        await bus.consume(QUEUE, [BINDING], self.handle, prefetch=1)

    async def handle(self, delivery: Delivery) -> None:
        event = delivery.decode()
        if not isinstance(event, events_pb2.JobEvent):
            raise Reject(f"{delivery.routing_key} carries {delivery.message_type}, not vtc.v1.JobEvent")
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
                return
            self._hub.publish(JobUpdate(job=job, event=event))
