from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from services.shared.storage._base import ObjectStore


def open_store(url: str) -> ObjectStore:
    """file:///abs/dir -> a local directory; b2://bucket -> Backblaze B2 (not built yet)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from services.shared.storage.local import LocalDirectoryStore

        return LocalDirectoryStore(Path(unquote(parsed.path)))
    if parsed.scheme == "b2":
        raise NotImplementedError("the B2 store is not built yet; use a file:// storage URL")
    raise ValueError(f"unknown storage URL {url!r}: expected file:///dir or b2://bucket")
