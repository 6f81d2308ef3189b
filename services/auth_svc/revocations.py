"""Tells every service that an API key was revoked, so its tokens stop working
at once instead of when they expire (TokenVerifier.follow listens)."""

from __future__ import annotations

import logging
import uuid

from services.auth_svc.api_keys import ApiKey
from services.auth_svc.timestamps import to_timestamp
from services.shared.bus import Bus
from services.shared.tokens import KEY_REVOKED
from vtc.v1 import events_pb2

log = logging.getLogger("vtc.auth.revocations")


class RevocationBroadcast:
    def __init__(self, bus: Bus | None) -> None:
        self._bus = bus  # None: no bus to tell (tokens then die when they expire)

    async def announce(self, key: ApiKey) -> None:
        if self._bus is None or key.revoked_at is None:
            return
        event = events_pb2.ApiKeyRevoked(event_id=uuid.uuid4().hex, key_id=key.key_id, tenant_id=key.tenant_id,
                                         revoked_at=to_timestamp(key.revoked_at))
        try:
            await self._bus.publish(KEY_REVOKED, event, message_id=event.event_id, mandatory=False)  # a broadcast
        except Exception:
            # The key itself is revoked (no new tokens); only its live tokens outlast this, until they expire.
            log.exception("could not broadcast the revocation of %s; its tokens stay valid until they expire",
                          key.key_id)
