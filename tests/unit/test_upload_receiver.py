"""The upload receiver on its own: header checks, chunk limits, size and
checksum verification, and the spool file on disk."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from services.shared.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted
from services.upload_svc.receiver import UploadLimits, UploadReceiver, remove_stale_spool_files, spool_file
from services.upload_svc.slots import UploadSlots
from services.upload_svc.wire import UploadMessage
from vtc.v1 import upload_pb2

MIB = 1024 * 1024
LIMITS = UploadLimits(max_bytes=64 * MIB, chunk_max_bytes=MIB, idle_seconds=30.0)


def header(filename: str = "clip.mov", size: int = 0, **fields: str) -> upload_pb2.UploadHeader:
    return upload_pb2.UploadHeader(filename=filename, size_bytes=size, **fields)


async def stream(messages: Iterable[upload_pb2.UploadRequest]) -> AsyncIterator[UploadMessage]:
    for message in messages:
        yield UploadMessage.parse(message.SerializeToString())


async def as_received(messages: AsyncIterator[upload_pb2.UploadRequest]) -> AsyncIterator[UploadMessage]:
    """As the server reads them: serialized, then parsed by the Upload method's deserializer."""
    async for message in messages:
        yield UploadMessage.parse(message.SerializeToString())


def grpc_style(data: bytes, chunk: int = MIB, **fields: str) -> list[upload_pb2.UploadRequest]:
    """Header alone first, then chunks: what the vtc CLI and gRPC clients send."""
    messages = [upload_pb2.UploadRequest(header=header(size=len(data), **fields))]
    messages += [upload_pb2.UploadRequest(chunk={"data": data[i:i + chunk]}) for i in range(0, len(data), chunk)]
    return messages


async def receive(messages: list[upload_pb2.UploadRequest], tmp_path: Path, limits: UploadLimits = LIMITS):
    receiver = UploadReceiver(stream(messages), limits)
    declared = await receiver.read_header()
    return declared, await receiver.receive_into(tmp_path / "spooled")


async def rejection(messages: list[upload_pb2.UploadRequest], tmp_path: Path, limits: UploadLimits = LIMITS) -> str:
    with pytest.raises(InvalidArgument) as raised:
        await receive(messages, tmp_path, limits)
    return raised.value.message


async def test_chunks_land_on_disk_with_their_digest(tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 12345)
    declared, received = await receive(grpc_style(data, sha256=hashlib.sha256(data).hexdigest().upper()), tmp_path)

    assert received.path.read_bytes() == data
    assert received.size_bytes == len(data)
    assert received.sha256 == hashlib.sha256(data).hexdigest()
    assert (declared.filename, declared.profile, declared.title) == ("clip.mov", "default", "clip.mov")


async def test_rest_style_stream_repeats_the_header_and_carries_data_from_the_first_message(tmp_path: Path) -> None:
    # Envoy's transcoder puts the query string's header in every message and the
    # body, split, beside it; later headers must not change anything.
    data = os.urandom(200_000)
    first = header(size=len(data), profile="default", title="Holiday")
    messages = [upload_pb2.UploadRequest(header=first,
                                         chunk={"content_type": "video/quicktime", "data": data[:70_000]}),
                upload_pb2.UploadRequest(header=header("other.mp4", 5), chunk={"data": data[70_000:140_000]}),
                upload_pb2.UploadRequest(header=first, chunk={"data": data[140_000:]})]
    declared, received = await receive(messages, tmp_path)

    assert received.path.read_bytes() == data
    assert (declared.filename, declared.title) == ("clip.mov", "Holiday")


async def test_client_folders_are_dropped_from_the_filename(tmp_path: Path) -> None:
    declared, _ = await receive(grpc_style(b"x" * 10, filename="C:\\Users\\ana\\Videos\\trip.MOV"), tmp_path)
    assert declared.filename == "trip.MOV"


async def test_missing_header(tmp_path: Path) -> None:
    reason = await rejection([upload_pb2.UploadRequest(chunk={"data": b"abc"})], tmp_path)
    assert "first upload message must carry the header" in reason


async def test_empty_stream(tmp_path: Path) -> None:
    assert "first message must carry the header" in await rejection([], tmp_path)


async def test_declared_empty_file(tmp_path: Path) -> None:
    assert "the file is empty" in await rejection(grpc_style(b""), tmp_path)


async def test_missing_filename(tmp_path: Path) -> None:
    assert "header.filename is required" in await rejection(grpc_style(b"abc", filename=""), tmp_path)


async def test_bad_sha256_format(tmp_path: Path) -> None:
    assert "64 hex digits" in await rejection(grpc_style(b"abc", sha256="abc123"), tmp_path)


async def test_file_over_the_size_limit_is_refused_before_any_byte(tmp_path: Path) -> None:
    messages = [upload_pb2.UploadRequest(header=header(size=LIMITS.max_bytes + 1))]
    reason = await rejection(messages, tmp_path)
    assert str(LIMITS.max_bytes) in reason and str(LIMITS.max_bytes + 1) in reason


