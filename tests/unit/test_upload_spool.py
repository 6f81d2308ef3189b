"""The spool writer: what it writes and hashes is what it was given, in order,
whatever the chunk sizes; it never holds more than two batches; a failure on
the writer thread reaches the upload; the descriptor is closed however the
upload ends; the declared size is reserved on disk before the first byte; the
bytes go past the page cache where the file system allows, and through it
where it does not."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import random
from pathlib import Path

import pytest

from services.shared.errors import ResourceExhausted
from services.upload_svc import spool
from services.upload_svc.spool import SpoolWriter

MIB = 1024 * 1024


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_every_byte_lands_in_order_with_its_digest_whatever_the_chunk_sizes(tmp_path: Path) -> None:
    rng = random.Random(3)
    chunks = [rng.randbytes(rng.choice([1, 100, 65_536, MIB - 1, MIB])) for _ in range(40)]
    chunks += [b"x"] * 600  # more pieces than one writev takes
    async with SpoolWriter(tmp_path / "spooled", batch_bytes=3 * MIB) as writer:
        for chunk in chunks:
            await writer.add(memoryview(chunk))
        digest = await writer.finish()
    data = b"".join(chunks)
    assert (tmp_path / "spooled").read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()


async def test_at_most_two_batches_are_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A disk slower than the client: the writer thread holds one batch, the loop gathers the next,
    # and the receive waits rather than piling up chunks.
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    absorb = SpoolWriter._absorb

    def slow_absorb(self: SpoolWriter, batch: list) -> None:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
        absorb(self, batch)

    monkeypatch.setattr(SpoolWriter, "_absorb", slow_absorb)
    async with SpoolWriter(tmp_path / "spooled", batch_bytes=2 * MIB) as writer:
        added = 0

        async def feed() -> None:
            nonlocal added
            for _ in range(10):
                await writer.add(b"y" * MIB)
                added += 1

        feeding = asyncio.create_task(feed())
        await asyncio.sleep(0.2)
        assert added == 3  # batch 1 on the thread, batch 2 full: the 4th chunk waits for batch 1
        release.set()
        await feeding
        await writer.finish()
    assert (tmp_path / "spooled").stat().st_size == 10 * MIB


async def test_a_write_failure_reaches_the_upload_and_the_descriptor_is_closed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(fd: int, pieces: list) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool, "_write_all", full_disk)
    before = open_descriptors()
    with pytest.raises(OSError, match="No space left"):
        async with SpoolWriter(tmp_path / "spooled", batch_bytes=MIB) as writer:
            for _ in range(4):
                await writer.add(b"z" * MIB)
            await writer.finish()
    await asyncio.sleep(0.05)
    assert open_descriptors() == before


async def test_a_cancelled_upload_closes_the_descriptor_once_the_thread_is_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    absorb = SpoolWriter._absorb

    def slow_absorb(self: SpoolWriter, batch: list) -> None:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
        absorb(self, batch)

    monkeypatch.setattr(SpoolWriter, "_absorb", slow_absorb)
    before = open_descriptors()

    async def upload() -> None:
        async with SpoolWriter(tmp_path / "spooled", batch_bytes=MIB) as writer:
            for _ in range(5):
                await writer.add(b"w" * MIB)

    task = asyncio.create_task(upload())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert open_descriptors() == before + 1  # still the thread's to write to
    release.set()
    await asyncio.sleep(0.1)
    assert open_descriptors() == before


async def test_the_declared_size_is_reserved_up_front_and_the_file_grows_as_written(tmp_path: Path) -> None:
    path = tmp_path / "spooled"
    async with SpoolWriter(path, size_bytes=8 * MIB, batch_bytes=MIB) as writer:
        reserved = path.stat()
        assert reserved.st_size == 0  # a reader sees what was written so far, nothing more
        if spool._fallocate is not None:  # ext4, xfs, tmpfs: the blocks are the file's already
            assert reserved.st_blocks * 512 >= 8 * MIB
        await writer.add(b"a" * MIB)
        await writer.add(b"b" * MIB)
        await writer.finish()
    assert path.stat().st_size == 2 * MIB


async def test_a_disk_without_room_for_the_declared_size_refuses_before_any_byte(tmp_path: Path) -> None:
    if spool._fallocate is None:
        pytest.skip("this C library has no fallocate(2)")
    before = open_descriptors()
    with pytest.raises(ResourceExhausted, match="no disk space for a file of 1125899906842624 bytes"):
        async with SpoolWriter(tmp_path / "spooled", size_bytes=1 << 50):
            pass
    assert open_descriptors() == before


def takes_direct_io(directory: Path) -> bool:
    try:
        fd = os.open(directory / "probe-direct", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    return True


async def write_through(writer: SpoolWriter, chunks: list[bytes]) -> str:
    for chunk in chunks:
        await writer.add(chunk)
    return await writer.finish()


async def test_bytes_go_past_the_page_cache_and_the_file_ends_at_its_last_byte(tmp_path: Path) -> None:
    if not takes_direct_io(tmp_path):
        pytest.skip("this file system takes no O_DIRECT")
    chunks = [b"a" * (MIB + 1), b"b" * 4095, b"c" * 3]  # the last batch is padded to a page, then cut back
    async with SpoolWriter(tmp_path / "spooled", size_bytes=MIB + 4099, batch_bytes=MIB) as writer:
        assert writer.direct
        digest = await write_through(writer, chunks)
    data = b"".join(chunks)
    assert (tmp_path / "spooled").read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()


async def test_a_file_system_that_refuses_direct_writes_gets_them_through_the_page_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not takes_direct_io(tmp_path):
        pytest.skip("this file system takes no O_DIRECT")
    real_write = os.write

    def no_direct(fd: int, data: memoryview) -> int:  # as a file system with blocks larger than a page
        if spool.fcntl.fcntl(fd, spool.fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(spool.os, "write", no_direct)
    chunks = [bytes([n]) * 700_000 for n in range(7)]
    async with SpoolWriter(tmp_path / "spooled", batch_bytes=MIB) as writer:
        digest = await write_through(writer, chunks)
        assert not writer.direct
    data = b"".join(chunks)
    assert (tmp_path / "spooled").read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()


async def test_the_page_cache_when_asked_for(tmp_path: Path) -> None:
    chunks = [b"p" * 5000, b"q" * MIB]
    async with SpoolWriter(tmp_path / "spooled", batch_bytes=MIB, direct=False) as writer:
        assert not writer.direct
        await write_through(writer, chunks)
    assert (tmp_path / "spooled").read_bytes() == b"".join(chunks)
