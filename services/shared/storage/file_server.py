"""The HTTP end of the signed URLs (signed_urls.py): GET and HEAD of
/files/<token>/<name> (one object) and /play/<token>/<path> (an HLS/DASH
presentation), with Range and Content-Length on every reply, CORS for players
on other origins, the Content-Type players check, and caching that keeps
segments (immutable) but revalidates playlists. The gateway (Envoy) routes
/files/ and /play/ here; the metadata service runs it beside its gRPC server.
Plain HTTP/1.1 on 127.0.0.1 from the standard library, in threads of its own:
serving a file is blocking disk reads and socket writes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

import grpc

from services.shared.errors import InvalidArgument, NotFound, PermissionDenied, VtcError
from services.shared.storage._base import ObjectStore
from services.shared.storage.local import PARTIAL_SUFFIX, LocalDirectoryStore
from services.shared.storage.signed_urls import ROUTES, SignedRequest, UrlSigner

log = logging.getLogger("vtc.storage.files")

SEND_CHUNK_BYTES = 1024 * 1024
_CONTENT_TYPES = {".mp4": "video/mp4", ".m4s": "video/iso.segment", ".m4v": "video/mp4", ".m4a": "audio/mp4",
                  ".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml",
                  ".ts": "video/mp2t", ".jpg": "image/jpeg", ".webp": "image/webp", ".vtt": "text/vtt",
                  ".json": "application/json", ".webm": "video/webm"}
# Playlists and manifests are revalidated (a re-transcode rewrites them); everything else
# under a signed URL never changes under its name: cached until the URL expires.
_REVALIDATED = frozenset({".m3u8", ".mpd", ".vtt", ".json"})
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    """A Range that starts past the end of the file (HTTP 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte, both included, for a single-range `Range` header; None
    means the whole file (no header, several ranges, or one we do not parse:
    RFC 9110 lets a server ignore Range)."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # bytes=-N: the last N bytes
        if int(last) == 0 or size == 0:
            raise Unsatisfiable()
        return max(size - int(last), 0), size - 1
    if int(first) >= size:
        raise Unsatisfiable()
    end = size - 1 if last == "" else min(int(last), size - 1)
    if end < int(first):
        return None
    return int(first), end


def content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def cache_control(name: str, seconds_left: int) -> str:
    """Private (a tenant's media stays out of shared caches); never cached past the URL's expiry."""
    if PurePosixPath(name).suffix.lower() in _REVALIDATED:
        return "private, no-cache"
    return f"private, max-age={max(seconds_left, 0)}, immutable"


@dataclass
class _Opened:
    """One object being served: its size and validators, and how to read a byte range of it."""

    size: int
    etag: str
    modified: float  # unix seconds
    read: Callable[[int, int], Iterator[bytes]]  # (first, last) both included
    close: Callable[[], None]


class _LocalFiles:
    """Objects of a local directory store: its files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, key: str) -> _Opened:
        path = self.root / key
        try:
            if key.endswith(PARTIAL_SUFFIX) or not path.resolve().is_relative_to(self.root):
                raise FileNotFoundError(path)  # half-written, or a symlink inside the root pointing out
            file = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound("no such file: it was deleted") from None
        stat = os.fstat(file.fileno())

        def read(first: int, last: int) -> Iterator[bytes]:
            file.seek(first)
            length = last - first + 1
            while length > 0 and (chunk := file.read(min(SEND_CHUNK_BYTES, length))):
                yield chunk
                length -= len(chunk)

        return _Opened(stat.st_size, f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"', stat.st_mtime, read, file.close)


@runtime_checkable
class BlockingReads(Protocol):
    """A remote store read from the server's threads (B2Store), without importing b2sdk here."""

    urls: UrlSigner | None

    def open_blocking(self, key: str) -> tuple[int, str, float]: ...

    def chunks_blocking(self, key: str, first: int, last: int, chunk_size: int) -> Iterator[bytes]: ...


class _ProxiedObjects:
    """Objects of a remote bucket (B2), proxied: players get one signed URL for a
    whole presentation, which B2's own authorizations cannot give (docs/storage.md)."""

    def __init__(self, store: BlockingReads) -> None:
        self.store = store

    def open(self, key: str) -> _Opened:
        size, version_id, uploaded_at = self.store.open_blocking(key)

        def read(first: int, last: int) -> Iterator[bytes]:
            return self.store.chunks_blocking(key, first, last, SEND_CHUNK_BYTES)

        return _Opened(size, f'"{version_id}"', uploaded_at, read, lambda: None)


_Objects = _LocalFiles | _ProxiedObjects


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Envoy reuses its upstream connections
    server_version = "vtc-files"
    sys_version = ""
    server: _Server

    _CORS: ClassVar[dict[str, str]] = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, ETag",
    }

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
        self._reply_empty(HTTPStatus.NO_CONTENT, {"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                                                  "Access-Control-Allow-Headers": "Range",
                                                  "Access-Control-Max-Age": "86400"})

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        try:
            signed = self.server.signer.verify(urlsplit(self.path).path)  # the query string plays no part
            opened = self.server.objects.open(signed.key)
        except VtcError as error:
            self._reply_error(error)
            return
        try:
            self._send_object(opened, signed, body=body)
        finally:
            opened.close()

    def _send_object(self, opened: _Opened, signed: SignedRequest, *, body: bool) -> None:
        size, name = opened.size, PurePosixPath(signed.key).name
        headers = {"Content-Type": content_type(name), "Accept-Ranges": "bytes", "ETag": opened.etag,
                   "Last-Modified": formatdate(opened.modified, usegmt=True),
                   "Cache-Control": cache_control(name, signed.expires - int(time.time()))}
        if self.headers.get("If-None-Match") == opened.etag:
            self._start(HTTPStatus.NOT_MODIFIED, {**headers, "Content-Length": str(size)})  # no body
            return
        try:
            wanted = byte_range(self.headers.get("Range"), size)
        except Unsatisfiable:
            self._reply_empty(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, {"Content-Range": f"bytes */{size}"})
            return
        first, last = wanted or (0, size - 1)
        headers["Content-Length"] = str(last - first + 1)
        if wanted is not None:
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        self._start(HTTPStatus.PARTIAL_CONTENT if wanted is not None else HTTPStatus.OK, headers)
        if not body or size == 0:
            return
        sent = 0
        try:
            for chunk in opened.read(first, last):
                self.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the player moved on (seeked): nothing to do
            return
        except VtcError as error:  # storage failed mid-way: the status is sent, so only a short body can say so
            log.warning("serving %s stopped at byte %d of %d: %s", name, sent, last - first + 1, error.message)
        if sent < last - first + 1:  # the client sees a short body and retries
            self.close_connection = True

    def _start(self, status: HTTPStatus, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**self._CORS, **headers}.items():
            self.send_header(name, value)
        self.end_headers()

    def _reply_empty(self, status: HTTPStatus, headers: dict[str, str]) -> None:
        self._start(status, {"Content-Length": "0", **headers})

    def _reply_error(self, error: VtcError) -> None:
        # The same JSON the gateway gives for a gRPC error: {"code": <gRPC code>, "message": ...}.
        status = (HTTPStatus.FORBIDDEN if isinstance(error, PermissionDenied | InvalidArgument) else
                  HTTPStatus.NOT_FOUND if isinstance(error, NotFound) else HTTPStatus.SERVICE_UNAVAILABLE)
        body = json.dumps({"code": error.code.value[0], "message": error.message}).encode()
        self._start(status, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Never the path: a signed URL's path is its credential.
        route = next((r for r in ROUTES if self.path.startswith(r)), "?")
        log.debug("files: %s %s... %s", self.command, route, code)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass  # http.server's other messages quote the request line, token included


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], objects: _Objects, signer: UrlSigner) -> None:
        self.objects = objects
        self.signer = signer
        super().__init__(address, _Handler)


