"""Writing an upload's bytes to its spool file, hashing them on the way.

Measured on two cores with the client on the same machine (bench/upload.py),
where every millisecond of CPU per MiB shows in the throughput:
- the disk space for the whole declared size is reserved up front
  (fallocate, keeping the file's size at what was written so far): a disk
  without room for the file refuses the upload before any byte is sent, and
  ext4 allocates once instead of block by block;
- each chunk is hashed on the event loop as it arrives (sha256 at about
  0.5 ms per MiB with the CPU's SHA instructions, the GIL released) and
  copied into a page-aligned batch buffer while it is still in the CPU's
  cache (about 0.05 ms per MiB);
- a full batch (BATCH_BYTES) is written with O_DIRECT, one write on a writer
  thread, while the event loop fills the other buffer. Direct writes skip the
  page cache: the disk reads the two buffers an upload reuses, instead of
  the kernel copying every byte into freshly allocated page-cache pages. That
  copy cost 0.2-3 ms of CPU per MiB on the project's VM (new pages are slow to
  touch there), the direct write 0.1 ms; on any machine it keeps a 20 GiB
  upload from pushing everything else out of the page cache. The price: an
  upload is written at the disk's own speed, without the page cache's
  write-behind. Where the file system refuses O_DIRECT (tmpfs on older
  kernels, some network file systems) or its alignment, the same buffers are
  written through the page cache (VTC_UPLOAD_DIRECT_IO=false asks for that).
At most two batches of an upload are in memory (the one being written, the
one being filled), which bounds what a fast client costs us; the buffers are
pooled, so an upload starts with memory that is already the process's.

The writer threads are this module's own small pool: a slow disk holds up
uploads, never the probes and object copies on the loop's default executor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import threading
from pathlib import Path

from services.shared.errors import ResourceExhausted

MIB = 1024 * 1024
BATCH_BYTES = 4 * MIB
# O_DIRECT wants the buffer's address, the file offset and the length to be multiples of the
# device's logical block size: 512 or 4096 bytes. Batches are whole pages, and the last one is
# padded to a page and the file cut back to its size.
ALIGN = mmap.PAGESIZE
WRITER_THREADS = 4
POOLED_BUFFERS = 4  # idle batch buffers kept for the next uploads (4 MiB each by default)

_writers = concurrent.futures.ThreadPoolExecutor(max_workers=WRITER_THREADS, thread_name_prefix="spool-writer")


class _BufferPool:
    """Page-aligned anonymous buffers of one size, reused across uploads: their pages stay
    the process's, so a new upload does not fault in fresh memory for its batches."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._idle: dict[int, list[mmap.mmap]] = {}
        self._lock = threading.Lock()  # given back from writer threads' callbacks

    def take(self, size: int) -> mmap.mmap:
        with self._lock:
            idle = self._idle.get(size)
            if idle:
                return idle.pop()
        return mmap.mmap(-1, size)

    def give(self, buffer: mmap.mmap) -> None:
        with self._lock:
            idle = self._idle.setdefault(len(buffer), [])
            if sum(len(kept) for kept in self._idle.values()) < self._keep:
                idle.append(buffer)
                return
        with contextlib.suppress(BufferError):  # a view of it is still referenced: the collector closes it
            buffer.close()


_buffers = _BufferPool(POOLED_BUFFERS)


