"""Settings of `make run-mesh` (env prefix VTC_). The services it starts read
their own settings from the same environment; these say what to start."""

from __future__ import annotations

from pydantic import Field

from services.shared.settings import CommonSettings

DEFAULT_BUS_URL = "amqp://guest:guest@127.0.0.1:5672/"


class MeshSettings(CommonSettings):
    mesh_grpc_port: int = Field(50051, description="Edge gRPC port (Traefik, h2c), as `make run`'s; 0 picks one.")
    mesh_rest_port: int = Field(8080, description="Edge REST port (Traefik -> Envoy), as `make run`'s; 0 picks one.")
    mesh_process_workers: int = Field(2, ge=1, description="Process workers (transcoders) to run.")
    mesh_metadata_replicas: int = Field(2, ge=1, description="Metadata replicas to run.")
    mesh_database_url: str = Field(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/vtc",
        description="PostgreSQL database of auth and metadata unless VTC_AUTH_DATABASE_URL / "
                    "VTC_METADATA_DATABASE_URL name others; created if missing.")

    @property
    def mesh_bus_url(self) -> str:
        """VTC_BUS_URL, or the local RabbitMQ: an in-process bus cannot join processes."""
        return DEFAULT_BUS_URL if self.bus_url.startswith("memory:") else self.bus_url
