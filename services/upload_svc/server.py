"""Builds the upload service: UploadComponent for any gRPC server (the
all-in-one process shares one bus, store and verifier among four components),
and create_server() for `python -m services.upload_svc` on its own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc

from services.shared.bus import open_bus_for
from services.shared.channels import peer_channel
from services.shared.private_files import create_private_dirs
from services.shared.readiness import ReadinessCheck, peer_check
from services.shared.server import OwnedResources, RunningServer, start_server
from services.shared.storage import ObjectStore, open_store
from services.shared.tokens import ServiceToken, TokenVerifier, grpc_jwks_source
from services.upload_svc.intake import UploadIntake
from services.upload_svc.profiles import ProfileCatalogue
from services.upload_svc.receiver import UploadLimits, remove_stale_spool_files
from services.upload_svc.servicer import UploadServicer
from services.upload_svc.settings import Settings
from services.upload_svc.slots import UploadSlots
from vtc.v1 import metadata_pb2_grpc, process_pb2_grpc, upload_pb2

log = logging.getLogger("vtc.upload")


class UploadComponent:
    service_names: Sequence[str] = (upload_pb2.DESCRIPTOR.services_by_name["UploadService"].full_name,)

    def __init__(self, settings: Settings, store: ObjectStore, service_token: ServiceToken) -> None:
        self._settings = settings
        # A peer that refuses the service token (its signing key was withdrawn) gets a new one.
        self._metadata_channel = peer_channel(settings.require_peer("metadata_addr"),
                                              service_token.renewal_interceptors(), tls=settings.tls)
        self._process_channel = peer_channel(settings.require_peer("process_addr"),
                                             service_token.renewal_interceptors(), tls=settings.tls)
        profiles = ProfileCatalogue(process_pb2_grpc.ProcessServiceStub(self._process_channel), service_token,
                                    settings.upload_profiles_cache_seconds)
        self._intake = UploadIntake(
            spool_dir=settings.upload_spool_dir,
            limits=UploadLimits(max_bytes=settings.upload_max_bytes, chunk_max_bytes=settings.upload_chunk_max_bytes,
                                idle_seconds=settings.upload_idle_timeout_seconds),
            store=store, profiles=profiles,
            metadata=metadata_pb2_grpc.MetadataServiceStub(self._metadata_channel), service_token=service_token,
            direct_io=settings.upload_direct_io)
        self._slots = UploadSlots(settings.upload_max_concurrent_per_tenant)

    def readiness_checks(self) -> Sequence[ReadinessCheck]:
        return [peer_check("metadata", self._metadata_channel), peer_check("process", self._process_channel)]

    def register(self, server: grpc.aio.Server) -> None:
        UploadServicer(self._intake, self._slots).add_to_server(server)

    async def start(self) -> None:
        spool_dir = self._settings.upload_spool_dir
        await asyncio.to_thread(create_private_dirs, spool_dir)
        if removed := await asyncio.to_thread(remove_stale_spool_files, spool_dir):
            log.info("removed %d spool files left by an earlier run", removed)

    async def stop(self) -> None:
        await self._metadata_channel.close()
        await self._process_channel.close()


async def create_server(settings: Settings) -> RunningServer:
    bus = open_bus_for(settings)
    store = open_store(settings)
    auth_channel = peer_channel(settings.require_peer("auth_addr"), tls=settings.tls)
    verifier = TokenVerifier(grpc_jwks_source(auth_channel), refresh_seconds=settings.token_keys_refresh_seconds)
    service_token = ServiceToken(settings.read_service_api_key, auth_channel)
    component = UploadComponent(settings, store, service_token)
    return await start_server([OwnedResources(bus, {"auth": auth_channel}), component], verifier,
                              settings.grpc_host, settings.grpc_port, revocations=bus,
                              readiness_interval=settings.readiness_interval_seconds, tls=settings.tls)
