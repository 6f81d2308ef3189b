"""Playback URLs: GetVideo's hls_url and dash_url, signed folder URLs of the
video's presentation (services/shared/storage/signed_urls.py) that the gateway
serves at /play/ to stock players."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from services.shared.errors import NotFound
from services.shared.storage import ObjectStore
from services.shared.storage.keys import presentation_prefix
from services.shared.storage.signed_urls import UrlSigner

HLS_ENTRY = "master.m3u8"
DASH_ENTRY = "manifest.mpd"


@dataclass(frozen=True)
class PlaybackUrls:
    hls_url: str  # "" when the presentation has no HLS master playlist
    dash_url: str  # "" when it has no MPD
    expires_at: datetime


class Playback:
    """Signs a video's presentation for playback, when it has one. `signer` is None
    where no file server serves signed URLs (then videos get no playback URLs)."""

    def __init__(self, store: ObjectStore, signer: UrlSigner | None) -> None:
        self._store = store
        self._signer = signer

    async def urls(self, tenant_id: str, video_id: str, ttl_seconds: int) -> PlaybackUrls | None:
        if self._signer is None:
            return None
        prefix = presentation_prefix(tenant_id, video_id)
        present = [entry for entry in (HLS_ENTRY, DASH_ENTRY) if await self._exists(prefix + entry)]
        if not present:
            return None
        expires = int(time.time()) + ttl_seconds
        hls, dash = (self._signer.folder_url(prefix, entry, expires) if entry in present else ""
                     for entry in (HLS_ENTRY, DASH_ENTRY))
        return PlaybackUrls(hls, dash, datetime.fromtimestamp(expires, UTC))

    async def _exists(self, key: str) -> bool:
        try:
            await self._store.stat(key)
        except NotFound:
            return False
        return True