class SignedFileServer:
    """A component (see services.shared.server) serving a store's objects by signed URL on host:port."""

    service_names: tuple[str, ...] = ()

    def __init__(self, store: LocalDirectoryStore | BlockingReads, signer: UrlSigner, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self._objects: _Objects = (_LocalFiles(store.root) if isinstance(store, LocalDirectoryStore)
                                   else _ProxiedObjects(store))
        self._signer = signer
        self._host, self._requested_port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """host:port where the gateway reaches it (after start)."""
        assert self._server is not None, "not started"
        return f"{self._host}:{self._server.server_address[1]}"

    def register(self, server: grpc.aio.Server) -> None:
        return None

    async def start(self) -> None:
        try:
            self._server = _Server((self._host, self._requested_port), self._objects, self._signer)
        except OSError as error:
            raise RuntimeError(f"cannot serve signed file URLs on {self._host}:{self._requested_port}: "
                               f"{error.strerror}") from error
        self._thread = threading.Thread(target=self._server.serve_forever, name="vtc-files", daemon=True)
        self._thread.start()
        log.info("serving signed file URLs on %s", self.address)

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        await asyncio.to_thread(server.shutdown)
        server.server_close()


def signer_of(store: ObjectStore) -> UrlSigner | None:
    """What signs the URLs SignedFileServer serves for `store`; None when it serves none."""
    return store.urls if isinstance(store, LocalDirectoryStore | BlockingReads) else None


def signed_file_server(store: ObjectStore, host: str, port: int) -> list[SignedFileServer]:
    """The server a store's playback URLs (and a local store's download URLs) need, if any."""
    signer = signer_of(store)
    if isinstance(store, LocalDirectoryStore | BlockingReads) and signer is not None:
        return [SignedFileServer(store, signer, host, port)]
    return []
