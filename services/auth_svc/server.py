"""Builds the auth service: AuthComponent (its part of any gRPC server) and
create_server (the service running alone, checking tokens against its own keys)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import grpc
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.auth_svc.bootstrap import ADMIN, OPERATOR, bootstrap
from services.auth_svc.directory import TenantDirectory
from services.auth_svc.key_set import PublishedKeySet
from services.auth_svc.rate_limits import IssueTokenLimits, TokenBucket
from services.auth_svc.revocations import RevocationBroadcast
from services.auth_svc.servicer import AuthServicer
from services.auth_svc.settings import Settings
from services.auth_svc.signing_key_watch import SigningKeyWatch
from services.auth_svc.signing_keys import SigningKeyring
from services.auth_svc.token_issuer import TokenIssuer
from services.shared.bus import Bus, open_bus_for
from services.shared.db import create_engine, migrate
from services.shared.private_files import ensure_private_file
from services.shared.readiness import ReadinessCheck, database_check
from services.shared.server import OwnedResources, RunningServer, start_server
from services.shared.tokens import TokenVerifier
from vtc.v1 import auth_pb2, auth_pb2_grpc

log = logging.getLogger("vtc.auth")

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_auth"
_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]


class AuthComponent:
    service_names: Sequence[str] = (_SERVICE.full_name,)

    def __init__(self, settings: Settings, bus: Bus | None = None) -> None:
        """bus: where revocations are announced, so every service drops a revoked key's tokens at once."""
        self._settings = settings
        # The engine connects lazily: nothing touches the DB before start().
        self._engine = create_engine(settings.resolved_database_url)
        self.directory = TenantDirectory(async_sessionmaker(self._engine, expire_on_commit=False))
        self.keyring = SigningKeyring(settings.resolved_signing_key_dir, settings.auth_signing_key_activation_seconds)
        self.issuer = TokenIssuer(self.keyring, settings.auth_token_ttl_seconds)
        self.key_set = PublishedKeySet(self.keyring, self.directory, settings.auth_token_ttl_seconds)
        self._key_watch = (SigningKeyWatch(self.keyring, bus, settings.auth_signing_key_poll_seconds)
                           if bus is not None else None)
        limits = IssueTokenLimits(
            per_key=TokenBucket(settings.auth_issue_token_per_key_per_minute, settings.auth_issue_token_key_burst),
            per_peer=TokenBucket(settings.auth_issue_token_per_peer_per_minute, settings.auth_issue_token_peer_burst))
        self._servicer = AuthServicer(self.directory, self.keyring, self.issuer, RevocationBroadcast(bus),
                                      key_set=self.key_set, issue_limits=limits)

    @property
    def admin_key_file(self) -> Path:
        return self._settings.keys_dir / ADMIN.file_name

    @property
    def operator_key_file(self) -> Path:
        return self._settings.keys_dir / OPERATOR.file_name

    def register(self, server: grpc.aio.Server) -> None:
        auth_pb2_grpc.add_AuthServiceServicer_to_server(self._servicer, server)

    def readiness_checks(self) -> Sequence[ReadinessCheck]:
        return [database_check(self._engine)]

    async def start(self) -> None:
        sqlite_file = self._settings.sqlite_file
        if sqlite_file is not None:
            await asyncio.to_thread(ensure_private_file, sqlite_file)
        await migrate(self._engine, MIGRATIONS, VERSION_TABLE)
        await self.keyring.open()
        await bootstrap(self.directory, self._settings.keys_dir)
        if self._key_watch is not None:
            await self._key_watch.start()

    async def stop(self) -> None:
        if self._key_watch is not None:
            await self._key_watch.stop()
        await self._engine.dispose()

    async def local_jwks(self) -> dict:
        """The key set without a network hop, for a TokenVerifier on the same process."""
        return await self.key_set.jwks()


async def create_server(settings: Settings) -> RunningServer:
    """The auth service alone on its own gRPC server (port 0 picks one: see RunningServer.port)."""
    bus = open_bus_for(settings)
    component = AuthComponent(settings, bus)
    verifier = TokenVerifier(component.local_jwks, refresh_seconds=settings.token_keys_refresh_seconds)
    return await start_server([OwnedResources(bus), component], verifier, settings.grpc_host, settings.grpc_port,
                              revocations=bus, readiness_interval=settings.readiness_interval_seconds,
                              tls=settings.tls)
