"""Readiness: gRPC health says SERVING only while the peers, the database and
the broker a service needs answer. Each is a check run every
`readiness_interval_seconds`; while any fails, every service name on the
server (and "") reports NOT_SERVING, and the log says which and why.
Liveness is the process answering at all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.shared.bus import Bus

log = logging.getLogger("vtc.readiness")

CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class ReadinessCheck:
    name: str  # what is checked, as the log names it: "peer auth", "database", "broker"
    probe: Callable[[], Awaitable[None]]  # raises when it is not there


def peer_check(service: str, channel: grpc.aio.Channel) -> ReadinessCheck:
    """The peer answers its health service (whatever it says: it is reachable)."""
    stub = health_pb2_grpc.HealthStub(channel)

    async def probe() -> None:
        try:
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=CHECK_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            # Any other answer (even UNIMPLEMENTED) came from the peer: it is there.

    return ReadinessCheck(f"peer {service}", probe)


def database_check(engine: AsyncEngine) -> ReadinessCheck:
    async def probe() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return ReadinessCheck("database", probe)


def broker_check(bus: Bus) -> ReadinessCheck:
    async def probe() -> None:
        if not bus.connected:
            raise ConnectionError("not connected to the broker; reconnecting")

    return ReadinessCheck("broker", probe)


class Readiness:
    def __init__(self, servicer: health.aio.HealthServicer, service_names: Sequence[str],
                 checks: Sequence[ReadinessCheck], interval_seconds: float) -> None:
        self._servicer = servicer
        self._names = ["", *service_names]
        self._checks = list(checks)
        self._interval = interval_seconds
        self._failing: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def problems(self) -> dict[str, str]:
        """What failed at the last check, by check name."""
        return dict(self._failing)

    async def start(self) -> None:
        await self.check_once()
        if self._checks:
            self._task = asyncio.create_task(self._run(), name="readiness")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check_once(self) -> None:
        results = await asyncio.gather(*(self._probe(c) for c in self._checks))
        failing = {c.name: problem for c, problem in zip(self._checks, results, strict=True) if problem}
        for name, problem in failing.items():
            if name not in self._failing:
                log.warning("not ready: %s unreachable: %s", name, problem)
        for name in self._failing.keys() - failing.keys():
            log.info("%s reachable again", name)
        self._failing = failing
        status = health_pb2.HealthCheckResponse.NOT_SERVING if failing else health_pb2.HealthCheckResponse.SERVING
        for name in self._names:
            await self._servicer.set(name, status)

    async def _probe(self, check: ReadinessCheck) -> str | None:
        try:
            await asyncio.wait_for(check.probe(), CHECK_TIMEOUT_SECONDS + 1)
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name}: {' '.join((error.details() or '').split())}"
        except Exception as error:
            return " ".join(str(error).split()) or type(error).__name__
        return None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check_once()
            except Exception:
                log.exception("readiness check failed")
