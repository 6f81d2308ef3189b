from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from google.protobuf import symbol_database
from google.protobuf.message import Message

from services.shared import tracing
from services.shared.bus.contract import QueueSpec

CONTENT_TYPE = "application/x-protobuf"


class Reject(Exception):
    """Raised by a handler for a message that can never be processed: dead-letter it."""


class Unroutable(Exception):
    """A mandatory publish that no queue is bound to receive: nothing would ever read it."""


@dataclass(frozen=True)
class Delivery:
    routing_key: str
    body: bytes
    message_type: str  # full protobuf name, from the "type" header
    message_id: str
    delivery_count: int  # 1 on the first delivery
    headers: dict[str, str] = field(default_factory=dict)

    def decode(self) -> Message:
        """The protobuf message, of the type its header names."""
        _ensure_events_loaded()
        try:
            cls = symbol_database.Default().GetSymbol(self.message_type)
        except KeyError as error:
            raise Reject(f"unknown message type {self.message_type!r}") from error
        message = cls()
        message.ParseFromString(self.body)
        return message


Handler = Callable[[Delivery], Awaitable[None]]


@dataclass(frozen=True)
class QueueStats:
    """A competing-consumer queue as the broker sees it now."""

    messages: int  # ready for a consumer (not counting those delivered and not yet acked)
    consumers: int
    dead_letters: int  # waiting in its dead-letter queue


def trace_headers() -> dict[str, str]:
    """Headers carrying the publisher's current trace context (W3C traceparent/tracestate)."""
    return dict(tracing.inject({}))


def traced(queue: str, handler: Handler, *, system: str) -> Handler:
    """The handler, each delivery handled in a consumer span that continues the
    trace its publisher sent in the headers (a new trace if it sent none)."""

    async def handle(delivery: Delivery) -> None:
        with tracing.span(f"{delivery.routing_key} process", kind=tracing.SpanKind.CONSUMER,
                          carrier=delivery.headers, attributes={
                    "messaging.system": system, "messaging.operation": "process",
                    "messaging.destination.name": queue, "messaging.message.id": delivery.message_id,
                    "messaging.rabbitmq.destination.routing_key": delivery.routing_key,
                    "vtc.delivery_count": delivery.delivery_count}):
            await handler(delivery)

    return handle


class Publisher(Protocol):
    """What sends a message: the bus itself, or metadata's outbox (which sends it later, surely)."""

    async def publish(self, routing_key: str, message: Message, *, message_id: str = "",
                      mandatory: bool = True) -> None: ...


class Bus(Protocol):
    # Where published messages live: the same for every process on one broker and
    # namespace; new each time an in-process bus starts, since its messages die with
    # it. Metadata records it with each dispatch, to redo dispatches a bus forgot.
    session: str
    # Deliveries of a message to a competing queue before it is dead-lettered.
    max_deliveries: int

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    @property
    def connected(self) -> bool:
        """Whether messages can flow now (False while a broker connection is being re-established)."""
        ...

    async def publish(self, routing_key: str, message: Message, *, message_id: str = "",
                      mandatory: bool = True) -> None:
        """Returns once the broker has the message. Raises Unroutable when `mandatory`
        and no queue is bound for routing_key (broadcasts pass mandatory=False)."""
        ...

    async def declare(self, queue: QueueSpec) -> None:
        """Makes sure the queue (and its dead-letter queue) exists and is bound."""
        ...

    async def consume(self, queue: QueueSpec, handler: Handler, *, prefetch: int = 1) -> None:
        """Handles up to `prefetch` messages at once, each slot its own consumer taking
        one message at a time, so a queue's consumer count is how many it can run at once."""
        ...

    async def consumer_count(self, queue: QueueSpec) -> int:
        """How many messages the queue's consumers, in every process, can take right now
        or once they are done with their current one (see consume)."""
        ...

    async def queue_stats(self, queue: QueueSpec) -> QueueStats:
        """Messages waiting, consumers, and dead letters of a declared queue."""
        ...

    async def consume_dead_letters(self, queue: QueueSpec, handler: Handler) -> None:
        """Consumes what the queue dead-lettered; the handler's return acks it."""
        ...

    async def consume_broadcast(self, binding_keys: Sequence[str], handler: Handler) -> None:
        """Every subscriber gets its own copy (RabbitMQ: an exclusive, auto-deleted queue)."""
        ...


def _ensure_events_loaded() -> None:
    from vtc.v1 import events_pb2  # noqa: F401  registers the event types


@lru_cache(maxsize=256)
def _pattern(binding_key: str) -> re.Pattern[str]:
    parts = []
    for word in binding_key.split("."):
        parts.append({"*": r"[^.]+", "#": r".*"}.get(word, re.escape(word)))
    regex = r"\.".join(parts).replace(r".*\.", r"(?:.*\.)?").replace(r"\..*", r"(?:\..*)?")
    return re.compile(f"^{regex}$")


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """AMQP topic matching: '*' is one word, '#' zero or more."""
    return _pattern(binding_key).match(routing_key) is not None
