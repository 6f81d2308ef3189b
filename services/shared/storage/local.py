"""Objects as files under one directory: the embedded default. Objects are
0600 files in 0700 folders, and no key resolves to a path outside the root."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from services.shared.errors import FailedPrecondition, InvalidArgument, NotFound
from services.shared.private_files import create_private_dirs, open_private
from services.shared.storage._base import DownloadUrl, ObjectInfo, validate_key
from services.shared.storage.signed_urls import UrlSigner

PARTIAL_SUFFIX = ".partial"  # an object being written; renamed into place when whole

_KERNEL_COPY_BYTES = 64 * 1024 * 1024


def copy_file(source: BinaryIO, target: BinaryIO) -> None:
    """Copies source to target (both open, at their start) inside the kernel
    (copy_file_range: no trip through user space, a reflink where the file
    system has them); a read/write loop where the kernel cannot. A stored 1 GiB
    upload took half the CPU time this way on this project's machines."""
    try:
        while os.copy_file_range(source.fileno(), target.fileno(), _KERNEL_COPY_BYTES):
            pass
        return
    except OSError:  # another file system (EXDEV on old kernels), or no support: copy what is left by hand
        pass
    shutil.copyfileobj(source, target, 1024 * 1024)


def _linked(path: Path, partial: Path) -> bool:
    """Gives the file at path a second name, partial (0600, as every object), when both are on
    one file system: a 1 GiB upload is stored in no time and no second GiB of disk. False when
    the kernel will not link it (another file system, or one without hard links)."""
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()  # left by a process that died mid-copy
    try:
        os.link(path, partial)
    except OSError:
        return False
    os.chmod(partial, 0o600)
    return True


class LocalDirectoryStore:
    """`urls` signs the URLs download_url hands out (SignedFileServer serves them); without it there are none."""

    def __init__(self, root: Path, urls: UrlSigner | None = None) -> None:
        self._root = root.resolve()
        create_private_dirs(self._root)
        self.urls = urls

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        path = self._root / validate_key(key)
        if not path.resolve().is_relative_to(self._root):  # a symlink inside the root pointing out
            raise InvalidArgument(f"storage key {key!r} leads outside the store")
        return path

    async def put_file(self, key: str, path: Path, content_type: str, *, take: bool = False) -> ObjectInfo:
        target = self._path(key)

        def store() -> int:
            create_private_dirs(target.parent)
            partial = target.with_name(target.name + PARTIAL_SUFFIX)
            if not (take and _linked(path, partial)):
                with open(path, "rb") as source, open_private(partial) as stored:
                    copy_file(source, stored)
            os.replace(partial, target)  # readers never see half an object
            return target.stat().st_size

        return ObjectInfo(key, await asyncio.to_thread(store))

    async def get_file(self, key: str, dest: Path) -> ObjectInfo:
        source = self._path(key)
        if not source.is_file():
            raise NotFound(f"no object {key!r}")
        await asyncio.to_thread(shutil.copyfile, source, dest)
        return ObjectInfo(key, dest.stat().st_size)

    async def read_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError as error:
            raise NotFound(f"no object {key!r}") from error
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"no object {key!r}")
        return ObjectInfo(key, path.stat().st_size)

    async def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix.rstrip("/"))

        def delete() -> int:
            if base.is_file():
                base.unlink()
                return 1
            if not base.is_dir():
                return 0
            count = sum(1 for p in base.rglob("*") if p.is_file())
            shutil.rmtree(base)
            return count

        return await asyncio.to_thread(delete)

    async def list_objects(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        def listing() -> list[ObjectInfo]:
            found = []
            for path in self._root.rglob("*"):
                key = path.relative_to(self._root).as_posix()
                if not key.startswith(prefix) or path.name.endswith(PARTIAL_SUFFIX):
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:  # deleted while we looked
                    continue
                if path.is_file():
                    found.append(ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)))
            return found

        for info in await asyncio.to_thread(listing):
            yield info

    async def download_url(self, key: str, ttl_seconds: int) -> DownloadUrl:
        if self.urls is None:
            raise FailedPrecondition("this local store has no URL signing key, so it hands out no download URLs")
        await self.stat(key)  # NotFound rather than a URL that 404s
        expires = int(time.time()) + max(ttl_seconds, 1)
        return DownloadUrl(self.urls.url(key, expires), datetime.fromtimestamp(expires, UTC))
