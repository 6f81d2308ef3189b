"""The transcode worker: takes one JobRequested from the bus at a time and
sees it through to a completed, failed or cancelled event.

    fetch source -> probe -> plan -> execute (worker thread) -> store outputs -> completed

The handler returns (so the message is acked) only once the outputs are stored
and the terminal event is published. Failures of the job itself (undecodable
source, unknown profile, its time limit, a bug) end in a failed event and an
ack; outages of storage or the bus raise, so the bus redelivers, until the
last delivery, which reports them as the failure. A JobCancelRequested
(broadcast to every worker) stops the job wherever it runs: the encoder
thread stops, what the job stored is removed, and the job is acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from services.process_svc.compression_report import compression_message
from services.process_svc.execute import ProducedOutput, TranscodeProgress, execute, probe_source
from services.process_svc.execute.per_title import PerTitleDecision, decide_per_title
from services.process_svc.execute.quality import DEFAULT_SAMPLE_EVERY
from services.process_svc.failures import JobFailure
from services.process_svc.job_events import JobEventPublisher, output_message
from services.process_svc.plan import EncodePlan, Profile, SourceInfo, plan_encode
from services.process_svc.profiles import ProfileCatalog, read_profile_document
from services.process_svc.progress_relay import ProgressRelay
from services.process_svc.scratch import ScratchDir, remove_abandoned
from services.process_svc.time_limit import TimeLimit
from services.shared import metrics
from services.shared.bus import Bus, Delivery, Reject
from services.shared.bus.contract import JOB_CANCEL, PROCESS_JOBS
from services.shared.errors import InvalidArgument, NotFound, StorageRejected, Unavailable, VtcError
from services.shared.ids import require_id, require_tenant_id
from services.shared.logs import log_context
from services.shared.storage import ObjectStore, validate_key
from services.shared.storage.keys import output_key, video_prefix
from services.shared.tracing import span
from services.shared.validation import slug
from vtc.v1 import common_pb2, events_pb2

log = logging.getLogger("vtc.process.worker")

# Cancels heard for jobs this worker does not run (yet): a late delivery of one is dropped.
REMEMBERED_CANCELS = 10_000
DEFAULT_TIME_LIMIT = TimeLimit(factor=10.0, minimum_seconds=300.0)


class JobCancelled(Exception):
    """The user cancelled the job while this worker ran it."""


@dataclass
class _RunningJob:
    task: asyncio.Task[list[common_pb2.Output]] | None = None
    cancelled: bool = False  # by the user
    stopping: bool = False  # for any reason: store no more outputs
    stored_keys: list[str] = field(default_factory=list)
    warnings: tuple[str, ...] = ()  # the plan's, reported with the completed event
    compression: common_pb2.Compression | None = None  # per-title: what was decided, with the completed event

    def cancel(self) -> None:
        self.cancelled = self.stopping = True
        if self.task is not None:
            self.task.cancel()


class TranscodeWorker:
    def __init__(self, bus: Bus, store: ObjectStore, catalog: ProfileCatalog, work_dir: Path, *,
                 worker_name: str = "", progress_interval_seconds: float = 0.5, max_deliveries: int = 5,
                 time_limit: TimeLimit = DEFAULT_TIME_LIMIT, quality_sample_every: int = DEFAULT_SAMPLE_EVERY,
                 heartbeat_seconds: float = 30.0) -> None:
        self._bus = bus
        self._store = store
        self._catalog = catalog
        self._work_dir = work_dir
        self._name = worker_name or f"{socket.gethostname()}:{os.getpid()}"
        self._progress_interval = progress_interval_seconds
        self.max_deliveries = max_deliveries
        self._time_limit = time_limit
        self._quality_sample_every = quality_sample_every
        self._heartbeat = heartbeat_seconds
        self._running: dict[str, _RunningJob] = {}
        self._cancelled: OrderedDict[str, None] = OrderedDict()

    def remove_abandoned_scratch(self) -> list[Path]:
        """Scratch directories of jobs that died with their worker; call before taking jobs."""
        return remove_abandoned(self._work_dir)

    async def cancel(self, delivery: Delivery) -> None:
        """The bus handler for JobCancelRequested (every worker gets each one)."""
        request = delivery.decode()
        if not isinstance(request, events_pb2.JobCancelRequested):
            raise Reject(f"{JOB_CANCEL} carries JobCancelRequested, got {delivery.message_type}")
        self._cancelled[request.job_id] = None
        while len(self._cancelled) > REMEMBERED_CANCELS:
            self._cancelled.popitem(last=False)
        running = self._running.get(request.job_id)
        if running is not None:
            with log_context(job_id=request.job_id, video_id=request.video_id, tenant=request.tenant_id):
                log.info("cancel requested: stopping the job")
                running.cancel()

    async def handle(self, delivery: Delivery) -> None:
        """The bus handler for one job request."""
        request = delivery.decode()
        if not isinstance(request, events_pb2.JobRequested):
            raise Reject(f"{PROCESS_JOBS.name} takes JobRequested, got {delivery.message_type}")
        try:
            check_job_request(request)
        except InvalidArgument as error:
            # Its ids name the scratch folder and the storage keys: nothing of it may reach a path.
            raise Reject(f"job request refused: {error.message}") from None
        # A redelivered request is a new attempt: its events must order after the earlier delivery's.
        attempt = request.attempt + delivery.delivery_count - 1
        with log_context(job_id=request.job_id, video_id=request.video_id, tenant=request.tenant_id):
            if request.job_id in self._cancelled:
                log.info("job was cancelled before it started; dropped")
                return
            running = _RunningJob()
            self._running[request.job_id] = running
            try:
                await self._run(request, delivery, JobEventPublisher(self._bus, request, attempt), running)
            finally:
                self._running.pop(request.job_id, None)

    async def _run(self, request: events_pb2.JobRequested, delivery: Delivery, events: JobEventPublisher,
                   running: _RunningJob) -> None:
        started, outcome = time.perf_counter(), ""
        metrics.JOBS_RUNNING_HERE.inc()
        try:
            outcome = await self._outcome(request, delivery, events, running)
        finally:
            metrics.JOBS_RUNNING_HERE.dec()
            if outcome:  # not when the bus redelivers it: that run is not over
                profile = request.profile or "default"
                metrics.JOBS_FINISHED.labels(profile, outcome).inc()
                metrics.JOB_SECONDS.labels(profile, outcome).observe(time.perf_counter() - started)

    async def _outcome(self, request: events_pb2.JobRequested, delivery: Delivery, events: JobEventPublisher,
                       running: _RunningJob) -> str:
        """Runs the job to its end; returns how it ended (completed, failed, cancelled)."""
        await events.started(self._name)
        log.info("job started", extra={"fields": {"attempt": events.attempt, "profile": request.profile or "default"}})
        keepalive = asyncio.create_task(self._keep_alive(events), name="job-heartbeat")
        try:
            try:
                outputs = await self._attempt(request, events, running)
            finally:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
            if running.cancelled:  # the cancel came as the last output was stored
                raise JobCancelled()
        except JobCancelled:
            await self._remove_outputs(running)
            await events.cancelled(self._name)
            log.info("job cancelled: encoder stopped, outputs removed")
            return "cancelled"
        # The job's own fault, or storage refusing for good (StorageRejected): say why, do not retry.
        except (JobFailure, InvalidArgument, StorageRejected) as failure:
            reason = failure.reason if isinstance(failure, JobFailure) else failure.message
            log.warning("job failed: %s", reason)
            await self._remove_outputs(running)
            await events.failed(reason)
            return "failed"
        except (Unavailable, ConnectionError, TimeoutError) as outage:
            if delivery.delivery_count < self.max_deliveries:
                raise  # the bus redelivers; storage may be back by then
            log.exception("job failed after %d deliveries", delivery.delivery_count)
            await events.failed(f"storage or messaging was unavailable on every attempt: {_describe(outage)}")
            return "failed"
        except Exception as error:  # a bug: redelivering would fail the same way
            log.exception("job failed on an internal error")
            await events.failed(f"internal error in the transcoder ({_describe(error)}); "
                                "the service logged the details, retrying the job may not help")
            return "failed"
        await events.completed(outputs, running.warnings, running.compression)
        log.info("job completed", extra={"fields": {
            "outputs": {o.name: common_pb2.OutputStatus.Name(o.status) for o in outputs},
            "warnings": list(running.warnings)}})
        return "completed"

    async def _keep_alive(self, events: JobEventPublisher) -> None:
        """Progress events are the job's heartbeat; this one beats while nothing else does
        (fetching a large source, storing large renditions)."""
        while True:
            await asyncio.sleep(max(self._heartbeat - events.idle_seconds, 0.05))
            if events.idle_seconds >= self._heartbeat:
                try:
                    await events.heartbeat()
                except Exception:  # a courtesy, like progress: the job goes on
                    log.warning("could not send the job's heartbeat", exc_info=True)

    async def _attempt(self, request: events_pb2.JobRequested, events: JobEventPublisher,
                       running: _RunningJob) -> list[common_pb2.Output]:
        """The transcode as a task of its own, so a cancel or the time limit can stop it in any phase."""
        duration = request.probe.duration_seconds
        work = asyncio.ensure_future(self._transcode(request, events, running))
        running.task = work
        deadline = asyncio.timeout(self._time_limit.for_source(duration))
        try:
            async with deadline:
                return await work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if running.cancelled and not (current is not None and current.cancelling()):
                raise JobCancelled() from None
            raise  # shutting down: the bus requeues the job
        except TimeoutError:
            if deadline.expired():
                log.warning("job stopped at its time limit")
                raise JobFailure(self._time_limit.reason(duration)) from None
            raise

    async def _transcode(self, request: events_pb2.JobRequested, events: JobEventPublisher,
                         running: _RunningJob) -> list[common_pb2.Output]:
        profile = job_profile(self._catalog, request)
        scratch = await asyncio.to_thread(ScratchDir, self._work_dir, request.job_id)
        try:
            source = scratch.path / ("source" + Path(request.source_key).suffix)
            try:
                with span("fetch source"):
                    await self._store.get_file(request.source_key, source)
            except NotFound:
                raise JobFailure(
                    f"the source {request.source_key!r} is no longer in storage; upload it again") from None
            with span("probe"):
                info = await asyncio.to_thread(probe_source, source)
            with span("plan"):
                plan, decided = await self._plan(profile, info, source, events)
            running.warnings = plan.warnings
            if not plan.outputs:  # e.g. an audio-only profile on a silent source
                raise JobFailure("this source gets none of the profile's outputs: " + "; ".join(plan.warnings))
            with span("encode", attributes={"vtc.profile": request.profile or "default"}) as encoding:
                began = time.perf_counter()
                produced = await self._execute(plan, source, scratch.path / "out", events)
                encode_seconds = time.perf_counter() - began
                speed = request.probe.duration_seconds / max(encode_seconds, 1e-6)
                encoding.set_attribute("vtc.speed_realtime", round(speed, 3))
            if decided is not None and profile.per_title is not None:
                running.compression = compression_message(decided, profile.per_title.metric,
                                                          decided.window_seconds, encode_seconds)
            if request.probe.duration_seconds > 0:
                metrics.ENCODE_SPEED.labels(request.profile or "default").observe(speed)
            failed = [output for output in produced if output.failed]
            if len(failed) == len(produced):
                raise JobFailure("no output could be made: " + "; ".join(f"{o.name}: {o.error}" for o in failed))
            running.warnings += tuple(f"output {o.name} ({o.kind}) failed: {o.error}" for o in failed)
            storing = asyncio.ensure_future(self._store_all(request, produced, running))
            try:
                return await asyncio.shield(storing)
            except asyncio.CancelledError:
                # Let a put in flight finish, so everything stored is known and can be removed.
                running.stopping = True
                await asyncio.wait([storing])
                raise
        finally:
            await asyncio.to_thread(scratch.remove)

    async def _plan(self, profile: Profile, info: SourceInfo, source: Path,
                    events: JobEventPublisher) -> tuple[EncodePlan, PerTitleDecision | None]:
        """The fixed plan, or with per-title the plan its analysis and probe encodes decided (reported
        as progress phases of their own)."""
        if profile.per_title is None or info.sound_only:  # no picture: no ladder to decide
            return plan_encode(profile, info), None
        relay = ProgressRelay(events.progress, interval_seconds=self._progress_interval)

        def on_phase(phase: str, fraction: float) -> None:
            relay.report(TranscodeProgress(percent=round(100 * fraction, 2), frames=0, total_frames=0, fps=0.0,
                                           speed=0.0, eta_seconds=0.0, phase=phase))

        cancel = threading.Event()
        deciding = asyncio.ensure_future(asyncio.to_thread(
            decide_per_title, profile, profile.per_title, info, source, cancel=cancel, on_phase=on_phase))
        try:
            decided = await asyncio.shield(deciding)
        except asyncio.CancelledError:
            cancel.set()
            await asyncio.wait([deciding])
            raise
        finally:
            await relay.close()
        log.info("per-title decided", extra={"fields": {
            "seconds": round(decided.seconds, 2),
            "rungs": {d.name: {"crf": d.crf, "predicted_db": d.predicted_db, "dropped": d.dropped}
                      for d in decided.decisions}}})
        return decided.plan, decided

    async def _execute(self, plan: EncodePlan, source: Path, out_dir: Path,
                       events: JobEventPublisher) -> list[ProducedOutput]:
        relay = ProgressRelay(events.progress, interval_seconds=self._progress_interval)
        cancel = threading.Event()
        encoding = asyncio.ensure_future(asyncio.to_thread(
            execute, plan, source, out_dir, relay.report, cancel=cancel,
            progress_interval_seconds=self._progress_interval, quality_sample_every=self._quality_sample_every))
        try:
            return await asyncio.shield(encoding)
        except asyncio.CancelledError:
            # Cancelled, out of time or shutting down: stop the encoder thread before the scratch files go.
            cancel.set()
            await asyncio.wait([encoding])
            raise
        finally:
            await relay.close()

    async def _store_all(self, request: events_pb2.JobRequested, produced: list[ProducedOutput],
                         running: _RunningJob) -> list[common_pb2.Output]:
        """Every file of every completed output, under the job's outputs folder; each output as reported."""
        reported = []
        with span("store outputs"):
            for output in produced:
                keys = []
                with span(f"output {output.name}", attributes={"vtc.output": output.name, "vtc.kind": output.kind,
                                                               "vtc.files": len(output.files)}):
                    for file in () if output.failed else output.files:
                        if running.stopping:
                            return reported
                        key = output_key(request.tenant_id, request.video_id, file.key,
                                         job_id=request.job_id if request.outputs_in_job_folder else "")
                        running.stored_keys.append(key)
                        await self._store.put_file(key, file.path, file.content_type)
                        keys.append(key)
                message = output_message(output, keys)
                decision = _decision_of(running.compression, output.name)
                if decision is not None and message.HasField("rendition"):
                    message.rendition.per_title.CopyFrom(decision)
                reported.append(message)
        return reported

    async def _remove_outputs(self, running: _RunningJob) -> None:
        for key in running.stored_keys:
            try:
                await self._store.delete_prefix(key)
            except Exception:  # the job's outcome stands; the object is logged for an operator
                log.warning("could not remove the stored output %s", key, exc_info=True)


