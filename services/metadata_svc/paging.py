"""ListVideos pages: newest first, keyset-paged. The page token is opaque to
callers; inside it names the last video of the previous page, so pages stay
stable while videos are added or deleted.

A page ends at page_size videos or at a byte budget, whichever comes first,
so a reply never nears gRPC's message limit (4 MiB by default in clients)
however long the videos' titles and probes are."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.shared.errors import InvalidArgument
from services.shared.ids import is_id

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_MAX_BYTES = 1024 * 1024
_TAG_BYTES = 1  # of a repeated field numbered below 16


def fitting_count(item_sizes: Iterable[int], max_bytes: int) -> int:
    """How many items, in order, one reply can carry as a repeated message field
    within max_bytes; at least one, so paging always moves on."""
    total, count = 0, 0
    for size in item_sizes:
        total += _TAG_BYTES + _varint_bytes(size) + size
        if total > max_bytes and count:
            break
        count += 1
    return count


def _varint_bytes(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


@dataclass(frozen=True)
class PageCursor:
    """The position after which the next page starts, in (created_at, video_id) descending order."""

    created_at: datetime
    video_id: str

    def token(self) -> str:
        raw = json.dumps({"c": self.created_at.isoformat(), "v": self.video_id}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def from_token(cls, token: str) -> PageCursor | None:
        if not token:
            return None
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            created_at = datetime.fromisoformat(raw["c"])
            video_id = raw["v"]
        except (binascii.Error, ValueError, KeyError, TypeError) as error:
            raise InvalidArgument("page_token is not one this service returned; start again without it") from error
        if created_at.tzinfo is None or not isinstance(video_id, str) or not is_id(video_id, "vid"):
            raise InvalidArgument("page_token is not one this service returned; start again without it")
        return cls(created_at, video_id)
