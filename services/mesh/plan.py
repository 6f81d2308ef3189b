"""What the mesh runs: each service process with its port and environment.
Pure: ports come in, specs go out (tests check whole plans without starting
anything)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.mesh.settings import MeshSettings

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServiceProcess:
    name: str  # "auth", "metadata-1", "process-2", "upload"
    module: str  # run as `python -m <module>`
    port: int
    env: Mapping[str, str] = field(default_factory=dict)  # VTC_* over the inherited environment
    metrics_port: int = 0  # its Prometheus /metrics endpoint

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"


@dataclass(frozen=True)
class MeshPlan:
    auth: ServiceProcess
    metadata: tuple[ServiceProcess, ...]
    process: tuple[ServiceProcess, ...]
    upload: ServiceProcess

    @property
    def stages(self) -> list[list[ServiceProcess]]:
        """Start order: each stage's peers are up (and ready) before it starts."""
        return [[self.auth], [*self.metadata, *self.process], [self.upload]]

    @property
    def services(self) -> list[ServiceProcess]:
        return [p for stage in self.stages for p in stage]

    def files_addresses(self) -> list[str]:
        """Where the metadata replicas serve local storage's signed download URLs (none with B2)."""
        return [f"{HOST}:{p.env['VTC_METADATA_FILES_PORT']}" for p in self.metadata
                if "VTC_METADATA_FILES_PORT" in p.env]

    def addresses(self) -> dict[str, list[str]]:
        """gRPC service short name -> its replicas' addresses."""
        return {"AuthService": [self.auth.address], "MetadataService": [p.address for p in self.metadata],
                "ProcessService": [p.address for p in self.process], "UploadService": [self.upload.address]}


def _replicas(name: str, module: str, count: int, ports: Iterator[int],
              env: Mapping[str, str] | None = None) -> tuple[ServiceProcess, ...]:
    return tuple(ServiceProcess(f"{name}-{i}", module, next(ports), dict(env or {})) for i in range(1, count + 1))


def plan_mesh(settings: MeshSettings, ports: Iterator[int], *, auth_database_url: str,
              metadata_database_url: str, edge_rest_url: str = "") -> MeshPlan:
    data_dir = settings.data_dir.resolve()
    auth = ServiceProcess("auth", "services.auth_svc", next(ports))
    metadata = _replicas("metadata", "services.metadata_svc", settings.mesh_metadata_replicas, ports)
    process = tuple(
        ServiceProcess(p.name, p.module, p.port, {"VTC_PROCESS_WORK_DIR": str(data_dir / "mesh" / p.name / "work")})
        for p in _replicas("process", "services.process_svc", settings.mesh_process_workers, ports))
    upload = ServiceProcess("upload", "services.upload_svc", next(ports))
    # Each replica serves the signed playback URLs (and local storage's download URLs) with
    # the same secret under keys/; they point at the edge; Envoy balances /play/ and /files/ over them.
    metadata = tuple(ServiceProcess(p.name, p.module, p.port, {
        **p.env, "VTC_METADATA_FILES_PORT": str(next(ports)),
        **({"VTC_DOWNLOAD_BASE_URL": edge_rest_url} if edge_rest_url else {})}) for p in metadata)
    common = {
        "VTC_DATA_DIR": str(data_dir),  # one keys/ folder (auth writes, all read) and one objects/ store
        "VTC_STORAGE_URL": settings.resolved_storage_url,
        "VTC_GRPC_HOST": HOST,
        "VTC_BUS_URL": settings.mesh_bus_url,
        "VTC_BUS_NAMESPACE": settings.bus_namespace,  # two meshes on one broker never share a queue
        "VTC_LOG_LEVEL": settings.log_level,
        "VTC_AUTH_ADDR": auth.address,
        "VTC_METADATA_ADDR": _joined(metadata),
        "VTC_PROCESS_ADDR": _joined(process),
        "VTC_AUTH_DATABASE_URL": auth_database_url,
        "VTC_METADATA_DATABASE_URL": metadata_database_url,
    }

    def complete(spec: ServiceProcess) -> ServiceProcess:
        metrics_port = next(ports)
        return ServiceProcess(spec.name, spec.module, spec.port,
                              {**common, **spec.env, "VTC_GRPC_PORT": str(spec.port),
                               "VTC_METRICS_PORT": str(metrics_port)}, metrics_port)

    return MeshPlan(auth=complete(auth), metadata=tuple(map(complete, metadata)),
                    process=tuple(map(complete, process)), upload=complete(upload))


def _joined(replicas: Sequence[ServiceProcess]) -> str:
    return ",".join(p.address for p in replicas)


def work_dir(settings: MeshSettings) -> Path:
    """Where the mesh keeps its logs and gateway configs."""
    return settings.data_dir.resolve() / "mesh"
