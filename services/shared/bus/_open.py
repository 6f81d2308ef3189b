from __future__ import annotations

from services.shared.bus._base import Bus


def open_bus(url: str) -> Bus:
    """memory:// -> in-process bus; amqp:// -> RabbitMQ (not built yet)."""
    if url.startswith("memory:"):
        from services.shared.bus.memory import InProcessBus

        return InProcessBus()
    if url.startswith(("amqp://", "amqps://")):
        raise NotImplementedError("the RabbitMQ bus is not built yet; use VTC_BUS_URL=memory://")
    raise ValueError(f"unknown bus URL {url!r}: expected memory:// or amqp://...")