class SpoolWriter:
    """Use as `async with SpoolWriter(path, size_bytes) as spool:`, `await spool.add(data)`
    per chunk, then `await spool.finish()` for the sha256 (hex) of all of it.
    Leaving the block without finish() (an error, a cancel) drops what was not
    written yet; the descriptor is closed, and the buffers go back to the pool,
    once the writer thread is done with them."""

    def __init__(self, path: Path, size_bytes: int = 0, batch_bytes: int = BATCH_BYTES,
                 direct: bool = True) -> None:
        self._path = path
        self._size_bytes = size_bytes
        self._batch_bytes = -(-batch_bytes // ALIGN) * ALIGN
        self._direct = direct
        self._fd = -1
        self._digest = hashlib.sha256()
        self._buffers: list[mmap.mmap] = []  # [the one being filled, the other]
        self._filling: memoryview | None = None  # a view of _buffers[0]
        self._filled = 0
        self._written = 0  # bytes handed to the writer thread, padding excluded
        self._writing: concurrent.futures.Future[None] | None = None

    @property
    def direct(self) -> bool:
        """Whether the file is being written with O_DIRECT (False once the file system refused it)."""
        return self._fd >= 0 and bool(fcntl.fcntl(self._fd, fcntl.F_GETFL) & os.O_DIRECT)

    async def __aenter__(self) -> SpoolWriter:
        self._fd = await asyncio.wrap_future(
            _writers.submit(_open_reserved, self._path, self._size_bytes, self._direct))
        self._buffers = [_buffers.take(self._batch_bytes), _buffers.take(self._batch_bytes)]
        self._filling = memoryview(self._buffers[0])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        writing, fd, buffers = self._writing, self._fd, self._buffers
        self._writing, self._fd, self._buffers = None, -1, []
        if self._filling is not None:
            self._filling.release()
            self._filling = None

        def release(_: object = None) -> None:
            if fd >= 0:
                os.close(fd)
            for buffer in buffers:
                _buffers.give(buffer)

        if writing is None or writing.done():
            release()
        else:
            # Not awaited: a second cancel must not leave the descriptor open, and
            # closing it under the thread's feet could hit another file's number.
            writing.add_done_callback(release)

    async def add(self, data: bytes | memoryview) -> None:
        """Hashes a chunk and copies it into the batch being filled; waits only when a full
        batch finds the previous one still being written."""
        self._digest.update(data)
        view = memoryview(data)
        while view:
            assert self._filling is not None, "add() outside `async with`"
            room = self._batch_bytes - self._filled
            taken = min(room, len(view))
            self._filling[self._filled:self._filled + taken] = view[:taken]
            self._filled += taken
            view = view[taken:]
            if self._filled == self._batch_bytes:
                await self._hand_over()

    async def finish(self) -> str:
        """Writes what is left, waits for the disk, returns the sha256 hex digest."""
        if self._filled:
            await self._hand_over()
        if self._writing is not None:
            await asyncio.wrap_future(self._writing)
        if self._written % ALIGN:  # the last batch was padded to a page: cut the file back to its size
            self._writing = _writers.submit(os.ftruncate, self._fd, self._written)
            await asyncio.wrap_future(self._writing)
        self._writing = None
        return self._digest.hexdigest()

    async def _hand_over(self) -> None:
        assert self._filling is not None
        full, length = self._filling, self._filled
        if self._writing is not None:
            await asyncio.wrap_future(self._writing)  # raises the previous batch's error, if any
        self._written += length
        padded = -(-length // ALIGN) * ALIGN
        self._writing = _writers.submit(self._absorb, full[:padded])
        # The other buffer: free now that the previous batch, which was in it, is on disk.
        self._buffers.reverse()
        self._filling, self._filled = memoryview(self._buffers[0]), 0

    def _absorb(self, batch: memoryview) -> None:
        """On a writer thread; batches of one upload never run at the same time. The last batch
        is padded to a whole page; finish() cuts the padding off."""
        _write_all(self._fd, batch)


def _open_reserved(path: Path, size_bytes: int, direct: bool) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | (os.O_DIRECT if direct else 0), 0o600)
    except OSError as error:
        if not direct or error.errno != errno.EINVAL:
            raise
        fd = os.open(path, flags, 0o600)  # this file system has no O_DIRECT
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


def _write_all(fd: int, batch: memoryview) -> None:
    """Writes all of batch at the file's offset. A file system that refuses the direct write
    (EINVAL: its blocks are larger than a page, or it takes no O_DIRECT after all) gets this
    and the rest of the upload through the page cache."""
    while batch:
        try:
            written = os.write(fd, batch)
        except OSError as error:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            if error.errno != errno.EINVAL or not flags & os.O_DIRECT:
                raise
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
            continue
        batch = batch[written:]
