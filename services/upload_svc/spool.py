"""Writing an upload's bytes to its spool file, hashing them on the way.

Measured on two cores with the client on the same machine (bench/upload.py),
where every millisecond of CPU per MiB shows in the throughput:
- the disk space for the whole declared size is reserved up front
  (fallocate, keeping the file's size at what was written so far). ext4
  then allocates once instead of block by block as the pages are written:
  about 0.15 ms of CPU per MiB written instead of 0.2 to 2 ms, and a disk
  without room for the file refuses the upload before any byte is sent;
- each chunk is hashed on the event loop as it arrives (sha256 at about
  0.6 ms per MiB with the CPU's SHA instructions, the GIL released);
- chunks are gathered into batches of BATCH_BYTES, and a batch is written
  (one writev) on a writer thread while the event loop receives the next
  one: the loop never waits for the disk unless the disk falls a whole batch
  behind, and there is one thread hop per batch. Hashing on that thread too
  cost more: the thread took the GIL back after every chunk's hash, while
  the loop held it.
At most two batches of an upload are in memory (the one being written, the
one being gathered), which bounds what a fast client costs us.

The writer threads are this module's own small pool: a slow disk holds up
uploads, never the probes and object copies on the loop's default executor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import errno
import hashlib
import os
from pathlib import Path

from services.shared.errors import ResourceExhausted

MIB = 1024 * 1024
BATCH_BYTES = 4 * MIB
# Chunks per batch at most, whatever their size: one writev takes at most IOV_MAX (1024) pieces, and a
# client sending tiny messages must not pile up millions of small objects.
BATCH_PIECES = 256
WRITER_THREADS = 4

_writers = concurrent.futures.ThreadPoolExecutor(max_workers=WRITER_THREADS, thread_name_prefix="spool-writer")


class SpoolWriter:
    """Use as `async with SpoolWriter(path, size_bytes) as spool:`, `await spool.add(data)`
    per chunk, then `await spool.finish()` for the sha256 (hex) of all of it.
    Leaving the block without finish() (an error, a cancel) drops what was not
    written yet; the descriptor is closed once the worker thread is done with it."""

    def __init__(self, path: Path, size_bytes: int = 0, batch_bytes: int = BATCH_BYTES) -> None:
        self._path = path
        self._size_bytes = size_bytes
        self._batch_bytes = batch_bytes
        self._fd = -1
        self._digest = hashlib.sha256()
        self._batch: list[bytes] = []
        self._gathered = 0
        self._writing: concurrent.futures.Future[None] | None = None

    async def __aenter__(self) -> SpoolWriter:
        self._fd = await asyncio.wrap_future(_writers.submit(_open_reserved, self._path, self._size_bytes))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        writing, fd = self._writing, self._fd
        self._writing, self._fd, self._batch = None, -1, []
        if fd < 0:
            return
        if writing is None or writing.done():
            os.close(fd)
        else:
            # Not awaited: a second cancel must not leave the descriptor open, and
            # closing it under the thread's feet could hit another file's number.
            writing.add_done_callback(lambda _: os.close(fd))

    async def add(self, data: bytes) -> None:
        """Hashes a chunk and takes it for writing (kept by reference, not copied);
        waits only when the previous batch is still being written as this one fills up."""
        self._digest.update(data)
        self._batch.append(data)
        self._gathered += len(data)
        if self._gathered >= self._batch_bytes or len(self._batch) >= BATCH_PIECES:
            await self._hand_over()

    async def finish(self) -> str:
        """Writes what is left, waits for the disk, returns the sha256 hex digest."""
        if self._batch:
            await self._hand_over()
        if self._writing is not None:
            await asyncio.wrap_future(self._writing)
            self._writing = None
        return self._digest.hexdigest()

    async def _hand_over(self) -> None:
        batch, self._batch, self._gathered = self._batch, [], 0
        if self._writing is not None:
            await asyncio.wrap_future(self._writing)  # raises the previous batch's error, if any
        self._writing = _writers.submit(self._absorb, batch)

    def _absorb(self, batch: list[bytes]) -> None:
        """On a writer thread; batches of one upload never run at the same time."""
        _write_all(self._fd, batch)


def _open_reserved(path: Path, size_bytes: int) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        reserve_space(fd, size_bytes)
    except BaseException:
        os.close(fd)
        raise
    return fd


_FALLOC_FL_KEEP_SIZE = 1  # linux/falloc.h: allocate, but st_size stays what was written


def _linux_fallocate():  # type: ignore[no-untyped-def]
    """fallocate(2) from the C library, or None where there is none (the os module only has
    posix_fallocate, which sets the file's size and, where the file system cannot allocate,
    writes a byte into every block instead)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate64
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


_fallocate = _linux_fallocate()


def reserve_space(fd: int, size_bytes: int) -> None:
    """Reserves size_bytes of disk for the file (its st_size unchanged). Raises ResourceExhausted
    when the disk has no room for it; does nothing where the file system cannot reserve."""
    if size_bytes <= 0 or _fallocate is None:
        return
    if _fallocate(fd, _FALLOC_FL_KEEP_SIZE, 0, size_bytes) == 0:
        return
    code = ctypes.get_errno()
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        raise ResourceExhausted(
            f"the upload service has no disk space for a file of {size_bytes} bytes right now "
            f"({os.strerror(code)}); try again later, or ask the operator to free space")
    # EOPNOTSUPP and the like: the file system allocates as the pages are written, as without this.


def _write_all(fd: int, pieces: list[bytes]) -> None:
    views = [memoryview(p) for p in pieces if p]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]