async def test_chunk_over_the_limit(tmp_path: Path) -> None:
    reason = await rejection(grpc_style(os.urandom(MIB + 1), chunk=MIB + 1), tmp_path)
    assert f"a chunk of {MIB + 1} bytes is over the limit of {MIB} bytes" in reason


async def test_more_bytes_than_declared_stops_the_upload_at_once(tmp_path: Path) -> None:
    sent: list[int] = []

    async def endless() -> AsyncIterator[upload_pb2.UploadRequest]:
        yield upload_pb2.UploadRequest(header=header(size=1000))
        for i in range(100):
            sent.append(i)
            yield upload_pb2.UploadRequest(chunk={"data": b"y" * 600})

    receiver = UploadReceiver(as_received(endless()), LIMITS)
    await receiver.read_header()
    with pytest.raises(InvalidArgument, match="received more than the 1000 bytes"):
        await receiver.receive_into(tmp_path / "spooled")
    assert len(sent) == 2  # refused on the chunk that went over, not at the end of the stream


async def test_fewer_bytes_than_declared_names_both_numbers(tmp_path: Path) -> None:
    messages = grpc_style(b"z" * 500)
    messages[0].header.size_bytes = 800
    assert "received 500 bytes but header.size_bytes declared 800" in await rejection(messages, tmp_path)


async def test_checksum_mismatch_names_both_digests(tmp_path: Path) -> None:
    data = b"the bytes that arrived"
    wrong = hashlib.sha256(b"the bytes that were sent").hexdigest()
    reason = await rejection(grpc_style(data, sha256=wrong), tmp_path)
    assert wrong in reason and hashlib.sha256(data).hexdigest() in reason


async def test_silence_between_chunks_ends_the_upload_after_the_idle_timeout(tmp_path: Path) -> None:
    async def goes_silent() -> AsyncIterator[upload_pb2.UploadRequest]:
        yield upload_pb2.UploadRequest(header=header(size=1000))
        yield upload_pb2.UploadRequest(chunk={"data": b"y" * 100})
        await asyncio.Event().wait()
        yield upload_pb2.UploadRequest()  # never reached

    receiver = UploadReceiver(as_received(goes_silent()), dataclasses.replace(LIMITS, idle_seconds=0.2))
    await receiver.read_header()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"no data for 0\.2 s while waiting for the next chunk"):
        await receiver.receive_into(tmp_path / "spooled")
    assert 0.15 < time.monotonic() - started < 2


async def test_silence_before_the_header_ends_the_upload_too() -> None:
    async def says_nothing() -> AsyncIterator[upload_pb2.UploadRequest]:
        await asyncio.Event().wait()
        yield upload_pb2.UploadRequest()  # never reached

    receiver = UploadReceiver(as_received(says_nothing()), dataclasses.replace(LIMITS, idle_seconds=0.2))
    with pytest.raises(DeadlineExceeded, match="while waiting for the header"):
        await receiver.read_header()


def test_upload_slots_cap_each_tenant_on_its_own_and_come_back() -> None:
    slots = UploadSlots(per_tenant=2)
    with slots.hold("ten_a"), slots.hold("ten_a"):
        with pytest.raises(ResourceExhausted, match="at most 2 at once"), slots.hold("ten_a"):
            pass
        with slots.hold("ten_b"):
            assert (slots.in_progress("ten_a"), slots.in_progress("ten_b")) == (2, 1)
    with pytest.raises(RuntimeError), slots.hold("ten_a"):
        raise RuntimeError("the upload failed")
    assert slots.in_progress("ten_a") == 0


def test_spool_file_is_removed_when_the_upload_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), spool_file(tmp_path, "clip.MOV") as path:
        assert path.parent == tmp_path and path.suffix == ".mov"
        path.write_bytes(b"partial")
        raise RuntimeError("client went away")
    assert list(tmp_path.iterdir()) == []


def test_stale_spool_files_are_cleared_but_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "upload-abc.mp4").write_bytes(b"left by a crash")
    (tmp_path / "keep.txt").write_text("not ours")
    assert remove_stale_spool_files(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


async def test_a_slow_upload_that_keeps_sending_is_never_cut(tmp_path: Path) -> None:
    # One timer serves the whole stream: it must measure each silence, not the upload's length.
    data = os.urandom(12 * 1000)

    async def trickles() -> AsyncIterator[upload_pb2.UploadRequest]:
        yield upload_pb2.UploadRequest(header=header(size=len(data)))
        for offset in range(0, len(data), 1000):
            await asyncio.sleep(0.1)
            yield upload_pb2.UploadRequest(chunk={"data": data[offset:offset + 1000]})

    receiver = UploadReceiver(as_received(trickles()), dataclasses.replace(LIMITS, idle_seconds=0.25))
    await receiver.read_header()
    await asyncio.sleep(0.4)  # between the header and the chunks (the profile check): not the client's silence
    started = time.monotonic()
    received = await receiver.receive_into(tmp_path / "spooled")
    assert time.monotonic() - started > 1.0  # four times the idle limit
    assert received.path.read_bytes() == data
