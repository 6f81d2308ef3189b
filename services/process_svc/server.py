"""Builds the process service: the ProcessService servicer plus the transcode
worker consuming "process.jobs" (and every "job.cancel" broadcast) from the bus."""

from __future__ import annotations

import asyncio
import logging

import grpc

from services.process_svc.execute import EXECUTORS
from services.process_svc.profiles import PROFILES_DIR, ProfileCatalog
from services.process_svc.servicer import ProcessServicer
from services.process_svc.settings import Settings
from services.process_svc.time_limit import TimeLimit
from services.process_svc.worker import TranscodeWorker
from services.shared.bus import Bus, open_bus_for
from services.shared.bus.contract import JOB_CANCEL, METADATA_JOB_EVENTS, PROCESS_JOBS
from services.shared.channels import peer_channel
from services.shared.private_files import create_private_dirs
from services.shared.server import OwnedResources, RunningServer, start_server
from services.shared.storage import ObjectStore, open_store
from services.shared.tokens import TokenVerifier, grpc_jwks_source
from vtc.v1 import process_pb2, process_pb2_grpc

log = logging.getLogger("vtc.process")


class ProcessComponent:
    service_names = (process_pb2.DESCRIPTOR.services_by_name["ProcessService"].full_name,)

    def __init__(self, settings: Settings, bus: Bus, store: ObjectStore) -> None:
        self._settings = settings
        self._bus = bus
        # Loaded now so a broken profile file stops the service at start, not a job later.
        # Only profiles whose every output type has an executor here (a mistake names the file and output).
        self.catalog = ProfileCatalog.load(settings.process_profiles_dir or PROFILES_DIR, output_types=EXECUTORS)
        self.worker = TranscodeWorker(
            bus, store, self.catalog, settings.work_dir,
            progress_interval_seconds=settings.process_progress_interval_seconds,
            quality_sample_every=settings.process_quality_sample_every,
            max_deliveries=bus.max_deliveries,
            time_limit=TimeLimit(settings.process_time_limit_factor, settings.process_time_limit_min_seconds),
            heartbeat_seconds=settings.process_heartbeat_seconds)

    def register(self, server: grpc.aio.Server) -> None:
        process_pb2_grpc.add_ProcessServiceServicer_to_server(ProcessServicer(self.catalog), server)

    async def start(self) -> None:
        await asyncio.to_thread(create_private_dirs, self._settings.work_dir)
        await asyncio.to_thread(self.worker.remove_abandoned_scratch)
        # Cancels first: a job taken is one that can be cancelled.
        await self._bus.consume_broadcast([JOB_CANCEL], self.worker.cancel)
        # Declared here too, so the worker's events wait for metadata if it starts later.
        await self._bus.declare(METADATA_JOB_EVENTS)
        await self._bus.consume(PROCESS_JOBS, self.worker.handle, prefetch=self._settings.process_concurrency)
        log.info("transcode worker consuming %s", PROCESS_JOBS.name,
                 extra={"fields": {"profiles": self.catalog.names, "concurrency": self._settings.process_concurrency}})

    async def stop(self) -> None:
        # Nothing of its own: closing the bus (its owner's job) cancels the consumers,
        # so a job in flight stops its encoder and is requeued.
        return None


async def create_server(settings: Settings) -> RunningServer:
    """The process service alone on its own gRPC server, with its own bus and store."""
    bus = open_bus_for(settings)
    auth_channel = peer_channel(settings.require_peer("auth_addr"), tls=settings.tls)
    components = [OwnedResources(bus, {"auth": auth_channel}),
                  ProcessComponent(settings, bus, open_store(settings))]
    verifier = TokenVerifier(grpc_jwks_source(auth_channel), refresh_seconds=settings.token_keys_refresh_seconds)
    return await start_server(components, verifier, settings.grpc_host, settings.grpc_port, revocations=bus,
                              readiness_interval=settings.readiness_interval_seconds, tls=settings.tls)
