"""How many uploads each tenant has in progress on this server, and the cap on it.

A stalled or slow upload holds a descriptor, a spool file and a stream; one
tenant opening hundreds of them must not exhaust the server for the others.
The count is per upload server (each replica counts its own)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from services.shared.errors import ResourceExhausted


class UploadSlots:
    def __init__(self, per_tenant: int) -> None:
        self._per_tenant = per_tenant
        self._in_progress: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, tenant_id: str) -> Iterator[None]:
        """One slot for the duration of an upload, or ResourceExhausted when the tenant has none left."""
        if self._in_progress[tenant_id] >= self._per_tenant:
            raise ResourceExhausted(
                f"too many uploads in progress: this tenant may have at most {self._per_tenant} at once "
                "(upload_max_concurrent_per_tenant); wait for one to finish, then retry")
        self._in_progress[tenant_id] += 1
        try:
            yield
        finally:
            self._in_progress[tenant_id] -= 1
            if not self._in_progress[tenant_id]:
                del self._in_progress[tenant_id]

    def in_progress(self, tenant_id: str) -> int:
        return self._in_progress[tenant_id]
