"""The in-process bus of the all-in-one process: RabbitMQ's topic semantics
(queues bound by pattern, competing consumers, ack / redeliver / dead-letter,
mandatory publishes) without a broker. Nothing survives the process: each
start is a new `session`, so metadata redoes the dispatches it forgot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from google.protobuf.message import Message

from services.shared.bus._base import (
    Delivery,
    Handler,
    QueueStats,
    Reject,
    Unroutable,
    topic_matches,
    trace_headers,
    traced,
)
from services.shared.bus.contract import QueueSpec

log = logging.getLogger("vtc.bus")


@dataclass
class _Queue:
    name: str
    binding_keys: list[str]
    messages: asyncio.Queue[Delivery] = field(default_factory=asyncio.Queue)
    consumers: set[asyncio.Task[None]] = field(default_factory=set)


class InProcessBus:
    def __init__(self, *, max_deliveries: int = 5) -> None:
        self.session = f"memory:{uuid.uuid4().hex}"
        self.max_deliveries = max_deliveries
        self._queues: dict[str, _Queue] = {}
        self._consumers: list[asyncio.Task[None]] = []

    @property
    def connected(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for task in self._consumers:
            task.cancel()
        for task in self._consumers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._consumers.clear()

    def _declare(self, name: str, binding_keys: Sequence[str]) -> _Queue:
        queue = self._queues.setdefault(name, _Queue(name, []))
        queue.binding_keys.extend(k for k in binding_keys if k not in queue.binding_keys)
        return queue

    async def publish(self, routing_key: str, message: Message, *, message_id: str = "",
                      mandatory: bool = True) -> None:
        delivery = Delivery(routing_key=routing_key, body=message.SerializeToString(),
                            message_type=message.DESCRIPTOR.full_name,
                            message_id=message_id or uuid.uuid4().hex, delivery_count=1, headers=trace_headers())
        routed = False
        for queue in self._queues.values():
            if any(topic_matches(key, routing_key) for key in queue.binding_keys):
                queue.messages.put_nowait(delivery)
                routed = True
        if not routed and mandatory:
            raise Unroutable(f"no queue is bound for {routing_key!r}")

    async def declare(self, queue: QueueSpec) -> None:
        self._declare(queue.name, queue.binding_keys)
        self._declare(queue.dead_letter_name, [])

    async def consume(self, queue: QueueSpec, handler: Handler, *, prefetch: int = 1) -> None:
        await self.declare(queue)
        declared, dead = self._queues[queue.name], self._queues[queue.dead_letter_name]
        handler = traced(queue.name, handler, system="in-process")
        for _ in range(prefetch):
            task = asyncio.create_task(self._run(declared, handler, dead))
            self._consumers.append(task)
            declared.consumers.add(task)
            task.add_done_callback(declared.consumers.discard)

    async def consumer_count(self, queue: QueueSpec) -> int:
        declared = self._queues.get(queue.name)
        return len(declared.consumers) if declared is not None else 0

    async def queue_stats(self, queue: QueueSpec) -> QueueStats:
        await self.declare(queue)
        declared, dead = self._queues[queue.name], self._queues[queue.dead_letter_name]
        return QueueStats(messages=declared.messages.qsize(), consumers=len(declared.consumers),
                          dead_letters=dead.messages.qsize())

    async def consume_dead_letters(self, queue: QueueSpec, handler: Handler) -> None:
        await self.declare(queue)
        dead = self._queues[queue.dead_letter_name]
        self._consumers.append(asyncio.create_task(
            self._run(dead, traced(queue.dead_letter_name, handler, system="in-process"), None, limited=False)))

    async def consume_broadcast(self, binding_keys: Sequence[str], handler: Handler) -> None:
        queue = self._declare(f"broadcast.{uuid.uuid4().hex}", binding_keys)
        self._consumers.append(asyncio.create_task(self._run(queue, traced("broadcast", handler, system="in-process"),
                                                             None)))

    def dead_letters(self, queue: QueueSpec) -> list[Delivery]:
        """What the queue dead-lettered and nobody consumed yet (tests look)."""
        dead = self._queues.get(queue.dead_letter_name)
        return list(dead.messages._queue) if dead is not None else []  # type: ignore[attr-defined]

    async def _run(self, queue: _Queue, handler: Handler, dead: _Queue | None, *, limited: bool = True) -> None:
        # limited: dead-letter (or drop) after max_deliveries; dead-letter queues redeliver without end.
        while True:
            delivery = await queue.messages.get()
            try:
                await handler(delivery)
            except asyncio.CancelledError:
                # Shutting down mid-message: put it back, as a broker would on a closed channel.
                queue.messages.put_nowait(replace(delivery, delivery_count=delivery.delivery_count + 1))
                raise
            except Reject as error:
                log.error("dead-lettered %s from %s: %s", delivery.routing_key, queue.name, error)
                self._dead_letter(delivery, dead)
            except Exception:
                if limited and delivery.delivery_count >= self.max_deliveries:
                    log.exception("dead-lettered %s from %s after %d deliveries",
                                  delivery.routing_key, queue.name, delivery.delivery_count)
                    self._dead_letter(delivery, dead)
                else:
                    log.exception("handler failed on %s; redelivering", delivery.routing_key)
                    queue.messages.put_nowait(replace(delivery, delivery_count=delivery.delivery_count + 1))

    @staticmethod
    def _dead_letter(delivery: Delivery, dead: _Queue | None) -> None:
        if dead is not None:  # a broadcast has no dead-letter queue: the copy is dropped
            dead.messages.put_nowait(replace(delivery, delivery_count=1))
