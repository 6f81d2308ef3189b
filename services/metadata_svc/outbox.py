"""What metadata emits goes through its outbox: a message is a row committed
to the database, and the relay (relay.py) publishes it once the broker can
take it. Outbox has the shape of Bus.publish, so code that tells the workers
something (a cancel) does not care that the broker may be down right now."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metadata_svc.models import OutboxRow
from services.shared.bus.contract import is_broadcast
from services.shared.ids import new_id


def outbox_row(routing_key: str, message: Message, message_id: str, at: datetime) -> OutboxRow:
    return OutboxRow(routing_key=routing_key, message_type=message.DESCRIPTOR.full_name,
                     message_id=message_id or new_id("msg"), body=message.SerializeToString(), created_at=at)


class Outbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], wake_relay: Callable[[], None]) -> None:
        self._sessions = sessions
        self._wake_relay = wake_relay

    async def publish(self, routing_key: str, message: Message, *, message_id: str = "",
                      mandatory: bool = True) -> None:
        """Commits the message for the relay; returns before the broker has it."""
        if mandatory == is_broadcast(routing_key):
            # The relay publishes broadcasts non-mandatory and the rest mandatory, by the contract.
            raise ValueError(f"{routing_key!r} is {'' if is_broadcast(routing_key) else 'not '}a broadcast "
                             "in the bus contract: publish it with mandatory="
                             f"{not is_broadcast(routing_key)}")
        async with self._sessions.begin() as session:
            session.add(outbox_row(routing_key, message, message_id, datetime.now(UTC)))
        self._wake_relay()
