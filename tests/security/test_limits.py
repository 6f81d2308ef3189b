"""Limits an attacker leans on: oversize messages and fields, stalled and
concurrent uploads. Each ends with a clear status and leaves nothing behind."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from tests.calls import bearer, upload_requests
from tests.security.world import World
from vtc.v1 import metadata_pb2, metadata_pb2_grpc, upload_pb2, upload_pb2_grpc

MiB = 1024 * 1024


def _upload(world: World, requests: Iterator[upload_pb2.UploadRequest], token: str | None = None) -> grpc.StatusCode:
    return world.grpc_call(lambda channel: upload_pb2_grpc.UploadServiceStub(channel).Upload(
        requests, metadata=bearer(token or world.b.token), timeout=60))


def _header(**fields: object) -> upload_pb2.UploadRequest:
    values: dict[str, object] = {"filename": "clip.mp4", "size_bytes": 1000}
    values.update(fields)
    return upload_pb2.UploadRequest(header=upload_pb2.UploadHeader(**values))  # type: ignore[arg-type]


def test_message_over_the_grpc_limit(world: World) -> None:
    assert _upload(world, iter([_header(size_bytes=9 * MiB),
                                upload_pb2.UploadRequest(chunk={"data": b"\0" * 9 * MiB})])) \
        == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert world.spool_files() == []


def test_chunk_over_the_per_message_limit(world: World) -> None:
    assert _upload(world, iter([_header(size_bytes=2 * MiB),
                                upload_pb2.UploadRequest(chunk={"data": b"\0" * 2 * MiB})])) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert world.spool_files() == []


@pytest.mark.parametrize("size", [-1, 0, 2**62], ids=["negative", "zero", "exabytes"])
def test_declared_size_out_of_bounds(size: int, world: World) -> None:
    assert _upload(world, iter([_header(size_bytes=size)])) == grpc.StatusCode.INVALID_ARGUMENT


def test_more_bytes_than_declared(world: World) -> None:
    assert _upload(world, iter([_header(size_bytes=10), upload_pb2.UploadRequest(chunk={"data": b"\0" * 4096})])) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert world.spool_files() == []


def test_stream_without_a_header(world: World) -> None:
    assert _upload(world, iter([upload_pb2.UploadRequest(chunk={"data": b"\0" * 10})])) \
        == grpc.StatusCode.INVALID_ARGUMENT


def _stalling(release: threading.Event, size: int = 10 * MiB) -> Iterator[upload_pb2.UploadRequest]:
    yield _header(size_bytes=size)
    yield upload_pb2.UploadRequest(chunk={"data": b"\0" * 1024})
    release.wait(30)


def test_stalled_upload_over_grpc_is_dropped(world: World) -> None:
    release = threading.Event()
    started = time.monotonic()
    try:
        code = _upload(world, _stalling(release))
    finally:
        release.set()
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < world.idle_timeout_seconds + 10
    assert world.spool_files() == []


def test_stalled_upload_over_rest_is_dropped(world: World) -> None:
    """Headers and 1 KiB of a 10 MiB body, then silence: the gateway answers and hangs up by itself."""
    import socket
    from urllib.parse import urlparse

    rest = urlparse(world.stack.rest_url)
    started = time.monotonic()
    with socket.create_connection((rest.hostname, rest.port), timeout=world.idle_timeout_seconds + 10) as conn:
        conn.sendall((f"POST /v1/uploads?header.filename=stall.mp4&header.size_bytes={10 * MiB} HTTP/1.1\r\n"
                      f"Host: {rest.hostname}\r\nAuthorization: Bearer {world.b.token}\r\n"
                      f"Content-Length: {10 * MiB}\r\n\r\n").encode() + b"\0" * 1024)
        answer = conn.recv(4096).decode(errors="replace")
    assert answer.split(" ")[1] in {"408", "504"}, answer
    assert time.monotonic() - started < world.idle_timeout_seconds + 10
    time.sleep(0.5)
    assert world.spool_files() == []


def test_concurrent_uploads_over_the_cap(world: World) -> None:
    """One tenant opens more uploads than it may at once: the extra one is refused; the others are unharmed."""
    release = threading.Event()
    codes: list[grpc.StatusCode] = []
    holders = [threading.Thread(target=lambda: codes.append(_upload(world, _stalling(release))))
               for _ in range(world.max_concurrent_uploads)]
    for holder in holders:
        holder.start()
    time.sleep(0.5)
    try:
        extra = _upload(world, _stalling(release))
    finally:
        release.set()
        for holder in holders:
            holder.join(30)
    assert extra == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_six_megabyte_title(world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.media import make_clip

    clip = make_clip(tmp_path / "t.mp4", seconds=0.5, width=160, height=96)
    assert _upload(world, upload_requests(clip, title="T" * 6 * MiB)) == grpc.StatusCode.INVALID_ARGUMENT
    with world.channel() as channel:
        metadata_pb2_grpc.MetadataServiceStub(channel).ListVideos(
            metadata_pb2.ListVideosRequest(page_size=500), metadata=bearer(world.b.token), timeout=10)


@pytest.mark.parametrize("name", ["clip\x00.mp4", "clip\x1b[31m.mp4", "a" * 10_000 + ".mp4", "../../x.mp4\n"],
                         ids=["nul", "escape sequence", "10k characters", "traversal and newline"])
def test_hostile_filename(name: str, world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.media import make_clip

    clip = make_clip(tmp_path / "f.mp4", seconds=0.5, width=160, height=96)
    data = clip.read_bytes()

    def requests() -> Iterator[upload_pb2.UploadRequest]:
        yield _header(filename=name, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        yield upload_pb2.UploadRequest(chunk={"data": data})

    assert _upload(world, requests()) == grpc.StatusCode.INVALID_ARGUMENT


def _noise_clip(path, seconds: float = 1.0):  # type: ignore[no-untyped-def]
    """Random pictures: x264 cannot shrink them, so a second of 640x360 weighs megabytes."""
    from fractions import Fraction

    import av
    import numpy as np

    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        for i in range(round(seconds * 25)):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (360, 640, 3), dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_uploads_beyond_the_stored_bytes_quota(world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A tenant that keeps uploading is stopped at its quota, with the limit named; others are not."""
    hoarder = world.new_tenant("hoarder")
    clip = _noise_clip(tmp_path / "noise.mp4")
    assert clip.stat().st_size > 1024 * 1024
    refusal = None
    with world.channel() as channel:
        stub = upload_pb2_grpc.UploadServiceStub(channel)
        for _ in range(12):
            try:
                stub.Upload(upload_requests(clip), metadata=bearer(hoarder.token), timeout=60)
            except grpc.RpcError as error:
                refusal = error
                break
            time.sleep(0.2)
    assert refusal is not None and refusal.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(8 * 1024 * 1024) in refusal.details() or "8.0 MiB" in refusal.details() or "8 MiB" in refusal.details()
