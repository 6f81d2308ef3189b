"""The all-in-one process behind `make run`: the four services on one gRPC
server sharing one in-process bus and one local object store, plus Envoy's
REST gateway in front, and one /metrics endpoint for all four. Each service
can also run alone (`python -m services.<name>_svc`).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from services.auth_svc.bootstrap import ADMIN, OPERATOR
from services.auth_svc.server import AuthComponent
from services.auth_svc.settings import Settings as AuthSettings
from services.metadata_svc.server import MetadataComponent
from services.metadata_svc.settings import Settings as MetadataSettings
from services.process_svc.server import ProcessComponent
from services.process_svc.settings import Settings as ProcessSettings
from services.shared.bus import Bus, open_bus_for
from services.shared.channels import peer_channel
from services.shared.metrics import MetricsEndpoint, write_scrape_targets
from services.shared.private_files import create_private_dirs
from services.shared.server import RunningServer, start_metrics_endpoint, start_server
from services.shared.settings import CommonSettings
from services.shared.storage import open_store
from services.shared.storage.file_server import signed_file_server, signer_of
from services.shared.tokens import ServiceToken, TokenVerifier
from services.upload_svc.server import UploadComponent
from services.upload_svc.settings import Settings as UploadSettings

if TYPE_CHECKING:
    from gateway.envoy_process import EnvoyProcess

log = logging.getLogger("vtc.all_in_one")


class AllInOneSettings(CommonSettings):
    rest_host: str = Field("127.0.0.1", description="Interface Envoy's REST listener binds.")
    rest_port: int = Field(8080, description="REST (JSON) port served by Envoy; 0 picks a free one.")
    gateway_enabled: bool = Field(True, description="Start Envoy's REST gateway with the all-in-one process.")


@dataclass
class AllInOne:
    settings: AllInOneSettings
    grpc: RunningServer
    bus: Bus
    gateway: EnvoyProcess | None
    rest_port: int | None
    metrics: MetricsEndpoint | None = None

    @property
    def grpc_address(self) -> str:
        return f"{self.settings.grpc_host}:{self.grpc.port}"

    @property
    def admin_key_file(self) -> Path:
        """The default tenant's admin key: `vtc login` and uploads."""
        return self.settings.keys_dir / ADMIN.file_name

    @property
    def operator_key_file(self) -> Path:
        """The platform operator's key: tenants and their keys, no videos."""
        return self.settings.keys_dir / OPERATOR.file_name

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        await self.grpc.stop(self.settings.shutdown_grace_seconds)
        await self.bus.close()
        if self.metrics is not None:
            self.metrics.stop()


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


async def start_all_in_one(settings: AllInOneSettings | None = None) -> AllInOne:
    settings = settings or AllInOneSettings()
    # Peers are this very server, so its port must be known before the components are built.
    port = settings.grpc_port or _free_port(settings.grpc_host)
    own = f"{settings.grpc_host}:{port}"
    settings = settings.model_copy(update={"grpc_port": port, "auth_addr": own, "metadata_addr": own,
                                           "process_addr": own})
    create_private_dirs(settings.data_dir)
    shared = settings.model_dump(include=set(CommonSettings.model_fields))

    metrics = start_metrics_endpoint(settings)  # first: a port taken fails before anything started
    if metrics is not None:
        write_scrape_targets(settings.data_dir / "metrics-targets.json", {"all-in-one": metrics})
    bus = open_bus_for(settings)
    await bus.start()
    store = open_store(settings)
    upload_settings = UploadSettings(**shared)
    auth = AuthComponent(AuthSettings(**shared), bus)
    components = [
        auth,
        ProcessComponent(ProcessSettings(**shared), bus, store),
        MetadataComponent(MetadataSettings(**shared), bus, store),
        UploadComponent(upload_settings, store,
                        ServiceToken(upload_settings.read_service_api_key, peer_channel(own, tls=settings.tls))),
    ]
    # Signed playback and download URLs: served here, reached through the gateway's /play/ and /files/.
    file_servers = signed_file_server(store, "127.0.0.1", 0)
    components += file_servers
    verifier = TokenVerifier(auth.local_jwks, refresh_seconds=settings.token_keys_refresh_seconds)
    grpc_server = await start_server(components, verifier, settings.grpc_host, port, revocations=bus,
                                     tls=settings.tls)

    gateway, rest_port = None, None
    if settings.gateway_enabled:
        from gateway.envoy_process import start_envoy_for_all_in_one

        try:
            gateway = await start_envoy_for_all_in_one(
                settings, grpc_address=own, files_address=file_servers[0].address if file_servers else None)
        except BaseException:
            await grpc_server.stop(0)
            await bus.close()
            if metrics is not None:
                metrics.stop()
            raise
        rest_port = gateway.port
        if (signer := signer_of(store)) is not None and not settings.download_base_url:
            signer.base_url = gateway.url  # its port is known only now
    return AllInOne(settings=settings, grpc=grpc_server, bus=bus, gateway=gateway, rest_port=rest_port,
                    metrics=metrics)
