"""Signed, expiring URLs served by the gateway: single files (downloads) and whole
presentations (HLS and DASH playback). The signature sits in the URL's PATH,
never in its query string, because players resolve a playlist's relative
segment URLs against the playlist's URL and drop its query:

    <base>/files/<token>/<file name>          one object (GetDownloadUrl)
    <base>/play/<token>/<path in the folder>  every object under a folder (GetVideo's hls_url, dash_url)

    token = <base64url(scope)>.<expires, unix seconds>.<base64url(HMAC-SHA256(secret, route "\\n" scope "\\n" expires))>

`scope` is the storage key (files) or key prefix ending in "/" (play) the URL
may read. A request names what it wants after the token: for a file, the
object's own name; for a folder, a relative path that stays inside it (no
"..", ".", empty or absolute parts, checked after percent-decoding). The
route is signed too, so a file token does not open a folder. The gateway
routes both to SignedFileServer, which serves the object only while the
signature matches and the time has not passed. The secret is a setting or a
0600 file under <data_dir>/keys, made on first use.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote

from services.shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.shared.storage._base import validate_key

FILES_PREFIX = "/files/"
PLAY_PREFIX = "/play/"
ROUTES = (FILES_PREFIX, PLAY_PREFIX)
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
URL_SIGNING_KEY_FILE = "url-signing.key"  # under keys_dir, when VTC_URL_SIGNING_KEY is not set
_ASK_AGAIN = {FILES_PREFIX: "ask GetDownloadUrl for a new one", PLAY_PREFIX: "ask GetVideo for new playback URLs"}


@dataclass(frozen=True)
class SignedRequest:
    """What a verified URL may read: `key`, until `expires` (unix seconds)."""

    key: str
    expires: int
    route: str  # FILES_PREFIX or PLAY_PREFIX


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UrlSigner:
    """`secret`: the bytes, or how to get them on first use (so a service that
    never signs never needs a writable keys folder)."""

    def __init__(self, secret: bytes | Callable[[], bytes], base_url: str = DEFAULT_BASE_URL) -> None:
        self._secret_source = secret if callable(secret) else (lambda: secret)
        self._secret: bytes | None = None
        # The all-in-one learns its gateway's port only after Envoy started: it sets this then.
        self.base_url = base_url.rstrip("/")

    def _signature(self, route: str, scope: str, expires: int) -> bytes:
        if self._secret is None:
            secret = self._secret_source()
            if len(secret) < 16:
                raise FailedPrecondition("the URL signing key (VTC_URL_SIGNING_KEY) must be at least 16 bytes")
            self._secret = secret
        return hmac.new(self._secret, f"{route}\n{scope}\n{expires}".encode(), hashlib.sha256).digest()

    def _token(self, route: str, scope: str, expires: int) -> str:
        return f"{_b64(scope.encode())}.{expires}.{_b64(self._signature(route, scope, expires))}"

    def url(self, key: str, expires: int) -> str:
        """A URL for the one object `key`."""
        validate_key(key)
        name = PurePosixPath(key).name
        return f"{self.base_url}{FILES_PREFIX}{self._token(FILES_PREFIX, key, expires)}/{quote(name)}"

    def folder_url(self, prefix: str, entry: str, expires: int) -> str:
        """A URL for `entry` inside the folder `prefix` ("t/v/presentation/"), whose
        token also opens every other object under that folder by relative path."""
        if not prefix.endswith("/"):
            raise InvalidArgument(f"a signed folder ends with '/': {prefix!r}")
        validate_key(prefix + entry)
        return f"{self.base_url}{PLAY_PREFIX}{self._token(PLAY_PREFIX, prefix, expires)}/{quote(entry)}"

    def verify(self, path: str, now: float | None = None) -> SignedRequest:
        """What a request for `path` (/files/... or /play/..., without the query) may read.
        Raises PermissionDenied (bad, changed or expired URL) or InvalidArgument (a
        path that leaves the signed folder)."""
        route = next((r for r in ROUTES if path.startswith(r)), None)
        if route is None:
            raise PermissionDenied("not a signed URL")
        token, _, rest = path[len(route):].partition("/")
        scope_b64, _, tail = token.partition(".")
        expires_text, _, signature_b64 = tail.partition(".")
        try:
            scope, signature = _unb64(scope_b64).decode(), _unb64(signature_b64)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            scope, signature = "", b""
        if not scope or not signature or not expires_text.isdigit() or len(expires_text) > 12:
            raise PermissionDenied(f"this URL is not signed: {_ASK_AGAIN[route]}")
        expires = int(expires_text)
        if not hmac.compare_digest(self._signature(route, scope, expires), signature):
            raise PermissionDenied("this URL's signature does not match: it was changed, or signed with another key")
        if expires < (time.time() if now is None else now):
            raise PermissionDenied(f"this URL has expired: {_ASK_AGAIN[route]}")
        try:
            wanted = unquote(rest, errors="strict")
        except UnicodeDecodeError:
            raise InvalidArgument("a path that is not UTF-8") from None
        if route == FILES_PREFIX:
            if wanted != PurePosixPath(scope).name:
                raise PermissionDenied("this URL names another file than the one it was signed for")
            return SignedRequest(validate_key(scope), expires, route)
        # A folder: the relative path must stay inside it; validate_key refuses '..', '.', '' and '/x'.
        if not wanted or "\\" in wanted:
            raise InvalidArgument("name a file inside the signed folder")
        key = validate_key(scope + wanted)
        if not key.startswith(scope):
            raise InvalidArgument("this path leaves the signed folder")
        return SignedRequest(key, expires, route)


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
