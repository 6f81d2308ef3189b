"""Removes stored sources no video row points to. An upload service killed
between storing a source and RegisterVideo leaves one behind, and nothing
else would ever delete it. Only sources older than the grace period are
touched, so an upload on its way to RegisterVideo keeps its file; each
replica may sweep, deleting twice is harmless."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta

from services.metadata_svc.catalog import VideoCatalog
from services.shared.background import cancel_and_wait
from services.shared.storage import ObjectStore
from services.shared.storage.keys import video_prefix

log = logging.getLogger("vtc.metadata.orphans")

# <tenant>/<video>/source.<ext>, as storage.keys.source_key writes it.
_SOURCE = re.compile(r"(?P<tenant>[^/]+)/(?P<video>[^/]+)/source(\.[^/]*)?")


class OrphanSourceSweeper:
    def __init__(self, catalog: VideoCatalog, store: ObjectStore, *, grace_seconds: float,
                 interval_seconds: float) -> None:
        self._catalog = catalog
        self._store = store
        self._grace = timedelta(seconds=grace_seconds)
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self, now: datetime | None = None) -> list[str]:
        """Deletes what is stored under each orphaned source's video; returns the sources removed."""
        cutoff = (now or datetime.now(UTC)) - self._grace
        candidates: dict[str, tuple[str, str]] = {}  # video_id -> (tenant, source key)
        async for stored in self._store.list_objects():
            match = _SOURCE.fullmatch(stored.key)
            if match and stored.modified_at is not None and stored.modified_at <= cutoff:
                candidates[match["video"]] = (match["tenant"], stored.key)
        if not candidates:
            return []
        known = await self._catalog.known_video_ids(list(candidates))
        removed = []
        for video_id, (tenant, key) in candidates.items():
            if video_id not in known:
                await self._store.delete_prefix(video_prefix(tenant, video_id))
                removed.append(key)
        if removed:
            log.info("removed %d stored sources no video points to (uploads cut off before they were registered)",
                     len(removed), extra={"fields": {"sources": removed}})
        return removed

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="orphan-source-sweeper")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:  # storage or DB away: the next round tries again
                log.warning("could not sweep orphaned sources", exc_info=True)
            await asyncio.sleep(self._interval)
