"""WatchJob across metadata replicas: a broadcast fan-out on the bus.

Job events reach metadata through one competing queue, so each replica
applies only some of them. The replica that applied an event tells its own
subscribers at once, then broadcasts the job's new state (JobWatchUpdate on
`metadata.watch`); every other replica hands that copy to its subscribers.
Deleting a video ends its watches the same way.

Why a bus broadcast rather than PostgreSQL LISTEN/NOTIFY: it works the same
on both bus backends and both databases (NOTIFY does not exist on SQLite),
the message already carries the committed state so no replica reads the
database per event, and it reuses the broadcast queues the bus already has
for key revocations. The broadcast is sent after the commit, and a watcher
subscribes before it reads its snapshot, so a watcher misses nothing; copies
it already reflects are skipped (see watch.py). It is best effort: a lost
broadcast costs the watchers on other replicas some progress figures, and
a watcher that hears nothing reads the job again after a while (watch.py
RECHECK_SECONDS), so it still gets the final state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from services.metadata_svc.watch import JobUpdate, JobWatchHub
from services.shared.bus import Bus, Delivery
from services.shared.bus.contract import METADATA_WATCH
from services.shared.ids import new_id
from vtc.v1 import events_pb2

log = logging.getLogger("vtc.metadata.fanout")

ROUTING_KEY = METADATA_WATCH


class ReplicaFanout:
    def __init__(self, hub: JobWatchHub, bus: Bus, replica_id: str = "") -> None:
        self.hub = hub
        self.replica_id = replica_id or new_id("rep")
        self._bus = bus
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._bus.consume_broadcast([ROUTING_KEY], self._receive)

    async def publish(self, update: JobUpdate) -> None:
        """Tells this replica's watchers, then every other replica's. The broadcast
        is sent in the background: the next job event need not wait for its confirm."""
        self.hub.publish(update)
        self._send(events_pb2.JobWatchUpdate(replica_id=self.replica_id, job=update.job, event=update.event))

    async def end(self, job_ids: Sequence[str]) -> None:
        """Ends the watches of deleted jobs on every replica."""
        self.hub.end(list(job_ids))
        if job_ids:
            self._send(events_pb2.JobWatchUpdate(replica_id=self.replica_id, ended_job_ids=job_ids))

    def _send(self, message: events_pb2.JobWatchUpdate) -> None:
        # One channel publishes in call order, so the copies still leave in order.
        task = asyncio.create_task(self._broadcast(message))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _broadcast(self, message: events_pb2.JobWatchUpdate) -> None:
        # Never raised: the event is committed; failing its delivery would only replay it as stale.
        try:
            await self._bus.publish(ROUTING_KEY, message, mandatory=False)  # a broadcast
        except Exception:
            log.warning("could not tell the other metadata replicas' watchers", exc_info=True)

    async def _receive(self, delivery: Delivery) -> None:
        message = delivery.decode()
        if not isinstance(message, events_pb2.JobWatchUpdate) or message.replica_id == self.replica_id:
            return  # ours: our watchers already have it
        if message.HasField("job"):
            self.hub.publish(JobUpdate(job=message.job, event=message.event))
        if message.ended_job_ids:
            self.hub.end(list(message.ended_job_ids))
