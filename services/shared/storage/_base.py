from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from services.shared.errors import InvalidArgument
from services.shared.ids import shown

MAX_KEY_CHARS = 1024  # S3's and B2's limit, in bytes; ours are far shorter


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size_bytes: int
    modified_at: datetime | None = None  # filled in by list_objects


@dataclass(frozen=True)
class DownloadUrl:
    """A URL anyone holding it may GET the object from (with Range) until expires_at."""

    url: str
    expires_at: datetime


class ObjectStore(Protocol):
    async def put_file(self, key: str, path: Path, content_type: str, *, take: bool = False) -> ObjectInfo:
        """Stores the file at `path` under `key`, replacing any object there. `take`: the caller
        is done with the file and will delete it, so the store may keep the file itself rather
        than a copy (the local store links it into place when it is on the same file system)."""
        ...

    async def get_file(self, key: str, dest: Path) -> ObjectInfo:
        """Copies the object to `dest`. Raises NotFound."""
        ...

    def read_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """The object's bytes in chunks of at most chunk_size. Raises NotFound."""
        ...

    async def stat(self, key: str) -> ObjectInfo:
        """Raises NotFound."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Deletes every object under prefix (every stored version of it); returns how many objects."""
        ...

    async def download_url(self, key: str, ttl_seconds: int) -> DownloadUrl:
        """A time-limited URL serving the object without passing through our services.
        Raises NotFound, or FailedPrecondition when this store cannot hand out URLs."""
        ...

    def list_objects(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object under prefix, with its size and when it was stored, in no particular order."""
        ...


def validate_key(key: str) -> str:
    """The key, once it is relative, '/'-separated, without empty, '.' or '..' parts and printable."""
    parts = key.split("/")
    if (not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts)
            or not key.isprintable() or len(key) > MAX_KEY_CHARS):
        raise InvalidArgument(f"bad storage key {shown(key)}")
    return key
