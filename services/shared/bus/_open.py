from __future__ import annotations

from services.shared.bus._base import Bus


def open_bus(url: str) -> Bus:
    """memory:// -> the in-process bus; amqp://user:pass@host:5672/vhost -> RabbitMQ."""
    if url.startswith("memory:"):
        from services.shared.bus.memory import InProcessBus

        return InProcessBus()
    if url.startswith(("amqp://", "amqps://")):
        from services.shared.bus.amqp import RabbitMqBus

        return RabbitMqBus(url)
    raise ValueError(f"unknown bus URL {url!r}: expected memory:// or amqp://...")
