"""Stalled and piled-up uploads, over gRPC and over REST through the real Envoy:
an upload that goes silent ends with DEADLINE_EXCEEDED after the idle timeout,
a tenant's uploads beyond the cap are refused with RESOURCE_EXHAUSTED, and
neither leaves a spool file or a slot behind.

The whole service runs as in test_upload_grpc (one real gRPC server on port 0)
with a short idle timeout and a cap of two, and Envoy in front of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.api import httpbody_pb2

from gateway.envoy_config import build_envoy_config
from gateway.envoy_process import DESCRIPTOR_SET, EnvoyProcess, start_envoy
from services.upload_svc.spool import BATCH_BYTES
from tests.integration.test_upload_grpc import Caller, Stack, bearer, start_stack, upload
from tests.media import make_clip
from vtc.v1 import upload_pb2

pytestmark = pytest.mark.asyncio(loop_scope="module")

IDLE_SECONDS = 1.5
PER_TENANT = 2
KiB = 1024


@dataclass
class Limited:
    stack: Stack
    envoy: EnvoyProcess


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def limited(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Limited]:
    stack = await start_stack(tmp_path_factory.mktemp("upload-limits"), upload_idle_timeout_seconds=IDLE_SECONDS,
                              upload_max_concurrent_per_tenant=PER_TENANT)
    try:
        workdir = tmp_path_factory.mktemp("upload-limits-envoy")
        config = build_envoy_config(descriptor_path=DESCRIPTOR_SET, upstreams=stack.address,
                                    listen_port=0, admin_socket=workdir / "admin.sock")
        envoy = await start_envoy(config, workdir=workdir)
        try:
            yield Limited(stack, envoy)
        finally:
            await envoy.stop()
    finally:
        await stack.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tenant_a(limited: Limited) -> Caller:
    return await limited.stack.tenant_token("Stalling Co")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tenant_b(limited: Limited) -> Caller:
    return await limited.stack.tenant_token("Patient Co")


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("limits-media") / "small.mp4", seconds=1.0, width=320, height=180)


def header(size: int, filename: str = "stalled.mp4") -> upload_pb2.UploadRequest:
    return upload_pb2.UploadRequest(header=upload_pb2.UploadHeader(filename=filename, size_bytes=size))


def chunk(data: bytes) -> upload_pb2.UploadRequest:
    return upload_pb2.UploadRequest(chunk=httpbody_pb2.HttpBody(data=data))


async def stalling(first_bytes: int, sent: asyncio.Event) -> AsyncIterator[upload_pb2.UploadRequest]:
    """The header and first_bytes of a 10 MiB file, then silence (the connection stays open)."""
    yield header(10 * 1024 * KiB)
    for start in range(0, first_bytes, 1024 * KiB):  # in chunks of 1 MiB, the most one message may carry
        yield chunk(os.urandom(min(1024 * KiB, first_bytes - start)))
    sent.set()
    await asyncio.Event().wait()


async def trickling(stop: asyncio.Event) -> AsyncIterator[upload_pb2.UploadRequest]:
    """A slow but live upload: a small chunk well within every idle timeout."""
    yield header(10 * 1024 * KiB, "slow.mp4")
    while not stop.is_set():
        yield chunk(os.urandom(KiB))
        await asyncio.sleep(IDLE_SECONDS / 5)


async def eventually(condition, what: str, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)


@dataclass
class HttpReply:
    status: int
    body: dict


async def rest_upload_that_stalls(envoy: EnvoyProcess, token: str, declared: int, first: bytes,
                                  *, timeout: float = 30.0) -> HttpReply:
    """POST /v1/uploads announcing `declared` bytes, sending `first`, then nothing.
    Raw HTTP/1.1 on a socket: an HTTP client library would wait to send the rest."""
    reader, writer = await asyncio.open_connection("127.0.0.1", envoy.port)
    try:
        writer.write((f"POST /v1/uploads?header.filename=stalled.mp4&header.size_bytes={declared} HTTP/1.1\r\n"
                      f"Host: 127.0.0.1:{envoy.port}\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Type: video/mp4\r\nContent-Length: {declared}\r\n\r\n").encode() + first)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), timeout)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(reader.readexactly(length), timeout)
        return HttpReply(status=int(status_line.split()[1]), body=json.loads(body))
    finally:
        writer.close()


# --- idle timeout ---------------------------------------------------------------------------------

@pytest.mark.parametrize("first_bytes", [0, BATCH_BYTES + 64 * KiB], ids=["before-any-data", "mid-file"])
async def test_stalled_grpc_upload_ends_with_deadline_exceeded_and_leaves_no_spool_file(
        limited: Limited, tenant_a: Caller, first_bytes: int) -> None:
    stack = limited.stack
    sent = asyncio.Event()
    call = stack.uploads.Upload(stalling(first_bytes, sent), metadata=bearer(tenant_a.token), timeout=20)
    await asyncio.wait_for(sent.wait(), 10)
    silent_since = time.monotonic()
    if first_bytes:
        # The file was spooling when the client went silent: its first batch is on disk (spool.py writes
        # BATCH_BYTES at a time), the rest is held until the upload ends.
        await eventually(lambda: stack.spool_files() and stack.spool_files()[0].stat().st_size == BATCH_BYTES,
                         "the first batch is spooled")

    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await call
    waited = time.monotonic() - silent_since

    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert f"no data for {IDLE_SECONDS:g} s" in ended.value.details()
    assert "stalled" in ended.value.details()
    assert IDLE_SECONDS * 0.9 <= waited < IDLE_SECONDS + 5
    assert stack.spool_files() == []


@pytest.mark.parametrize("first_bytes", [0, 200 * KiB], ids=["headers-only", "mid-body"])
async def test_stalled_rest_upload_through_envoy_is_a_json_504_and_leaves_no_spool_file(
        limited: Limited, tenant_a: Caller, first_bytes: int) -> None:
    started = time.monotonic()
    reply = await rest_upload_that_stalls(limited.envoy, tenant_a.token, declared=4 * 1024 * KiB,
                                          first=os.urandom(first_bytes))
    waited = time.monotonic() - started

    assert reply.status == 504, reply
    assert reply.body["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert f"no data for {IDLE_SECONDS:g} s" in reply.body["message"]
    assert IDLE_SECONDS * 0.9 <= waited < IDLE_SECONDS + 5
    assert limited.stack.spool_files() == []


async def test_slow_upload_that_keeps_sending_is_not_cut(limited: Limited, tenant_a: Caller,
                                                         small_clip: Path) -> None:
    """The timeout is between messages, not on the whole upload: a clip sent in
    small chunks over more than three idle periods still arrives."""
    data = small_clip.read_bytes()
    pieces = 8
    step = -(-len(data) // pieces)

    async def slowly() -> AsyncIterator[upload_pb2.UploadRequest]:
        yield header(len(data), "slow.mp4")
        for start in range(0, len(data), step):
            await asyncio.sleep(IDLE_SECONDS / 2)
            yield chunk(data[start:start + step])

    started = time.monotonic()
    reply = await limited.stack.uploads.Upload(slowly(), metadata=bearer(tenant_a.token), timeout=20)

    assert time.monotonic() - started > 3 * IDLE_SECONDS
    assert reply.size_bytes == len(data)


# --- concurrent uploads per tenant ----------------------------------------------------------------

async def test_uploads_beyond_the_tenant_cap_are_refused_naming_the_limit_and_others_go_on(
        limited: Limited, tenant_a: Caller, tenant_b: Caller, small_clip: Path) -> None:
    stack = limited.stack
    stop = asyncio.Event()
    holding = [stack.uploads.Upload(trickling(stop), metadata=bearer(tenant_a.token), timeout=20)
               for _ in range(PER_TENANT)]
    try:
        await eventually(lambda: len(stack.spool_files()) == PER_TENANT, f"{PER_TENANT} uploads are in progress")

        # One more from the same tenant, over gRPC and over REST: refused before any byte is spooled.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await upload(stack, tenant_a.token, small_clip)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"at most {PER_TENANT} at once" in refused.value.details()

        rest = await rest_upload_that_stalls(limited.envoy, tenant_a.token, declared=len(small_clip.read_bytes()),
                                             first=small_clip.read_bytes())
        assert rest.status == 429, rest
        assert rest.body["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert f"at most {PER_TENANT} at once" in rest.body["message"]
        assert len(stack.spool_files()) == PER_TENANT

        # Another tenant is not held up by it.
        accepted = await upload(stack, tenant_b.token, small_clip)
        assert accepted.size_bytes == small_clip.stat().st_size
    finally:
        for call in holding:
            call.cancel()
        stop.set()

    # Hung-up uploads give their slots and spool files back.
    await eventually(lambda: stack.spool_files() == [], "the cancelled uploads' spool files are gone")
    accepted = await upload(stack, tenant_a.token, small_clip)
    assert accepted.size_bytes == small_clip.stat().st_size


async def test_stalled_uploads_give_their_slots_back(limited: Limited, tenant_a: Caller, small_clip: Path) -> None:
    """A tenant whose uploads all stalled can upload again once the idle timeout ended them."""
    sent = [asyncio.Event() for _ in range(PER_TENANT)]
    stalled = [limited.stack.uploads.Upload(stalling(KiB, event), metadata=bearer(tenant_a.token), timeout=20)
               for event in sent]
    for event in sent:
        await asyncio.wait_for(event.wait(), 10)
    for call in stalled:
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await call
        assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    accepted = await upload(limited.stack, tenant_a.token, small_clip)
    assert accepted.size_bytes == small_clip.stat().st_size
    assert limited.stack.spool_files() == []
