"""The signed file server on both stores: a presentation in a local directory
and in B2 (b2sdk's simulator; the server proxies it) is served by one signed
folder URL, with Range, Content-Length, validators and the same refusals."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.shared.storage import ObjectStore
from services.shared.storage.file_server import SignedFileServer
from services.shared.storage.local import LocalDirectoryStore
from services.shared.storage.signed_urls import UrlSigner
from tests.b2sim import simulated_b2
from tests.presentation import make_presentation

PREFIX = "ten_a/vid_1/presentation/"


@pytest.fixture(scope="module")
def presentation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_presentation(tmp_path_factory.mktemp("presentation"), seconds=2.0)


@pytest.fixture(params=["local", "b2"])
async def served(request: pytest.FixtureRequest, presentation: Path,
                 tmp_path: Path) -> AsyncIterator[tuple[UrlSigner, ObjectStore]]:
    signer = UrlSigner(os.urandom(32))
    if request.param == "local":
        store: ObjectStore = LocalDirectoryStore(tmp_path / "objects", signer)
    else:
        b2 = simulated_b2()
        b2.store.urls = signer
        store = b2.store
    for path in presentation.iterdir():
        await store.put_file(PREFIX + path.name, path, "application/octet-stream")
    server = SignedFileServer(store, signer)  # type: ignore[arg-type]
    await server.start()
    signer.base_url = f"http://{server.address}"
    try:
        yield signer, store
    finally:
        await server.stop()


def _get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=30)


async def test_one_folder_url_serves_every_file_with_ranges(served: tuple[UrlSigner, ObjectStore],
                                                            presentation: Path) -> None:
    signer, _ = served
    master = signer.folder_url(PREFIX, "master.m3u8", int(time.time()) + 600)
    segment = sorted(p.name for p in presentation.glob("chunk-stream0-*.m4s"))[0]
    whole = (presentation / segment).read_bytes()
    base = master.rsplit("/", 1)[0]

    got = await asyncio.to_thread(_get, master)
    full = await asyncio.to_thread(_get, f"{base}/{segment}")
    part = await asyncio.to_thread(_get, f"{base}/{segment}", Range="bytes=10-109")
    past = await asyncio.to_thread(_get, f"{base}/{segment}", Range=f"bytes={len(whole)}-")
    again = await asyncio.to_thread(_get, master, **{"If-None-Match": got.headers["etag"]})

    assert got.status_code == 200 and got.content == (presentation / "master.m3u8").read_bytes()
    assert got.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert full.status_code == 200 and full.content == whole
    assert full.headers["content-length"] == str(len(whole)) and full.headers["content-type"] == "video/iso.segment"
    assert part.status_code == 206 and part.content == whole[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{len(whole)}"
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(whole)}"
    assert again.status_code == 304


async def test_refusals_are_the_same_on_both_stores(served: tuple[UrlSigner, ObjectStore]) -> None:
    signer, store = served
    expires = int(time.time()) + 600
    base = signer.folder_url(PREFIX, "master.m3u8", expires).rsplit("/", 1)[0]
    if isinstance(store, LocalDirectoryStore):  # an object caught mid-write is not served half-written
        (store.root / PREFIX / "master.m3u8.partial").write_text("#EXTM3U\n#EXT-X-STRE")
    outside = signer.folder_url("ten_a/vid_1/", "x", expires).rsplit("/", 1)[0]

    missing = await asyncio.to_thread(_get, f"{base}/no-such.m4s")
    half_written = await asyncio.to_thread(_get, f"{base}/master.m3u8.partial")
    changed = base[:-3] + ("AAA" if not base.endswith("AAA") else "BBB")
    tampered = await asyncio.to_thread(_get, f"{changed}/master.m3u8")
    climbing = await asyncio.to_thread(_get, f"{base}/%2e%2e/source.mp4")
    expired = await asyncio.to_thread(_get, signer.folder_url(PREFIX, "master.m3u8", int(time.time()) - 1))

    assert missing.status_code == 404 and half_written.status_code == 404
    assert tampered.status_code == 403 and "signature does not match" in tampered.json()["message"]
    assert climbing.status_code == 403
    assert expired.status_code == 403 and "expired" in expired.json()["message"]
    assert (await asyncio.to_thread(_get, f"{outside}/presentation")).status_code == 404, "a folder is no file"
