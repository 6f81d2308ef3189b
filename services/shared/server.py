"""Builds a gRPC server from service components and runs it until a signal.

A component is one service's contribution to a server: it registers its
servicer and has start/stop hooks for background work (consumers, DB
connections). Who may call its methods is services/shared/access_policy.py.
The all-in-one process puts the four components on one server;
`python -m services.<name>` puts one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.shared.bus import Bus
from services.shared.interceptors import (
    AuthInterceptor,
    ErrorMappingInterceptor,
    RequestContextInterceptor,
    TelemetryInterceptor,
)
from services.shared.metrics import MetricsEndpoint, serve_metrics
from services.shared.readiness import Readiness, ReadinessCheck, broker_check, peer_check
from services.shared.settings import CommonSettings, MissingSetting
from services.shared.tls import TlsFiles
from services.shared.tokens import TokenVerifier
from services.shared.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger("vtc.server")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # chunks are at most 1 MiB; headroom for envelopes
# What a client may send on one stream before the server has read it (HTTP/2 flow control), fixed
# rather than grown by gRPC's bandwidth-delay probing: on a busy machine the probe let a 1 GiB REST
# upload's window (bytes held in gRPC's buffers) reach tens of MiB, the upload service's RSS growing
# by 61-84 MiB, against 12-24 MiB with a fixed 4 MiB (bench/upload.py). A stream's throughput is
# then at most this per round trip: 8 MiB over 50 ms is 168 MB/s (docs/uploads.md).
RECEIVE_WINDOW_BYTES = 8 * 1024 * 1024


class Component(Protocol):
    service_names: Sequence[str]  # full names, e.g. "vtc.v1.UploadService"

    def register(self, server: grpc.aio.Server) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    # Optional: `def readiness_checks(self) -> Sequence[ReadinessCheck]`, what the
    # component needs reachable to serve (its database, its peers).


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    components: Sequence[Component]
    health: health.aio.HealthServicer = field(repr=False)
    readiness: Readiness = field(repr=False)

    async def stop(self, grace: float) -> None:
        """Health goes NOT_SERVING, in-flight calls get `grace` seconds, then components stop."""
        await self.readiness.stop()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        for component in reversed(self.components):
            with contextlib.suppress(Exception):
                await component.stop()


class OwnedResources:
    """What a service running alone opened for itself (its bus, channels to
    peers by service name): listed first among the components, so it starts
    first and closes last. It is ready while the broker and the peers answer."""

    service_names: Sequence[str] = ()

    def __init__(self, bus: Bus, peers: Mapping[str, grpc.aio.Channel] | None = None) -> None:
        self._bus = bus
        self._peers = dict(peers or {})

    def readiness_checks(self) -> Sequence[ReadinessCheck]:
        return [broker_check(self._bus), *(peer_check(name, channel) for name, channel in self._peers.items())]

    def register(self, server: grpc.aio.Server) -> None:
        return None

    async def start(self) -> None:
        await self._bus.start()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._bus.close()
        for channel in self._peers.values():
            await channel.close()


async def start_server(components: Sequence[Component], verifier: TokenVerifier, host: str, port: int, *,
                       revocations: Bus | None = None, readiness_interval: float = 2.0,
                       tls: TlsFiles | None = None) -> RunningServer:
    """Builds, starts and returns the server. With `revocations`, the verifier
    follows the auth service's broadcasts on that bus (API key revocations,
    signing key changes). Health follows the components' readiness checks
    every `readiness_interval` seconds. With a certificate in `tls` it serves
    TLS only (and mutual TLS when `tls` names a CA)."""
    server = grpc.aio.server(
        interceptors=[TelemetryInterceptor(), RequestContextInterceptor(), ErrorMappingInterceptor(),
                      AuthInterceptor(verifier)],
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.so_reuseport", 0),
                 ("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", RECEIVE_WINDOW_BYTES)],
    )
    for component in components:
        component.register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [n for c in components for n in c.service_names]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    credentials = tls.server_credentials() if tls is not None else None
    if credentials is None:
        bound = server.add_insecure_port(f"{host}:{port}")
    else:
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    if bound == 0:
        raise RuntimeError(f"cannot listen on {host}:{port}: is the port taken?")
    try:
        for component in components:
            await component.start()
        if revocations is not None:
            await verifier.follow(revocations)
    except BaseException:
        for component in reversed(components):
            with contextlib.suppress(Exception):
                await component.stop()
        raise
    await server.start()
    checks = [check for c in components for check in getattr(c, "readiness_checks", tuple)()]
    readiness = Readiness(health_servicer, names, checks, readiness_interval)
    await readiness.start()
    return RunningServer(server=server, port=bound, components=components, health=health_servicer,
                         readiness=readiness)


async def wait_for_signal() -> None:
    """Returns on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


async def run_standalone(name: str, settings: CommonSettings,
                         create_server: Callable[[Any], Awaitable[RunningServer]]) -> None:
    """The body of `python -m services.<name>_svc`: one service on its own server
    until SIGINT/SIGTERM, then a graceful stop; its metrics on their own port."""
    from services.shared.logs import configure_logging

    configure_logging(settings.log_level)
    configure_tracing(f"vtc-{name}")
    try:
        endpoint = start_metrics_endpoint(settings)  # first: a port taken stops it before anything started
    except RuntimeError as error:
        sys.exit(f"vtc {name} service: {error}")
    try:
        running = await create_server(settings)
    except BaseException as error:
        if endpoint is not None:
            endpoint.stop()
        if isinstance(error, MissingSetting):
            sys.exit(f"vtc {name} service: {error}")
        raise
    log.info("%s service listening on %s:%d", name, settings.grpc_host, running.port,
             extra={"fields": {"metrics": endpoint.url if endpoint else "off"}})
    try:
        await wait_for_signal()
    finally:
        log.info("%s service shutting down", name)
        await running.stop(settings.shutdown_grace_seconds)
        if endpoint is not None:
            endpoint.stop()
        shutdown_tracing()


def start_metrics_endpoint(settings: CommonSettings) -> MetricsEndpoint | None:
    """The process's /metrics endpoint as the settings say (None: VTC_METRICS_PORT=-1)."""
    if settings.metrics_port < 0:
        return None
    return serve_metrics(settings.metrics_host or settings.grpc_host, settings.metrics_port)
