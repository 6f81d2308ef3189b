"""Buses for tests: the in-process bus, or RabbitMQ under a namespace of the
test's own (so parallel runs on the shared broker never meet), with the
cleanup of every queue and exchange that namespace declared."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import aio_pika

from services.shared.bus import Bus
from services.shared.bus.amqp import RabbitMqBus
from services.shared.bus.contract import METADATA_JOB_EVENTS, PROCESS_JOBS, Namespace, QueueSpec
from services.shared.bus.memory import InProcessBus
from tests.conftest import require_service

AMQP_URL = os.environ.get("VTC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def test_namespace() -> Namespace:
    return Namespace(f"vtc-test-{uuid.uuid4().hex[:10]}")


async def delete_namespace(url: str, namespace: Namespace, queues: list[QueueSpec]) -> None:
    """Deletes the namespace's queues (those of the contract and `queues`) and exchanges."""
    connection = await aio_pika.connect(url)
    async with connection:
        for spec in {*queues, PROCESS_JOBS, METADATA_JOB_EVENTS}:
            for name in (namespace.queue(spec), namespace.dead_letter_queue(spec)):
                channel = await connection.channel()
                with contextlib.suppress(Exception):  # never declared, or already gone
                    await channel.queue_delete(name)
        for name in (namespace.exchange, namespace.dead_letter_exchange):
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.exchange_delete(name)


class Backend:
    """Makes buses that share one world: one in-process bus, or one broker namespace."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.namespace = test_namespace()
        self.queues: list[QueueSpec] = []
        self._memory: InProcessBus | None = None

    def queue(self, name: str, *binding_keys: str) -> QueueSpec:
        spec = QueueSpec(f"test.{name}", binding_keys)
        self.queues.append(spec)
        return spec

    def bus(self, *, max_deliveries: int = 5, namespace: Namespace | None = None) -> Bus:
        """A bus on this backend (for memory: the same one each time, as every process shares it)."""
        if self.kind == "memory":
            if self._memory is None:
                self._memory = InProcessBus(max_deliveries=max_deliveries)
            return self._memory
        return RabbitMqBus(AMQP_URL, namespace=namespace or self.namespace, max_deliveries=max_deliveries)

    async def cleanup(self) -> None:
        if self.kind == "rabbitmq":
            await delete_namespace(AMQP_URL, self.namespace, self.queues)


@contextlib.asynccontextmanager
async def backend(kind: str) -> AsyncIterator[Backend]:
    if kind == "rabbitmq":
        parsed = urlparse(AMQP_URL)
        require_service("RabbitMQ", parsed.hostname or "127.0.0.1", parsed.port or 5672)
    made = Backend(kind)
    try:
        yield made
    finally:
        await made.cleanup()
