"""Signed, expiring URLs for the local directory store: what B2's download
authorizations are for the B2 store.

    <base>/files/<key>?expires=<unix seconds>&signature=<hex HMAC-SHA256(secret, key "\\n" expires)>

The gateway routes /files/ to SignedFileServer, which serves the object only
while the signature matches and the time has not passed. The secret is a
setting or a 0600 file under <data_dir>/keys, made on first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote

from services.shared.errors import FailedPrecondition, PermissionDenied
from services.shared.storage._base import validate_key

FILES_PREFIX = "/files/"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"


class UrlSigner:
    """`secret`: the bytes, or how to get them on first use (so a service that
    never signs never needs a writable keys folder)."""

    def __init__(self, secret: bytes | Callable[[], bytes], base_url: str = DEFAULT_BASE_URL) -> None:
        self._secret_source = secret if callable(secret) else (lambda: secret)
        self._secret: bytes | None = None
        # The all-in-one learns its gateway's port only after Envoy started: it sets this then.
        self.base_url = base_url.rstrip("/")

    def _signature(self, key: str, expires: int) -> str:
        if self._secret is None:
            secret = self._secret_source()
            if len(secret) < 16:
                raise FailedPrecondition("the URL signing key (VTC_URL_SIGNING_KEY) must be at least 16 bytes")
            self._secret = secret
        return hmac.new(self._secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, key: str, expires: int) -> str:
        validate_key(key)
        return (f"{self.base_url}{FILES_PREFIX}{quote(key)}"
                f"?expires={expires}&signature={self._signature(key, expires)}")

    def verify(self, path: str, expires: str, signature: str, now: float | None = None) -> str:
        """The key a request for `path` (/files/...) may read. Raises PermissionDenied."""
        if not path.startswith(FILES_PREFIX):
            raise PermissionDenied("not a file URL")
        key = unquote(path[len(FILES_PREFIX):])
        if not expires.isdigit() or not signature:
            raise PermissionDenied("this URL is not signed: ask GetDownloadUrl for one")
        if not hmac.compare_digest(self._signature(key, int(expires)), signature):
            raise PermissionDenied("this URL's signature does not match: it was changed, or signed with another key")
        if int(expires) < (time.time() if now is None else now):
            raise PermissionDenied("this URL has expired: ask GetDownloadUrl for a new one")
        return validate_key(key)


def load_or_create_secret(path: Path) -> bytes:
    """The secret in `path`, made (32 random bytes, hex, mode 0600) if there is none."""
    try:
        return _load_or_create(path)
    except OSError as error:
        raise FailedPrecondition(f"no URL signing key: cannot make {path} ({error.strerror}); set "
                                 "VTC_URL_SIGNING_KEY, the same for every metadata replica") from error


def _load_or_create(path: Path) -> bytes:
    with contextlib.suppress(FileNotFoundError):
        if text := path.read_text().strip():
            return bytes.fromhex(text)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(staging, path)
    finally:
        os.unlink(staging)
    return bytes.fromhex(path.read_text().strip())
