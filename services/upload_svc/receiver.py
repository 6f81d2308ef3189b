"""Reads one Upload stream: the header first, then the chunks into a spool file
on disk, hashing as they arrive. The file is never held whole in memory, and
disk writes run on a worker thread, in batches, while the event loop receives
the next chunks (spool.py).

A client that goes silent is not waited for: each message must arrive within
UploadLimits.idle_seconds of the one before, or the upload ends with
DEADLINE_EXCEEDED (and the spool file goes with it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from services.process_svc.profiles.document import read_profile_document
from services.shared.errors import DeadlineExceeded, InvalidArgument
from services.shared.validation import MAX_TITLE_CHARS, file_name, free_text, sha256_hex, slug
from services.upload_svc.spool import SpoolWriter
from services.upload_svc.wire import UploadMessage
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
    document_output_types: frozenset[str] = frozenset()  # that document's output types ("video", "audio"...)

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
        profile, output_types = header.profile.strip(), frozenset[str]()
        if header.profile_document:  # checked before any byte of the file arrives
            document = read_profile_document(header.profile_document, "header.profile_document")
            profile, output_types = document.name, frozenset(o.type for o in document.outputs)
        return cls(filename=filename, size_bytes=header.size_bytes, sha256=sha256_hex(header.sha256, "header.sha256"),
                   profile=slug(profile, "header.profile") if profile else DEFAULT_PROFILE,
                   title=free_text(header.title, "header.title", max_chars=MAX_TITLE_CHARS) or filename,
                   profile_document=header.profile_document, document_output_types=output_types)


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    size_bytes: int
    sha256: str
    messages: int = 0  # how many messages brought it (REST: as Envoy cut the body)


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
    first are ignored, as the contract says.

    The work per message is kept small (it is most of an upload's cost beyond
    the network): one timer for the idle limit, re-armed at most once per
    idle_seconds instead of a timeout per message; the chunk's bytes never
    copied out of the message gRPC delivered (wire.UploadMessage) except into
    the batch buffer; the disk space reserved up front, each chunk hashed as it
    comes, the batches written past the page cache on a worker thread
    (spool.SpoolWriter)."""

    def __init__(self, requests: AsyncIterable[UploadMessage], limits: UploadLimits) -> None:
        self._requests: AsyncIterator[UploadMessage] = aiter(requests)
        self._limits = limits
        self._header: UploadHeader | None = None
        self._first_chunk = memoryview(b"")
        # The idle limit: when the current wait for a message began (None: not waiting), and its timer.
        self._waiting_since: float | None = None
        self._awaited = ""
        self._timer: asyncio.TimerHandle | None = None
        self._stalled = False
        self._task: asyncio.Task | None = None

    async def read_header(self) -> UploadHeader:
        try:
            first = await self._next_message("the header")
        except StopAsyncIteration:
            raise InvalidArgument("the upload stream was empty: the first message must carry the header") from None
        finally:
            self._stop_timer()
        if first.header is None:
            raise InvalidArgument("the first upload message must carry the header (filename, size_bytes)")
        self._header = UploadHeader.from_proto(first.header, self._limits)
        self._first_chunk = first.data
        return self._header

    async def receive_into(self, path: Path, *, direct_io: bool = True) -> ReceivedFile:
        """Writes every chunk to path and checks the byte count and digest the header declared.
        direct_io: write past the page cache where the file system allows it (spool.py)."""
        header = self._header
        if header is None:
            raise RuntimeError("read_header() must come first")
        declared, chunk_max = header.size_bytes, self._limits.chunk_max_bytes
        received = messages = 0
        try:
            async with SpoolWriter(path, declared, direct=direct_io) as spool:
                data, self._first_chunk = self._first_chunk, memoryview(b"")
                while True:
                    if data:
                        if len(data) > chunk_max:
                            raise InvalidArgument(
                                f"a chunk of {len(data)} bytes is over the limit of {chunk_max} bytes per message: "
                                "send the file in smaller chunks")
                        received += len(data)
                        if received > declared:
                            raise InvalidArgument(
                                f"received more than the {declared} bytes header.size_bytes declared: "
                                "declare the file's exact size")
                        await spool.add(data)
                    try:
                        request = await self._next_message("the next chunk")
                    except StopAsyncIteration:
                        break
                    messages += 1
                    data = request.data
                actual = await spool.finish()
        finally:
            self._stop_timer()
        if received != declared:
            raise InvalidArgument(
                f"received {received} bytes but header.size_bytes declared {declared}: "
                "the upload was cut short or the declared size is wrong")
        if header.sha256 and actual != header.sha256:
            raise InvalidArgument(
                f"sha256 mismatch: the header declared {header.sha256} but the received bytes hash to {actual}; "
                "the file changed or was damaged on the way")
        return ReceivedFile(path=path, size_bytes=received, sha256=actual, messages=messages + 1)

    async def _next_message(self, awaited: str) -> UploadMessage:
        """The next message, or DeadlineExceeded after idle_seconds of silence."""
        loop = asyncio.get_running_loop()
        self._waiting_since, self._awaited = loop.time(), awaited
        if self._timer is None:
            self._task = asyncio.current_task()
            self._timer = loop.call_at(self._waiting_since + self._limits.idle_seconds, self._check_idle)
        try:
            return await anext(self._requests)
        except asyncio.CancelledError:
            if self._stalled and self._task is not None and self._task.uncancel() == 0:
                raise DeadlineExceeded(
                    f"no data for {self._limits.idle_seconds:g} s while waiting for {awaited}: the upload stalled "
                    "and was dropped; send it again (uploads must keep sending)") from None
            raise
        finally:
            self._waiting_since = None

    def _check_idle(self) -> None:
        """The idle timer: ends the wait if it has lasted idle_seconds, else waits for the rest of it.
        Not re-armed while no wait is under way; the next wait arms it again."""
        self._timer = None
        since = self._waiting_since
        if since is None or self._task is None:
            return
        loop = asyncio.get_running_loop()
        due = since + self._limits.idle_seconds
        if loop.time() >= due:
            self._stalled = True
            self._task.cancel()
        else:
            self._timer = loop.call_at(due, self._check_idle)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
