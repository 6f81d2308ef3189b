"""The event bus: topic-routed, at-least-once, protobuf messages.

    bus = open_bus(settings.bus_url)       # memory:// or amqp://...
    await bus.start()
    await bus.publish("job.requested", JobRequested(...))          # returns once confirmed
    await bus.consume("process.jobs", ["job.requested"], handle)   # prefetch 1
    await bus.consume_broadcast(["auth.api_key.revoked"], handle)  # every process a copy

A handler that returns acks the message. One that raises `Reject` sends it to
the dead-letter store at once (it can never succeed); any other exception
redelivers it, up to `max_deliveries`, then dead-letters it. Consumers must be
idempotent: a message may arrive more than once.
"""

from services.shared.bus._base import Bus, Delivery, Handler, Reject, topic_matches
from services.shared.bus._open import open_bus

__all__ = ["Bus", "Delivery", "Handler", "Reject", "open_bus", "topic_matches"]
