from __future__ import annotations

from typing import TYPE_CHECKING

from services.shared.bus._base import Bus
from services.shared.bus.contract import DEFAULT_NAMESPACE, Namespace

if TYPE_CHECKING:
    from services.shared.settings import CommonSettings


def open_bus(url: str, *, namespace: str = DEFAULT_NAMESPACE, max_deliveries: int = 5) -> Bus:
    """memory:// -> the in-process bus; amqp://user:pass@host:5672/vhost -> RabbitMQ,
    with every exchange and queue name under `namespace` (see contract.py)."""
    if url.startswith("memory:"):
        from services.shared.bus.memory import InProcessBus

        return InProcessBus(max_deliveries=max_deliveries)
    if url.startswith(("amqp://", "amqps://")):
        from services.shared.bus.amqp import RabbitMqBus

        return RabbitMqBus(url, namespace=Namespace(namespace), max_deliveries=max_deliveries)
    raise ValueError(f"unknown bus URL {url!r}: expected memory:// or amqp://...")


def open_bus_for(settings: CommonSettings) -> Bus:
    """The bus a service's settings name (bus_url, bus_namespace, bus_max_deliveries)."""
    return open_bus(settings.bus_url, namespace=settings.bus_namespace, max_deliveries=settings.bus_max_deliveries)
