"""Objects in a Backblaze B2 bucket through b2sdk: the scale-out store.

b2sdk's API blocks, so every call runs in a worker thread. Retrying is
b2sdk's job where it has one: each B2 call goes through its HTTP layer, which
retries transient errors (5xx, 429 after Retry-After, resets, timeouts) with
exponential backoff; uploads also retry on a fresh upload URL; an expired
account token is renewed and the call repeated. b2sdk does not resume a
download stream cut mid-way, so `read_chunks` does (by Range, from the byte it
got to). Whatever still fails is mapped once, in `_rejection`:

    missing file                         -> NotFound
    transient, retries used up           -> Unavailable (a job is redelivered)
    anything else (key, capability, cap,
    no such bucket)                      -> StorageRejected (a job fails with B2's reason)
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import requests
from b2sdk.v2 import B2Api, Bucket, InMemoryAccountInfo, UploadSourceLocalFile, WriteIntent
from b2sdk.v2.exception import (
    AccessDenied,
    B2Error,
    CapExceeded,
    FileNotPresent,
    MaxRetriesExceeded,
    NonExistentBucket,
    Unauthorized,
)

from services.shared.errors import NotFound, StorageRejected, Unavailable, VtcError
from services.shared.storage._base import DownloadUrl, ObjectInfo, validate_key
from services.shared.storage.signed_urls import UrlSigner

log = logging.getLogger("vtc.storage.b2")

T = TypeVar("T")

# A stream cut mid-way is picked up where it stopped, this many times.
STREAM_RESUMES = 3
# B2 download authorizations last at most a week.
MAX_URL_TTL_SECONDS = 7 * 24 * 3600
_STREAM_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                  requests.exceptions.Timeout, ConnectionError, TimeoutError)


class B2Store:
    """The bucket `bucket_name`, reached with an application key.

    Files of at least `large_file_threshold_bytes` go up with B2's large-file
    API in parts of half that size; smaller ones in one request. `api` is for
    tests (b2sdk's RawSimulator); by default the real B2 service.
    """

    def __init__(self, bucket_name: str, key_id: str, application_key: str, *,
                 large_file_threshold_bytes: int = 200 * 1024 * 1024, api: B2Api | None = None,
                 realm: str = "production", urls: UrlSigner | None = None) -> None:
        if not bucket_name:
            raise ValueError("a b2:// storage URL names a bucket: b2://BUCKET")
        if not key_id or not application_key:
            raise ValueError("b2:// storage needs VTC_B2_KEY_ID and VTC_B2_APPLICATION_KEY")
        self._bucket_name = bucket_name
        self._key_id = key_id
        self._application_key = application_key
        self._realm = realm
        self._part_size = max(large_file_threshold_bytes // 2, 1)
        self._api = api or B2Api(InMemoryAccountInfo())
        self._bucket_found: Bucket | None = None
        self._connect_lock = threading.Lock()
        # Signs the playback URLs the gateway serves from this bucket (downloads use B2's own authorizations).
        self.urls = urls

    def _bucket(self) -> Bucket:
        """Authorizes and finds the bucket on first use (blocking; call in a thread)."""
        with self._connect_lock:
            if self._bucket_found is None:
                self._api.authorize_account(self._realm, self._key_id, self._application_key)
                self._bucket_found = self._api.get_bucket_by_name(self._bucket_name)
            return self._bucket_found

    async def _run(self, doing: str, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except (B2Error, *_STREAM_ERRORS) as error:
            raise _rejection(error, doing, self._bucket_name) from error

    async def put_file(self, key: str, path: Path, content_type: str, *, take: bool = False) -> ObjectInfo:
        validate_key(key)  # `take` changes nothing here: the bytes go to B2 either way

        def upload() -> int:
            version = self._bucket().create_file(
                [WriteIntent(UploadSourceLocalFile(str(path)))], key, content_type=content_type,
                min_part_size=self._part_size, recommended_upload_part_size=self._part_size)
            return int(version.size)

        return ObjectInfo(key, await self._run(f"store {key!r}", upload))

    async def get_file(self, key: str, dest: Path) -> ObjectInfo:
        validate_key(key)

        def download() -> int:
            downloaded = self._bucket().download_file_by_name(key)
            downloaded.save_to(str(dest))  # b2sdk resumes a cut transfer and checks the SHA-1
            return dest.stat().st_size

        return ObjectInfo(key, await self._run(f"read {key!r}", download))

    async def read_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        validate_key(key)
        doing = f"read {key!r}"
        bucket = await self._run(doing, self._bucket)
        size = (await self.stat(key)).size_bytes
        sent, cuts = 0, 0
        while sent < size:
            stream = await self._run(doing, partial(_ChunkStream, bucket, key, sent, size - 1, chunk_size))
            cause: BaseException | None = None
            try:
                while chunk := await asyncio.to_thread(stream.next_chunk):
                    sent += len(chunk)
                    yield chunk
            except _STREAM_ERRORS as error:
                cause = error
            finally:
                await asyncio.to_thread(stream.close)
            if sent < size:  # cut, with an error or silently: carry on from the byte we got to
                cuts += 1
                if cuts > STREAM_RESUMES:
                    raise Unavailable(f"B2 cut the download of {key!r} {cuts} times (last at byte {sent} of "
                                      f"{size}); try again later") from cause
                log.warning("download of %s cut at byte %d of %d (%s); resuming", key, sent, size,
                            _text(cause) if cause else "stream ended early")

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        version = await self._run(f"look up {key!r}", lambda: self._bucket().get_file_info_by_name(key))
        return ObjectInfo(key, int(version.content_length))

    async def delete_prefix(self, prefix: str) -> int:
        base = prefix.rstrip("/")
        validate_key(base)

        def delete() -> int:
            bucket = self._bucket()
            # The object named exactly `base`, then everything under `base/`; every
            # version, hide markers included, so nothing of it stays billable.
            versions = [*bucket.list_file_versions(base),
                        *(version for version, _ in bucket.ls(base + "/", latest_only=False, recursive=True))]
            for version in versions:
                self._api.delete_file_version(version.id_, version.file_name)
            return len({version.file_name for version in versions if version.action == "upload"})

        return await self._run(f"delete {prefix!r}", delete)

    async def list_objects(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        doing = f"list {prefix!r}"
        bucket = await self._run(doing, self._bucket)
        start: str | None = None
        while True:
            # The latest version of each name, a page (up to 1000 names) per call.
            page = await self._run(doing, partial(self._api.session.list_file_names, bucket.id_, start, 1000,
                                                  prefix or None))
            for item in page["files"]:
                if item["action"] == "upload":
                    yield ObjectInfo(item["fileName"], int(item["contentLength"]),
                                     datetime.fromtimestamp(item["uploadTimestamp"] / 1000, UTC))
            start = page.get("nextFileName")
            if start is None:
                return

    # --- blocking reads, for threads other than the event loop's (the signed file server) ---

    def open_blocking(self, key: str) -> tuple[int, str, float]:
        """(size, version id, uploaded at in unix seconds) of the object. Raises NotFound."""
        validate_key(key)
        try:
            version = self._bucket().get_file_info_by_name(key)
        except (B2Error, *_STREAM_ERRORS) as error:
            raise _rejection(error, f"look up {key!r}", self._bucket_name) from error
        return int(version.content_length), str(version.id_), int(version.upload_timestamp) / 1000

    def chunks_blocking(self, key: str, first: int, last: int, chunk_size: int) -> Iterator[bytes]:
        """Bytes first..last (both included) of the object, by a ranged download."""
        try:
            stream = _ChunkStream(self._bucket(), key, first, last, chunk_size)
        except (B2Error, *_STREAM_ERRORS) as error:
            raise _rejection(error, f"read {key!r}", self._bucket_name) from error
        try:
            while chunk := stream.next_chunk():
                yield chunk
        finally:
            stream.close()

    async def download_url(self, key: str, ttl_seconds: int) -> DownloadUrl:
        validate_key(key)
        ttl = max(1, min(ttl_seconds, MAX_URL_TTL_SECONDS))

        def authorize() -> str:
            bucket = self._bucket()
            bucket.get_file_info_by_name(key)  # NotFound rather than a URL that 404s
            # A download authorization for this one name: B2 checks it and its expiry, our services see nothing.
            token = bucket.get_download_authorization(key, ttl)
            return f"{bucket.get_download_url(key)}?Authorization={quote(token, safe='')}"

        expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
        return DownloadUrl(await self._run(f"share {key!r}", authorize), expires_at)


class _ChunkStream:
    """One ranged download response, read chunk by chunk (blocking)."""

    def __init__(self, bucket: Bucket, key: str, first: int, last: int, chunk_size: int) -> None:
        self._response = bucket.download_file_by_name(key, range_=(first, last)).response
        self._chunks: Iterator[bytes] = self._response.iter_content(chunk_size=chunk_size)

    def next_chunk(self) -> bytes:
        return next(self._chunks, b"")

    def close(self) -> None:
        self._response.close()


def _rejection(error: B2Error | OSError, doing: str, bucket: str) -> VtcError:
    """The domain error for what b2sdk raised, with a message a person can act on."""
    if isinstance(error, NonExistentBucket):
        return StorageRejected(f"B2 has no bucket {bucket!r} this key can see (VTC_STORAGE_URL); could not {doing}")
    if isinstance(error, FileNotPresent):
        return NotFound(f"no object {doing.split(' ', 1)[-1]} in storage")
    if _transient(error):
        return Unavailable(f"B2 did not {doing} after b2sdk's retries ({_text(error)}); try again later")
    if isinstance(error, Unauthorized | AccessDenied):
        return StorageRejected(f"B2 refused to {doing}: {_text(error)}; check VTC_B2_KEY_ID / "
                               f"VTC_B2_APPLICATION_KEY and that the key may read, write, delete and share "
                               f"files in {bucket!r}")
    if isinstance(error, CapExceeded):
        return StorageRejected(f"B2 refused to {doing}: {error} Raise the cap in the Backblaze account "
                               "(Caps & Alerts), then try again")
    return StorageRejected(f"B2 refused to {doing}: {_text(error)}")


_EXPIRED_TOKEN_CODES = frozenset({"expired_auth_token", "auth_token_expired"})


def _transient(error: BaseException) -> bool:
    """Would the same call likely work a little later?"""
    if isinstance(error, MaxRetriesExceeded):  # upload retries used up: transient if every try was
        return all(_transient(e) for e in error.exception_info_list if isinstance(e, BaseException))
    if isinstance(error, Unauthorized):  # the upload path retries these too, but only an expired token passes
        return error.code in _EXPIRED_TOKEN_CODES
    if isinstance(error, B2Error):
        return bool(error.should_retry_http() or error.should_retry_upload())
    return isinstance(error, _STREAM_ERRORS)


def _text(error: BaseException) -> str:
    if isinstance(error, MaxRetriesExceeded) and error.exception_info_list:
        return f"{error.limit} tries, the last: {_text(error.exception_info_list[-1])}"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