def _decision_of(compression: common_pb2.Compression | None, rung: str) -> common_pb2.RungDecision | None:
    if compression is None:
        return None
    return next((d for d in compression.rungs if d.name == rung), None)


def job_profile(catalog: ProfileCatalog, request: events_pb2.JobRequested) -> Profile:
    """The profile the job runs: the customer's own document or a shipped one, cut down to the
    outputs a retry makes again. InvalidArgument (the job fails saying why) when there is no such."""
    profile = read_profile_document(request.profile_document) if request.profile_document \
        else catalog.get(request.profile)  # UnknownProfile names the profiles there are
    if not request.only_outputs:
        return profile
    wanted = set(request.only_outputs)
    missing = sorted(wanted - {o.name for o in profile.outputs})
    if missing:
        raise InvalidArgument(f"profile {profile.name!r} has no output {', '.join(missing)} to make again; "
                              f"it has {', '.join(o.name for o in profile.outputs)}")
    return profile.model_copy(update={"outputs": tuple(o for o in profile.outputs if o.name in wanted)})


def check_job_request(request: events_pb2.JobRequested) -> None:
    """InvalidArgument unless the request's ids are well formed and its source lies under its video."""
    require_id(request.job_id, "job", "job_id")
    require_id(request.video_id, "vid", "video_id")
    require_tenant_id(request.tenant_id)
    if request.profile:
        slug(request.profile, "profile")
    for name in request.only_outputs:
        slug(name, "only_outputs")
    prefix = video_prefix(request.tenant_id, request.video_id)
    if not validate_key(request.source_key).startswith(prefix):
        raise InvalidArgument(f"source_key must lie under {prefix!r}")


def _describe(error: BaseException) -> str:
    message = error.message if isinstance(error, VtcError) else str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
