"""The bus on RabbitMQ (aio-pika): a durable topic exchange, persistent
messages published with confirms, one durable quorum queue per consumer group
(prefetch, manual ack, x-delivery-limit) dead-lettering into
"<queue>.dead-letter", and exclusive auto-deleted queues for broadcasts."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection
from google.protobuf.message import Message

from services.shared.bus._base import CONTENT_TYPE, Delivery, Handler, Reject

log = logging.getLogger("vtc.bus")


class RabbitMqBus:
    durable = True

    def __init__(self, url: str, *, exchange: str = "vtc.events") -> None:
        self._url = url
        self._exchange_name = exchange
        self._dead_letter_name = f"{exchange}.dead-letter"
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._consumer_channels: list[AbstractChannel] = []
        self._handling: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        if self._connection is not None:
            return
        self._connection = await aio_pika.connect_robust(self._url)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.declare_exchange(self._exchange_name, aio_pika.ExchangeType.TOPIC,
                                                        durable=True)
        await channel.declare_exchange(self._dead_letter_name, aio_pika.ExchangeType.DIRECT, durable=True)

    async def close(self) -> None:
        # In-flight handlers are cancelled unacked: the broker requeues their messages.
        for task in list(self._handling):
            task.cancel()
        for task in list(self._handling):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._connection is not None:
            await self._connection.close()
        self._connection, self._exchange = None, None
        self._consumer_channels.clear()

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.connected.is_set()

    def _live(self) -> tuple[AbstractRobustConnection, AbstractExchange]:
        if self._connection is None or self._exchange is None:
            raise RuntimeError("the bus is not started")
        return self._connection, self._exchange

    async def publish(self, routing_key: str, message: Message, *, message_id: str = "") -> None:
        _, exchange = self._live()
        message_type = message.DESCRIPTOR.full_name
        await exchange.publish(aio_pika.Message(
            body=message.SerializeToString(), content_type=CONTENT_TYPE, type=message_type,
            headers={"type": message_type}, message_id=message_id or uuid.uuid4().hex,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=routing_key)

    async def consume(self, queue: str, binding_keys: Sequence[str], handler: Handler, *,
                      prefetch: int = 1, max_deliveries: int = 5) -> None:
        connection, exchange = self._live()
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        self._consumer_channels.append(channel)
        dead_letters = await channel.declare_queue(f"{queue}.dead-letter", durable=True,
                                                   arguments={"x-queue-type": "quorum"})
        await dead_letters.bind(self._dead_letter_name, routing_key=queue)
        declared = await channel.declare_queue(queue, durable=True, arguments={
            "x-queue-type": "quorum",
            # The broker counts returned deliveries; past the limit it dead-letters.
            "x-delivery-limit": max(max_deliveries - 1, 0),
            "x-dead-letter-exchange": self._dead_letter_name,
            "x-dead-letter-routing-key": queue,
        })
        for key in binding_keys:
            await declared.bind(exchange, routing_key=key)
        await declared.consume(functools.partial(self._handle, queue, handler=handler))

    async def consume_broadcast(self, binding_keys: Sequence[str], handler: Handler) -> None:
        connection, exchange = self._live()
        channel = await connection.channel()
        self._consumer_channels.append(channel)
        declared = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in binding_keys:
            await declared.bind(exchange, routing_key=key)
        await declared.consume(functools.partial(self._handle, declared.name, handler=handler))

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
