"""One contract for every ObjectStore: the local directory and Backblaze B2
(b2sdk's RawSimulator, see tests/b2sim.py) pass the same tests. Then what only
B2 has: large-file uploads, file versions, and its errors (transient ones
retried by b2sdk or resumed by us, permanent ones reported with B2's reason)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from b2sdk.v2.exception import B2ConnectionError, ServiceError, StorageCapExceeded

from services.shared.errors import InvalidArgument, NotFound, StorageRejected, Unavailable
from services.shared.storage import ObjectStore
from services.shared.storage.b2 import STREAM_RESUMES, B2Store
from services.shared.storage.local import LocalDirectoryStore
from services.shared.storage.signed_urls import UrlSigner
from tests.b2sim import SimulatedB2, simulated_b2

KEY = "ten_a/vid_1/renditions/720p.mp4"


@pytest.fixture(params=["local", "b2"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalDirectoryStore(tmp_path / "objects", UrlSigner(os.urandom(32), "http://gateway.test:8080"))
    return simulated_b2(large_file_threshold_bytes=4000).store


@pytest.fixture
def b2() -> SimulatedB2:
    return simulated_b2(large_file_threshold_bytes=4000)


def file_of(tmp_path: Path, size: int, name: str = "") -> Path:
    path = tmp_path / (name or f"f{size}-{os.urandom(3).hex()}.bin")
    path.write_bytes(os.urandom(size))
    return path


async def read_all(store: ObjectStore, key: str, chunk_size: int = 1024 * 1024) -> bytes:
    return b"".join([chunk async for chunk in store.read_chunks(key, chunk_size)])


# --- the contract --------------------------------------------------------------------------


async def test_a_stored_file_reads_back_whole(store: ObjectStore, tmp_path: Path) -> None:
    source = file_of(tmp_path, 10_000)

    info = await store.put_file(KEY, source, "video/mp4")

    assert (info.key, info.size_bytes) == (KEY, 10_000)
    assert (await store.stat(KEY)).size_bytes == 10_000
    copy = tmp_path / "copy.mp4"
    assert (await store.get_file(KEY, copy)).size_bytes == 10_000
    assert copy.read_bytes() == source.read_bytes()


async def test_a_file_handed_over_outlives_its_source_path(store: ObjectStore, tmp_path: Path) -> None:
    # take=True: the caller deletes its file once stored (the upload service's spool file).
    source = file_of(tmp_path, 70_000)
    data = source.read_bytes()

    info = await store.put_file(KEY, source, "video/mp4", take=True)
    source.unlink()

    assert info.size_bytes == 70_000
    assert await read_all(store, KEY) == data


async def test_chunks_are_bounded_and_add_up_to_the_object(store: ObjectStore, tmp_path: Path) -> None:
    source = file_of(tmp_path, 2_500)
    await store.put_file(KEY, source, "video/mp4")

    chunks = [chunk async for chunk in store.read_chunks(KEY, 1000)]

    assert all(0 < len(c) <= 1000 for c in chunks)
    assert b"".join(chunks) == source.read_bytes()


async def test_an_empty_object_is_an_object(store: ObjectStore, tmp_path: Path) -> None:
    await store.put_file(KEY, file_of(tmp_path, 0), "video/mp4")

    assert (await store.stat(KEY)).size_bytes == 0
    assert await read_all(store, KEY) == b""


async def test_storing_again_replaces_the_object(store: ObjectStore, tmp_path: Path) -> None:
    await store.put_file(KEY, file_of(tmp_path, 3_000), "video/mp4")
    second = file_of(tmp_path, 1_234)

    await store.put_file(KEY, second, "video/mp4")

    assert (await store.stat(KEY)).size_bytes == 1_234
    assert await read_all(store, KEY) == second.read_bytes()


async def test_a_missing_object_is_not_found(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        await store.stat(KEY)
    with pytest.raises(NotFound):
        await store.get_file(KEY, tmp_path / "out")
    with pytest.raises(NotFound):
        await read_all(store, KEY)


@pytest.mark.parametrize("key", ["", "/abs/key", "a/../b", "a//b", "a/./b"])
async def test_bad_keys_are_refused(store: ObjectStore, tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidArgument):
        await store.put_file(key, file_of(tmp_path, 10), "video/mp4")


async def test_deleting_a_prefix_removes_that_video_only(store: ObjectStore, tmp_path: Path) -> None:
    mine = ["ten_a/vid_1/source.mov", "ten_a/vid_1/renditions/720p.mp4", "ten_a/vid_1/renditions/360p.mp4"]
    others = ["ten_a/vid_10/source.mov", "ten_b/vid_1/source.mov"]
    for key in mine + others:
        await store.put_file(key, file_of(tmp_path, 100), "video/mp4")

    assert await store.delete_prefix("ten_a/vid_1/") == 3

    for key in mine:
        with pytest.raises(NotFound):
            await store.stat(key)
    for key in others:
        assert (await store.stat(key)).size_bytes == 100
    assert await store.delete_prefix("ten_a/vid_1/") == 0


async def test_listing_names_every_object_under_a_prefix(store: ObjectStore, tmp_path: Path) -> None:
    for key, size in [("ten_a/vid_1/source.mov", 10), ("ten_a/vid_1/renditions/360p.mp4", 20),
                      ("ten_a/vid_2/source.mov", 30), ("ten_b/vid_3/source.mov", 40)]:
        await store.put_file(key, file_of(tmp_path, size), "video/mp4")

    listed = {info.key: info async for info in store.list_objects("ten_a/")}

    assert {k: i.size_bytes for k, i in listed.items()} == {
        "ten_a/vid_1/source.mov": 10, "ten_a/vid_1/renditions/360p.mp4": 20, "ten_a/vid_2/source.mov": 30}
    # When each was stored (the sweeper's grace period counts from it); b2sdk's simulator counts
    # milliseconds from 5 s after the epoch rather than reading the clock.
    assert all(isinstance(i.modified_at, datetime) and i.modified_at.tzinfo is UTC for i in listed.values())
    assert len([i async for i in store.list_objects()]) == 4


async def test_a_download_url_is_absolute_and_expires_when_asked(store: ObjectStore, tmp_path: Path) -> None:
    await store.put_file(KEY, file_of(tmp_path, 100), "video/mp4")

    shared = await store.download_url(KEY, 600)

    assert urlsplit(shared.url).scheme in ("http", "https") and urlsplit(shared.url).netloc
    assert urlsplit(shared.url).path.endswith("/720p.mp4"), "a saved download keeps the file's name"
    assert abs(shared.expires_at.timestamp() - (time.time() + 600)) < 5
    with pytest.raises(NotFound):
        await store.download_url("ten_a/vid_1/renditions/1080p.mp4", 600)


# --- B2 only: large files, versions ---------------------------------------------------------


async def test_b2_uses_the_large_file_api_from_the_threshold_up(b2: SimulatedB2, tmp_path: Path) -> None:
    small, large = file_of(tmp_path, 3_999), file_of(tmp_path, 9_000)

    await b2.store.put_file("t/v/small.mp4", small, "video/mp4")
    await b2.store.put_file("t/v/large.mp4", large, "video/mp4")

    files = {f.name: f for f in b2.bucket.file_id_to_file.values()}
    assert not hasattr(files["t/v/small.mp4"], "parts"), "below the threshold: one b2_upload_file"
    assert len(files["t/v/large.mp4"].parts) >= 4, "parts of half the threshold (2000 bytes)"
    assert files["t/v/large.mp4"].content_type == "video/mp4"
    assert await read_all(b2.store, "t/v/large.mp4") == large.read_bytes()


async def test_b2_prefix_delete_removes_every_version(b2: SimulatedB2, tmp_path: Path) -> None:
    for _ in range(3):
        await b2.store.put_file(KEY, file_of(tmp_path, 100), "video/mp4")
    b2.api.get_bucket_by_name(b2.bucket_name).hide_file("ten_a/vid_1/source.mov")
    assert len(b2.versions("ten_a/vid_1/")) == 4

    assert await b2.store.delete_prefix("ten_a/vid_1/") == 1

    assert b2.versions() == [], "old versions and hide markers are billed too"


async def test_b2_download_url_carries_an_authorization_for_that_file_only(b2: SimulatedB2,
                                                                          tmp_path: Path) -> None:
    await b2.store.put_file(KEY, file_of(tmp_path, 100), "video/mp4")

    shared = await b2.store.download_url(KEY, 900)

    url = urlsplit(shared.url)
    assert url.path == f"/file/{b2.bucket_name}/{KEY}"
    # The simulator's token spells out what B2 was asked to authorize: this bucket, this name, 900 s.
    token = parse_qs(url.query)["Authorization"][0]
    assert token == f"fake_download_auth_token_{b2.bucket.bucket_id}_{KEY}_900"


# --- B2 only: errors ------------------------------------------------------------------------


async def test_b2_transient_upload_errors_are_retried(b2: SimulatedB2, tmp_path: Path) -> None:
    source = file_of(tmp_path, 1_000)
    b2.raw.set_upload_errors([ServiceError("503 service_unavailable: c001 is too busy"),
                              B2ConnectionError("connection reset by peer")])

    await b2.store.put_file(KEY, source, "video/mp4")

    assert b2.raw.upload_errors == [], "both injected errors were met"
    assert await read_all(b2.store, KEY) == source.read_bytes()


async def test_b2_outage_beyond_the_retries_is_unavailable(b2: SimulatedB2, tmp_path: Path) -> None:
    b2.raw.set_upload_errors([ServiceError("503 service_unavailable")] * 5)

    with pytest.raises(Unavailable, match=r"B2 did not store .*ServiceError"):
        await b2.store.put_file(KEY, file_of(tmp_path, 1_000), "video/mp4")
    with pytest.raises(NotFound):
        await b2.store.stat(KEY)


async def test_b2_expired_account_token_is_renewed(b2: SimulatedB2, tmp_path: Path) -> None:
    await b2.store.put_file(KEY, file_of(tmp_path, 500), "video/mp4")
    b2.expire_token()

    assert (await b2.store.stat(KEY)).size_bytes == 500
    b2.expire_token()
    assert await b2.store.delete_prefix("ten_a/") == 1


async def test_b2_permanent_error_is_rejected_with_b2s_reason(b2: SimulatedB2, tmp_path: Path) -> None:
    b2.raw.set_upload_errors([StorageCapExceeded()])

    with pytest.raises(StorageRejected, match="storage cap exceeded. Raise the cap in the Backblaze account"):
        await b2.store.put_file(KEY, file_of(tmp_path, 1_000), "video/mp4")


async def test_b2_wrong_key_is_rejected_naming_the_settings(b2: SimulatedB2, tmp_path: Path) -> None:
    store = B2Store(b2.bucket_name, b2.key_id, "not-the-key", api=b2.api)

    with pytest.raises(StorageRejected, match="VTC_B2_KEY_ID / VTC_B2_APPLICATION_KEY"):
        await store.stat(KEY)


async def test_b2_missing_bucket_is_rejected_naming_it(b2: SimulatedB2) -> None:
    store = B2Store("no-such-bucket", b2.key_id, b2.application_key, api=b2.api)

    with pytest.raises(StorageRejected, match="no bucket 'no-such-bucket'"):
        await store.stat(KEY)


class Cuts:
    """How many more downloads drop their connection after the first chunk."""

    left = 0


@pytest.fixture
def cutting_b2(b2: SimulatedB2, monkeypatch: pytest.MonkeyPatch) -> SimulatedB2:
    simulated_response = b2.bucket.RESPONSE_CLASS  # b2sdk's FakeResponse

    class CutResponse(simulated_response):  # type: ignore[misc, valid-type]
        def iter_content(self, chunk_size: int = 1) -> Iterator[bytes]:
            chunks = super().iter_content(chunk_size)
            yield next(chunks)
            if Cuts.left > 0:
                Cuts.left -= 1
                raise requests.exceptions.ChunkedEncodingError("connection broken: IncompleteRead")
            yield from chunks

    monkeypatch.setattr(b2.bucket, "RESPONSE_CLASS", CutResponse)
    monkeypatch.setattr(Cuts, "left", 0)
    return b2


async def test_b2_download_cut_mid_stream_resumes_where_it_stopped(cutting_b2: SimulatedB2, tmp_path: Path) -> None:
    source = file_of(tmp_path, 5_000)
    await cutting_b2.store.put_file(KEY, source, "video/mp4")
    Cuts.left = 2

    assert await read_all(cutting_b2.store, KEY, 1000) == source.read_bytes()
    assert Cuts.left == 0


async def test_b2_download_cut_every_time_is_unavailable(cutting_b2: SimulatedB2, tmp_path: Path) -> None:
    await cutting_b2.store.put_file(KEY, file_of(tmp_path, 50_000), "video/mp4")
    Cuts.left = 100

    with pytest.raises(Unavailable, match=f"cut the download of .* {STREAM_RESUMES + 1} times"):
        await read_all(cutting_b2.store, KEY, 1000)
