"""The event bus: topic-routed, at-least-once, protobuf messages. What is
published where, and the queue names, live in contract.py.

    bus = open_bus_for(settings)            # memory:// or amqp://..., under settings.bus_namespace
    await bus.start()
    await bus.declare(PROCESS_JOBS)         # publishers declare where their messages must go
    await bus.publish(JOB_REQUESTED, JobRequested(...))   # returns once confirmed; Unroutable if no queue
    await bus.consume(PROCESS_JOBS, handle)                # prefetch 1
    await bus.consume_broadcast([API_KEY_REVOKED], handle) # every process a copy

A handler that returns acks the message. One that raises `Reject` sends it to
the queue's dead-letter queue at once (it can never succeed); any other
exception redelivers it, up to `bus.max_deliveries`, then dead-letters it
(`consume_dead_letters` reads them). Consumers must be idempotent: a message
may arrive more than once.
"""

from services.shared.bus._base import (
    Bus,
    Delivery,
    Handler,
    Publisher,
    QueueStats,
    Reject,
    Unroutable,
    topic_matches,
)
from services.shared.bus._open import open_bus, open_bus_for

__all__ = ["Bus", "Delivery", "Handler", "Publisher", "QueueStats", "Reject", "Unroutable", "open_bus",
           "open_bus_for", "topic_matches"]
