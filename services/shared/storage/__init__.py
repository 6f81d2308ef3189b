"""Object storage for sources and renditions.

    store = open_store(settings.resolved_storage_url)   # file:///dir or b2://bucket
    await store.put_file("t1/v1/source/clip.mov", path, "video/quicktime")
    async for chunk in store.read_chunks(key): ...

Keys are '/'-separated, relative, without '..'. See keys.py for the layout.
"""

from services.shared.storage._base import ObjectInfo, ObjectStore, validate_key
from services.shared.storage._open import open_store

__all__ = ["ObjectInfo", "ObjectStore", "open_store", "validate_key"]
