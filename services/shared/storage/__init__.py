"""Object storage for sources and renditions.

    store = open_store(settings)   # file:///dir or b2://bucket
    await store.put_file("t1/v1/source/clip.mov", path, "video/quicktime")
    async for chunk in store.read_chunks(key): ...

Keys are '/'-separated, relative, without '..'. See keys.py for the layout.
"""

from services.shared.storage._base import DownloadUrl, ObjectInfo, ObjectStore, validate_key
from services.shared.storage._open import open_store

__all__ = ["DownloadUrl", "ObjectInfo", "ObjectStore", "open_store", "validate_key"]
