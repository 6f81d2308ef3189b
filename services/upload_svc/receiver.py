"""Reads one Upload stream: the header first, then the chunks into a spool file
on disk, hashing as they arrive. The file is never held whole in memory, and
disk writes and hashing run in a worker thread so the event loop stays free.

A client that goes silent is not waited for: each message must arrive within
UploadLimits.idle_seconds of the one before, or the upload ends with
DEADLINE_EXCEEDED (and the spool file goes with it)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from services.process_svc.profiles.document import read_profile_document
from services.shared.errors import DeadlineExceeded, InvalidArgument
from services.shared.validation import MAX_TITLE_CHARS, file_name, free_text, sha256_hex, slug
from vtc.v1 import upload_pb2

SPOOL_PREFIX = "upload-"
DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    chunk_max_bytes: int
    idle_seconds: float  # longest silence allowed before the header and between chunks


@dataclass(frozen=True)
class UploadHeader:
    filename: str  # the base name only: the client's folders are not ours to keep
    size_bytes: int
    sha256: str  # lower-case hex, or "" when the client sent none
    profile: str
    title: str
    profile_document: str = ""  # a customer's own profile; `profile` is then its name

    @classmethod
    def from_proto(cls, header: upload_pb2.UploadHeader, limits: UploadLimits) -> UploadHeader:
        filename = file_name(header.filename, "header.filename")
        if header.size_bytes == 0:
            raise InvalidArgument("the file is empty (header.size_bytes is 0): there is nothing to transcode")
        if header.size_bytes < 0:
            raise InvalidArgument(f"header.size_bytes must be the file's size in bytes; got {header.size_bytes}")
        if header.size_bytes > limits.max_bytes:
            raise InvalidArgument(
                f"the file is {header.size_bytes} bytes; uploads may be at most {limits.max_bytes} bytes")
        profile = header.profile.strip()
        if header.profile_document:  # checked before any byte of the file arrives
            profile = read_profile_document(header.profile_document, "header.profile_document").name
        return cls(filename=filename, size_bytes=header.size_bytes, sha256=sha256_hex(header.sha256, "header.sha256"),
                   profile=slug(profile, "header.profile") if profile else DEFAULT_PROFILE,
                   title=free_text(header.title, "header.title", max_chars=MAX_TITLE_CHARS) or filename,
                   profile_document=header.profile_document)


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    size_bytes: int
    sha256: str


@contextlib.contextmanager
def spool_file(spool_dir: Path, filename: str) -> Iterator[Path]:
    """A fresh file in spool_dir, removed on exit however the upload ends
    (rejected, failed, or cancelled by the client). It keeps the source's
    suffix because FFmpeg uses it as a hint for some formats."""
    suffix = PurePosixPath(filename).suffix.lower()[:10]
    descriptor, name = tempfile.mkstemp(prefix=SPOOL_PREFIX, suffix=suffix, dir=spool_dir)
    os.close(descriptor)
    try:
        yield Path(name)
    finally:
        # Synchronous on purpose: an unlink is quick, and an await here could be
        # interrupted by a second cancellation and leave the file behind.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def remove_stale_spool_files(spool_dir: Path) -> int:
    """Spool files left by a process that died mid-upload; none can be in use at start."""
    removed = 0
    for path in spool_dir.glob(f"{SPOOL_PREFIX}*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


class UploadReceiver:
    """One Upload stream. Call read_header(), then receive_into(path).

    Over REST, Envoy's transcoder repeats the header (from the query string) in
    every message and splits the body across messages, so headers after the
    first are ignored, as the contract says."""

    def __init__(self, requests: AsyncIterable[upload_pb2.UploadRequest], limits: UploadLimits) -> None:
        self._requests: AsyncIterator[upload_pb2.UploadRequest] = aiter(requests)
        self._limits = limits
        self._header: UploadHeader | None = None
        self._first_chunk = b""

    async def read_header(self) -> UploadHeader:
        try:
            first = await self._next_message("the header")
        except StopAsyncIteration:
            raise InvalidArgument("the upload stream was empty: the first message must carry the header") from None
        if not first.HasField("header"):
            raise InvalidArgument("the first upload message must carry the header (filename, size_bytes)")
        self._header = UploadHeader.from_proto(first.header, self._limits)
        self._first_chunk = first.chunk.data
        return self._header

    async def receive_into(self, path: Path) -> ReceivedFile:
        """Writes every chunk to path and checks the byte count and digest the header declared."""
        header = self._header
        if header is None:
            raise RuntimeError("read_header() must come first")
        digest = hashlib.sha256()
        received = 0
        handle: BinaryIO = await asyncio.to_thread(open, path, "wb")
        try:
            async for data in self._chunks():
                received += len(data)
                if received > header.size_bytes:
                    raise InvalidArgument(
                        f"received more than the {header.size_bytes} bytes header.size_bytes declared: "
                        "declare the file's exact size")
                await asyncio.to_thread(_absorb, handle, digest, data)
            await asyncio.to_thread(handle.flush)
        finally:
            handle.close()
        if received != header.size_bytes:
            raise InvalidArgument(
                f"received {received} bytes but header.size_bytes declared {header.size_bytes}: "
                "the upload was cut short or the declared size is wrong")
        actual = digest.hexdigest()
        if header.sha256 and actual != header.sha256:
            raise InvalidArgument(
                f"sha256 mismatch: the header declared {header.sha256} but the received bytes hash to {actual}; "
                "the file changed or was damaged on the way")
        return ReceivedFile(path=path, size_bytes=received, sha256=actual)

    async def _chunks(self) -> AsyncIterator[bytes]:
        if self._first_chunk:
            yield self._checked(self._first_chunk)
        while True:
            try:
                request = await self._next_message("the next chunk")
            except StopAsyncIteration:
                return
            if request.chunk.data:
                yield self._checked(request.chunk.data)

    async def _next_message(self, awaited: str) -> upload_pb2.UploadRequest:
        """The next message, or DeadlineExceeded after idle_seconds of silence."""
        try:
            async with asyncio.timeout(self._limits.idle_seconds):
                return await anext(self._requests)
        except TimeoutError:
            raise DeadlineExceeded(
                f"no data for {self._limits.idle_seconds:g} s while waiting for {awaited}: the upload stalled "
                "and was dropped; send it again (uploads must keep sending)") from None

    def _checked(self, data: bytes) -> bytes:
        if len(data) > self._limits.chunk_max_bytes:
            raise InvalidArgument(
                f"a chunk of {len(data)} bytes is over the limit of {self._limits.chunk_max_bytes} bytes per message: "
                "send the file in smaller chunks")
        return data


def _absorb(handle: BinaryIO, digest: hashlib._Hash, data: bytes) -> None:
    # hashlib releases the GIL for large buffers, so this thread does not hold up the loop.
    digest.update(data)
    handle.write(data)
