"""The in-process bus of the all-in-one process: RabbitMQ's topic semantics
(queues bound by pattern, competing consumers, ack / redeliver / dead-letter)
without a broker. Nothing survives the process; see Bus.durable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from google.protobuf.message import Message

from services.shared.bus._base import Delivery, Handler, Reject, topic_matches

log = logging.getLogger("vtc.bus")


@dataclass
class _Queue:
    name: str
    binding_keys: list[str]
    messages: asyncio.Queue[Delivery] = field(default_factory=asyncio.Queue)
    dead_letters: list[Delivery] = field(default_factory=list)


class InProcessBus:
    durable = False

    def __init__(self) -> None:
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

    async def publish(self, routing_key: str, message: Message, *, message_id: str = "") -> None:
        delivery = Delivery(routing_key=routing_key, body=message.SerializeToString(),
                            message_type=message.DESCRIPTOR.full_name,
                            message_id=message_id or uuid.uuid4().hex, delivery_count=1)
        routed = False
        for queue in self._queues.values():
            if any(topic_matches(key, routing_key) for key in queue.binding_keys):
                queue.messages.put_nowait(delivery)
                routed = True
        if not routed:
            log.warning("no queue bound for %s; message dropped", routing_key)

    async def consume(self, queue: str, binding_keys: Sequence[str], handler: Handler, *,
                      prefetch: int = 1, max_deliveries: int = 5) -> None:
        declared = self._declare(queue, binding_keys)
        for _ in range(prefetch):
            self._consumers.append(asyncio.create_task(self._run(declared, handler, max_deliveries)))

    async def consume_broadcast(self, binding_keys: Sequence[str], handler: Handler) -> None:
        await self.consume(f"broadcast.{uuid.uuid4().hex}", binding_keys, handler)

    def dead_letters(self, queue: str) -> list[Delivery]:
        return list(self._queues[queue].dead_letters) if queue in self._queues else []

    async def _run(self, queue: _Queue, handler: Handler, max_deliveries: int) -> None:
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
                queue.dead_letters.append(delivery)
            except Exception:
                if delivery.delivery_count >= max_deliveries:
                    log.exception("dead-lettered %s from %s after %d deliveries",
                                  delivery.routing_key, queue.name, delivery.delivery_count)
                    queue.dead_letters.append(delivery)
                else:
                    log.exception("handler failed on %s; redelivering", delivery.routing_key)
                    queue.messages.put_nowait(replace(delivery, delivery_count=delivery.delivery_count + 1))
