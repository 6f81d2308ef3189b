from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from services.shared.storage._base import ObjectStore
from services.shared.storage.measured import measure_store

if TYPE_CHECKING:
    from services.shared.settings import CommonSettings


def open_store(settings: CommonSettings) -> ObjectStore:
    """The store VTC_STORAGE_URL names: file:///abs/dir (a local directory) or
    b2://bucket (Backblaze B2, with VTC_B2_KEY_ID and VTC_B2_APPLICATION_KEY);
    its operations measured (measured.py)."""
    url = settings.resolved_storage_url
    parsed = urlparse(url)
    from services.shared.storage.signed_urls import (
        DEFAULT_BASE_URL,
        URL_SIGNING_KEY_FILE,
        UrlSigner,
        load_or_create_secret,
    )

    configured = settings.url_signing_key.get_secret_value().encode()
    key_file = settings.keys_dir / URL_SIGNING_KEY_FILE
    # Made on first use: a service that signs nothing needs no writable keys folder.
    urls = UrlSigner(configured or (lambda: load_or_create_secret(key_file)),
                     settings.download_base_url or DEFAULT_BASE_URL)
    if parsed.scheme == "file":
        from services.shared.storage.local import LocalDirectoryStore

        return measure_store(LocalDirectoryStore(Path(unquote(parsed.path)), urls), "local")
    if parsed.scheme == "b2":
        from services.shared.storage.b2 import B2Store

        if parsed.path.strip("/"):
            raise ValueError(f"storage URL {url!r}: a b2:// URL names only a bucket (b2://BUCKET)")
        return measure_store(B2Store(parsed.netloc, settings.b2_key_id, settings.b2_application_key.get_secret_value(),
                                     large_file_threshold_bytes=settings.b2_large_file_threshold_bytes, urls=urls),
                             "b2")
    raise ValueError(f"unknown storage URL {url!r}: expected file:///dir or b2://bucket")
