"""The bus on RabbitMQ (aio-pika): a durable topic exchange, persistent
messages published with confirms and mandatory routing (an unroutable message
raises Unroutable instead of vanishing), one durable quorum queue per consumer
group (prefetch, manual ack, x-delivery-limit) dead-lettering into
"<queue>.dead-letter", and exclusive auto-deleted queues for broadcasts.
Every exchange and queue name carries the deployment's namespace (contract.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import aio_pika
import aiormq.exceptions
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import PublishError
from google.protobuf.message import Message

from services.shared.bus._base import (
    CONTENT_TYPE,
    Delivery,
    Handler,
    QueueStats,
    Reject,
    Unroutable,
    trace_headers,
    traced,
)
from services.shared.bus.contract import Namespace, QueueSpec

log = logging.getLogger("vtc.bus")


class RabbitMqBus:
    def __init__(self, url: str, *, namespace: Namespace | None = None, max_deliveries: int = 5,
                 publish_timeout_seconds: float = 10.0) -> None:
        self._url = url
        self.namespace = namespace or Namespace()
        self.session = f"amqp:{self.namespace.name}"  # the broker keeps messages across our restarts
        self.max_deliveries = max_deliveries
        self._publish_timeout = publish_timeout_seconds
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._consumer_channels: list[AbstractChannel] = []
        self._inspect_channel: AbstractChannel | None = None
        self._handling: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        if self._connection is not None:
            return
        self._connection = await aio_pika.connect_robust(self._url)
        self._exchange = await self._open_publisher(self._connection)

    async def _open_publisher(self, connection: AbstractRobustConnection) -> AbstractExchange:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange(self.namespace.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await channel.declare_exchange(self.namespace.dead_letter_exchange, aio_pika.ExchangeType.DIRECT,
                                       durable=True)
        return exchange

    async def close(self) -> None:
        # In-flight handlers are cancelled unacked: the broker requeues their messages.
        for task in list(self._handling):
            task.cancel()
        for task in list(self._handling):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._connection is not None:
            await self._connection.close()
        self._connection, self._exchange, self._inspect_channel = None, None, None
        self._consumer_channels.clear()

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.connected.is_set()

    def _live(self) -> tuple[AbstractRobustConnection, AbstractExchange]:
        if self._connection is None or self._exchange is None:
            raise RuntimeError("the bus is not started")
        return self._connection, self._exchange

    async def publish(self, routing_key: str, message: Message, *, message_id: str = "",
                      mandatory: bool = True) -> None:
        _, exchange = self._live()
        message_type = message.DESCRIPTOR.full_name
        outgoing = aio_pika.Message(
            body=message.SerializeToString(), content_type=CONTENT_TYPE, type=message_type,
            headers={"type": message_type, **trace_headers()}, message_id=message_id or uuid.uuid4().hex,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        try:
            try:
                # While the broker is away a robust channel waits for it: bounded, so callers see the outage.
                await asyncio.wait_for(exchange.publish(outgoing, routing_key=routing_key, mandatory=mandatory),
                                       self._publish_timeout)
            except aiormq.exceptions.ChannelInvalidStateError:
                # aio-pika's robust channel can miss its restore when the broker restarts (its close
                # callback runs once the connection is already gone) and then stays closed for good:
                # publish on a channel opened anew instead of failing every publish from now on.
                connection, _ = self._live()
                exchange = self._exchange = await asyncio.wait_for(self._open_publisher(connection),
                                                                   self._publish_timeout)
                await asyncio.wait_for(exchange.publish(outgoing, routing_key=routing_key, mandatory=mandatory),
                                       self._publish_timeout)
        except PublishError as error:
            raise Unroutable(f"no queue is bound for {routing_key!r} on {self.namespace.exchange}") from error

    async def declare(self, queue: QueueSpec) -> None:
        connection, _ = self._live()
        channel = await connection.channel()
        try:
            await self._declare(channel, queue)
        finally:
            await channel.close()

    async def _declare(self, channel: AbstractChannel, queue: QueueSpec) -> AbstractQueue:
        name = self.namespace.queue(queue)
        dead_letters = await channel.declare_queue(self.namespace.dead_letter_queue(queue), durable=True,
                                                   arguments=_DEAD_LETTER_ARGUMENTS)
        await dead_letters.bind(self.namespace.dead_letter_exchange, routing_key=name)
        declared = await channel.declare_queue(name, durable=True, arguments={
            "x-queue-type": "quorum",
            # The broker counts returned deliveries; past the limit it dead-letters.
            "x-delivery-limit": max(self.max_deliveries - 1, 0),
            "x-dead-letter-exchange": self.namespace.dead_letter_exchange,
            "x-dead-letter-routing-key": name,
        })
        for key in queue.binding_keys:
            await declared.bind(self.namespace.exchange, routing_key=key)
        return declared

    async def consume(self, queue: QueueSpec, handler: Handler, *, prefetch: int = 1) -> None:
        # One consumer per slot, each on a channel with prefetch 1: the broker's consumer
        # count is then how many messages the consumers can run at once (consumer_count).
        for _ in range(prefetch):
            channel = await self._consumer_channel(1)
            declared = await self._declare(channel, queue)
            await declared.consume(functools.partial(self._handle, declared.name,
                                                     handler=traced(queue.name, handler, system="rabbitmq")))

    async def consumer_count(self, queue: QueueSpec) -> int:
        declared = await self._inspect(self.namespace.queue(queue))
        return int(declared.consumer_count or 0)

    async def queue_stats(self, queue: QueueSpec) -> QueueStats:
        declared = await self._inspect(self.namespace.queue(queue))
        dead = await self._inspect(self.namespace.dead_letter_queue(queue))
        return QueueStats(messages=int(declared.message_count or 0), consumers=int(declared.consumer_count or 0),
                          dead_letters=int(dead.message_count or 0))

    async def _inspect(self, name: str):  # type: ignore[no-untyped-def]
        connection, _ = self._live()
        # One channel kept for these look-ups (asked on every dispatch); a failed look-up
        # (the queue deleted under us) closes it, and the next one opens another.
        if self._inspect_channel is None or self._inspect_channel.is_closed:
            self._inspect_channel = await connection.channel()
        # Straight to the protocol: aio-pika's robust channel answers a repeated declare from its cache.
        channel = await self._inspect_channel.get_underlay_channel()
        return await channel.queue_declare(name, passive=True)

    async def consume_dead_letters(self, queue: QueueSpec, handler: Handler) -> None:
        channel = await self._consumer_channel(1)
        await self._declare(channel, queue)
        declared = await channel.declare_queue(self.namespace.dead_letter_queue(queue), durable=True,
                                               arguments=_DEAD_LETTER_ARGUMENTS)
        await declared.consume(functools.partial(
            self._handle, declared.name, handler=traced(queue.dead_letter_name, handler, system="rabbitmq")))

    async def consume_broadcast(self, binding_keys: Sequence[str], handler: Handler) -> None:
        channel = await self._consumer_channel(0)
        declared = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in binding_keys:
            await declared.bind(self.namespace.exchange, routing_key=key)
        await declared.consume(functools.partial(
            self._handle, declared.name, handler=traced("broadcast", handler, system="rabbitmq")))

    async def _consumer_channel(self, prefetch: int) -> AbstractChannel:
        connection, _ = self._live()
        channel = await connection.channel()
        if prefetch:
            await channel.set_qos(prefetch_count=prefetch)
        self._consumer_channels.append(channel)
        return channel

    async def _handle(self, queue: str, message: AbstractIncomingMessage, handler: Handler) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handling.add(task)
        headers = {str(k): str(v) for k, v in (message.headers or {}).items()}
        delivery = Delivery(
            routing_key=message.routing_key or "", body=message.body,
            message_type=message.type or headers.get("type", ""), message_id=message.message_id or "",
            delivery_count=int(headers.get("x-delivery-count", "0")) + 1, headers=headers)
        try:
            await handler(delivery)
        except asyncio.CancelledError:
            raise  # shutting down: unacked, the broker requeues it
        except Reject as error:
            log.error("dead-lettered %s from %s: %s", delivery.routing_key, queue, error)
            await message.reject(requeue=False)
        except Exception:
            log.exception("handler failed on %s from %s (delivery %d); returning it to the queue",
                          delivery.routing_key, queue, delivery.delivery_count)
            await message.nack(requeue=True)
        else:
            await message.ack()
        finally:
            if task is not None:
                self._handling.discard(task)


_DEAD_LETTER_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}
