"""Builds the metadata service: MetadataComponent (its part of any gRPC server)
and create_server (the service running alone, with its own bus and store)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.metadata_svc.catalog import VideoCatalog
from services.metadata_svc.dead_letters import DeadLetteredJobs
from services.metadata_svc.job import Job
from services.metadata_svc.job_events import JobEventConsumer
from services.metadata_svc.job_profile import JobProfiles
from services.metadata_svc.orphan_sources import OrphanSourceSweeper
from services.metadata_svc.outbox import Outbox
from services.metadata_svc.playback import Playback
from services.metadata_svc.quotas import TenantQuota
from services.metadata_svc.relay import OutboxRelay
from services.metadata_svc.replica_fanout import ReplicaFanout
from services.metadata_svc.servicer import MetadataServicer
from services.metadata_svc.settings import Settings
from services.metadata_svc.silent_jobs import SilentJobWatch
from services.metadata_svc.state_gauges import StateGauges
from services.metadata_svc.watch import JobUpdate, JobWatchHub
from services.process_svc.profiles import PROFILES_DIR, ProfileCatalog
from services.shared.bus import Bus, open_bus_for
from services.shared.channels import peer_channel
from services.shared.db import create_engine, migrate
from services.shared.private_files import create_private_dirs
from services.shared.readiness import ReadinessCheck, database_check
from services.shared.server import OwnedResources, RunningServer, start_server
from services.shared.storage import ObjectStore, open_store
from services.shared.storage.file_server import signed_file_server, signer_of
from services.shared.tokens import TokenVerifier, grpc_jwks_source
from vtc.v1 import events_pb2, metadata_pb2, metadata_pb2_grpc

log = logging.getLogger("vtc.metadata")

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_metadata"


class MetadataComponent:
    service_names: Sequence[str] = (metadata_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name,)

    def __init__(self, settings: Settings, bus: Bus, store: ObjectStore) -> None:
        self._settings = settings
        self._bus = bus
        # The engine connects lazily: nothing touches the DB before start().
        self._engine = create_engine(settings.resolved_database_url)
        sessions = async_sessionmaker(self._engine, expire_on_commit=False)
        self.catalog = VideoCatalog(sessions, TenantQuota(max_stored_bytes=settings.metadata_quota_stored_bytes,
                                                          max_queued_jobs=settings.metadata_quota_queued_jobs))
        self.watch_hub = JobWatchHub()
        self.fanout = ReplicaFanout(self.watch_hub, bus)
        self.relay = OutboxRelay(sessions, bus, dispatch_ahead=settings.metadata_dispatch_ahead,
                                 poll_seconds=settings.metadata_outbox_poll_seconds,
                                 lock_dispatch=self._engine.dialect.name == "postgresql")
        self.outbox = Outbox(sessions, self.relay.wake)  # every message metadata emits goes through it
        self._store = store
        self.orphan_sources = OrphanSourceSweeper(
            self.catalog, store, grace_seconds=settings.metadata_orphan_source_grace_seconds,
            interval_seconds=settings.metadata_orphan_sweep_interval_seconds)
        # Jobs no worker can finish end here: dead-lettered by the broker, or silent too long.
        self.dead_letters = DeadLetteredJobs(self.catalog, max_deliveries=bus.max_deliveries, on_ended=self._ended)
        self.silent_jobs = SilentJobWatch(
            self.catalog, silence_seconds=settings.metadata_silent_job_seconds, max_attempts=bus.max_deliveries,
            interval_seconds=settings.metadata_silent_job_check_seconds, on_ended=self._ended,
            on_handed_on=self.relay.wake)
        self.gauges = StateGauges(sessions, bus, interval_seconds=settings.metadata_metrics_sample_seconds)
        self._servicer = MetadataServicer(self.catalog, store, self.fanout, self.outbox,
                                          on_registered=self.relay.wake,
                                          download_url_ttl_seconds=settings.metadata_download_url_ttl_seconds,
                                          page_max_bytes=settings.metadata_list_page_max_bytes,
                                          playback=Playback(store, signer_of(store)),
                                          profiles=JobProfiles(ProfileCatalog.load(
                                              settings.process_profiles_dir or PROFILES_DIR)))

    def register(self, server: grpc.aio.Server) -> None:
        metadata_pb2_grpc.add_MetadataServiceServicer_to_server(self._servicer, server)

    def readiness_checks(self) -> Sequence[ReadinessCheck]:
        return [database_check(self._engine)]

    async def start(self) -> None:
        if not self._settings.metadata_database_url:
            await asyncio.to_thread(create_private_dirs, self._settings.data_dir)  # home of the default SQLite file
        await migrate(self._engine, MIGRATIONS, VERSION_TABLE)
        # Listen to the other replicas before taking events.
        await self.fanout.start()
        consumer = JobEventConsumer(self.catalog, self.fanout, self._store, on_job_moved=self.relay.wake,
                                    outbox=self.outbox)
        await consumer.start(self._bus)
        lost = await self.catalog.redispatch_lost(self._bus.session, datetime.now(UTC))
        if lost:
            log.info("%d unfinished jobs went out on a bus that is gone; dispatched again", len(lost))
        await self.dead_letters.start(self._bus)
        await self.relay.start()
        self.silent_jobs.start()
        self.orphan_sources.start()
        self.gauges.start()

    async def stop(self) -> None:
        await self.gauges.stop()
        await self.orphan_sources.stop()
        await self.silent_jobs.stop()
        await self.relay.stop()
        await self._engine.dispose()

    async def _ended(self, job: Job, event: events_pb2.JobEvent) -> None:
        await self.fanout.publish(JobUpdate(job=job.to_proto(), event=event))
        self.relay.wake()


async def create_server(settings: Settings) -> RunningServer:
    """The metadata service alone on its own gRPC server (port 0 picks one: see RunningServer.port)."""
    bus = open_bus_for(settings)
    store = open_store(settings)
    auth_channel = peer_channel(settings.require_peer("auth_addr"), tls=settings.tls)
    verifier = TokenVerifier(grpc_jwks_source(auth_channel), refresh_seconds=settings.token_keys_refresh_seconds)
    components = [OwnedResources(bus, {"auth": auth_channel}), MetadataComponent(settings, bus, store),
                  *signed_file_server(store, settings.grpc_host, settings.metadata_files_port)]
    return await start_server(components, verifier, settings.grpc_host, settings.grpc_port, revocations=bus,
                              readiness_interval=settings.readiness_interval_seconds, tls=settings.tls)
