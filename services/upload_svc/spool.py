"""Writing an upload's bytes to its spool file, hashing them on the way, off
the event loop and overlapped with receiving.

Chunks are gathered into batches of BATCH_BYTES; a batch is hashed and
written (one writev) on a worker thread while the event loop receives the
next one. One thread hop per batch instead of one per chunk, and the loop
never waits for the disk unless the disk falls a whole batch behind. At most
two batches of an upload are in memory (the one being written, the one being
gathered), which bounds what a fast client costs us. hashlib and os.writev
release the GIL, so the hashing runs on the second core.

The writer threads are this module's own small pool: a slow disk holds up
uploads, never the probes and object copies on the loop's default executor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
from pathlib import Path

MIB = 1024 * 1024
BATCH_BYTES = 4 * MIB
# Chunks per batch at most, whatever their size: one writev takes at most IOV_MAX (1024) pieces, and a
# client sending tiny messages must not pile up millions of small objects.
BATCH_PIECES = 256
WRITER_THREADS = 4

_writers = concurrent.futures.ThreadPoolExecutor(max_workers=WRITER_THREADS, thread_name_prefix="spool-writer")


class SpoolWriter:
    """Use as `async with SpoolWriter(path) as spool:`, `await spool.add(data)`
    per chunk, then `await spool.finish()` for the sha256 (hex) of all of it.
    Leaving the block without finish() (an error, a cancel) drops what was not
    written yet; the descriptor is closed once the worker thread is done with it."""

    def __init__(self, path: Path, batch_bytes: int = BATCH_BYTES) -> None:
        self._path = path
        self._batch_bytes = batch_bytes
        self._fd = -1
        self._digest = hashlib.sha256()
        self._batch: list[bytes] = []
        self._gathered = 0
        self._writing: concurrent.futures.Future[None] | None = None

    async def __aenter__(self) -> SpoolWriter:
        self._fd = await asyncio.wrap_future(_writers.submit(
            os.open, self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600))
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
        """Takes a chunk (kept by reference, not copied); waits only when the
        previous batch is still being written as this one fills up."""
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
        for data in batch:
            self._digest.update(data)
        _write_all(self._fd, batch)


def _write_all(fd: int, pieces: list[bytes]) -> None:
    views = [memoryview(p) for p in pieces if p]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]
