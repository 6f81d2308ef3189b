"""The transcode worker: takes one JobRequested from the bus at a time and
sees it through to a completed or failed event.

    fetch source -> probe -> plan -> execute (worker thread) -> store outputs -> completed

The handler returns (so the message is acked) only once the outputs are stored
and the terminal event is published. Failures of the job itself (undecodable
source, unknown profile, a bug) end in a failed event and an ack; outages of
storage or the bus raise, so the bus redelivers, until the last delivery,
which reports them as the failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

from services.process_svc.execute import ProducedRendition, execute, probe_source
from services.process_svc.failures import JobFailure
from services.process_svc.job_events import JobEventPublisher, rendition_message
from services.process_svc.plan import EncodePlan, plan_encode
from services.process_svc.profiles import ProfileCatalog
from services.process_svc.progress_relay import ProgressRelay
from services.shared.bus import Bus, Delivery, Reject
from services.shared.errors import InvalidArgument, NotFound, Unavailable, VtcError
from services.shared.logs import log_context
from services.shared.storage import ObjectStore
from services.shared.storage.keys import rendition_key
from vtc.v1 import common_pb2, events_pb2

log = logging.getLogger("vtc.process.worker")

JOBS_QUEUE = "process.jobs"
JOBS_BINDING = "job.requested"


class TranscodeWorker:
    def __init__(self, bus: Bus, store: ObjectStore, catalog: ProfileCatalog, work_dir: Path, *,
                 worker_name: str = "", progress_interval_seconds: float = 0.5, max_deliveries: int = 5) -> None:
        self._bus = bus
        self._store = store
        self._catalog = catalog
        self._work_dir = work_dir
        self._name = worker_name or f"{socket.gethostname()}:{os.getpid()}"
        self._progress_interval = progress_interval_seconds
        self.max_deliveries = max_deliveries

    async def handle(self, delivery: Delivery) -> None:
        """The bus handler for one job request."""
        request = delivery.decode()
        if not isinstance(request, events_pb2.JobRequested):
            raise Reject(f"{JOBS_QUEUE} takes JobRequested, got {delivery.message_type}")
        # A redelivered request is a new attempt: its events must order after the earlier delivery's.
        attempt = request.attempt + delivery.delivery_count - 1
        with log_context(job_id=request.job_id, video_id=request.video_id, tenant=request.tenant_id):
            events = JobEventPublisher(self._bus, request, attempt)
            await events.started(self._name)
            log.info("job started", extra={"fields": {"attempt": attempt, "profile": request.profile or "default"}})
            try:
                renditions = await self._transcode(request, events)
            except (JobFailure, InvalidArgument) as failure:  # the job's own fault: say why, do not retry
                reason = failure.reason if isinstance(failure, JobFailure) else failure.message
                log.warning("job failed: %s", reason)
                await events.failed(reason)
                return
            except (Unavailable, ConnectionError, TimeoutError) as outage:
                if delivery.delivery_count < self.max_deliveries:
                    raise  # the bus redelivers; storage may be back by then
                log.exception("job failed after %d deliveries", delivery.delivery_count)
                await events.failed(f"storage or messaging was unavailable on every attempt: {_describe(outage)}")
                return
            except Exception as error:  # a bug: redelivering would fail the same way
                log.exception("job failed on an internal error")
                await events.failed(f"internal error in the transcoder ({_describe(error)}); "
                                    "the service logged the details, retrying the job may not help")
                return
            await events.completed(renditions)
            log.info("job completed", extra={"fields": {"renditions": [r.name for r in renditions]}})

    async def _transcode(self, request: events_pb2.JobRequested,
                         events: JobEventPublisher) -> list[common_pb2.Rendition]:
        profile = self._catalog.get(request.profile)  # UnknownProfile names the profiles there are
        self._work_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f"{request.job_id or 'job'}-",
                                               dir=self._work_dir))
        try:
            source = scratch / ("source" + Path(request.source_key).suffix)
            try:
                await self._store.get_file(request.source_key, source)
            except NotFound:
                raise JobFailure(
                    f"the source {request.source_key!r} is no longer in storage; upload it again") from None
            info = await asyncio.to_thread(probe_source, source)
            plan = plan_encode(profile, info)
            produced = await self._execute(plan, source, scratch / "out", events)
            return [await self._store_rendition(request, rendition) for rendition in produced]
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    async def _execute(self, plan: EncodePlan, source: Path, out_dir: Path,
                       events: JobEventPublisher) -> list[ProducedRendition]:
        relay = ProgressRelay(events.progress, interval_seconds=self._progress_interval)
        cancel = threading.Event()
        encoding = asyncio.ensure_future(asyncio.to_thread(
            execute, plan, source, out_dir, relay.report, cancel=cancel,
            progress_interval_seconds=self._progress_interval))
        try:
            return await asyncio.shield(encoding)
        except asyncio.CancelledError:
            # Shutting down: stop the encoder thread before the scratch files go, then let the bus requeue.
            cancel.set()
            await asyncio.wait([encoding])
            raise
        finally:
            await relay.close()

    async def _store_rendition(self, request: events_pb2.JobRequested,
                               produced: ProducedRendition) -> common_pb2.Rendition:
        key = rendition_key(request.tenant_id, request.video_id, produced.name, produced.container)
        await self._store.put_file(key, produced.path, produced.content_type)
        return rendition_message(produced, key)


def _describe(error: BaseException) -> str:
    message = error.message if isinstance(error, VtcError) else str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
