"""Upload over gRPC against the whole service: the auth, metadata, process and
upload components on one real gRPC server on 127.0.0.1, sharing one in-process
bus and one local object store, with tokens checked against auth's own JWKS,
as the all-in-one process assembles them.

The stack is started by `start_stack()` below; other suites can reuse it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.api import httpbody_pb2

from services.auth_svc.server import AuthComponent
from services.auth_svc.settings import Settings as AuthSettings
from services.metadata_svc.server import MetadataComponent
from services.metadata_svc.settings import Settings as MetadataSettings
from services.process_svc.server import ProcessComponent
from services.process_svc.settings import Settings as ProcessSettings
from services.shared.bus.memory import InProcessBus
from services.shared.channels import peer_channel
from services.shared.logs import JsonFormatter
from services.shared.server import RunningServer, start_server
from services.shared.storage.local import LocalDirectoryStore
from services.shared.tls import TlsFiles
from services.shared.tokens import ServiceToken, TokenVerifier
from services.upload_svc.server import UploadComponent
from services.upload_svc.settings import Settings as UploadSettings
from services.upload_svc.spool import BATCH_BYTES
from tests.media import make_clip
from vtc.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    metadata_pb2,
    metadata_pb2_grpc,
    process_pb2,
    process_pb2_grpc,
    upload_pb2,
    upload_pb2_grpc,
)

MiB = 1024 * 1024
HOST = "127.0.0.1"

pytestmark = pytest.mark.asyncio(loop_scope="module")


# --- the stack ---------------------------------------------------------------------------------

def _reserve_port() -> int:
    """A port free right now. The components must know the server's address before
    it listens (it is their own peer), so the port is picked first, then bound."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    token: str


@dataclass
class Stack:
    data_dir: Path
    address: str
    server: RunningServer
    bus: InProcessBus
    channel: grpc.aio.Channel

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "tmp" / "uploads"

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    def spool_files(self) -> list[Path]:
        return sorted(self.spool_dir.iterdir()) if self.spool_dir.exists() else []

    def stored_video_ids(self) -> set[str]:
        """Videos with anything in object storage (keys are <tenant>/<video>/...)."""
        return {p.relative_to(self.objects_dir).parts[1] for p in self.objects_dir.rglob("*") if p.is_file()}

    @property
    def uploads(self) -> upload_pb2_grpc.UploadServiceStub:
        return upload_pb2_grpc.UploadServiceStub(self.channel)

    @property
    def metadata(self) -> metadata_pb2_grpc.MetadataServiceStub:
        return metadata_pb2_grpc.MetadataServiceStub(self.channel)

    async def bootstrap_token(self, key_file: str) -> str:
        """A token for one of the keys the bootstrap wrote (admin.key, operator.key, service.key)."""
        api_key = (self.data_dir / "keys" / key_file).read_text().strip()
        reply = await auth_pb2_grpc.AuthServiceStub(self.channel).IssueToken(
            auth_pb2.IssueTokenRequest(api_key=api_key), timeout=10)
        return reply.access_token

    async def tenant_token(self, name: str, scopes: tuple[str, ...] = ()) -> Caller:
        """A new tenant (made by the operator) with one API key (default scopes unless
        given), exchanged for a token."""
        auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        operator = bearer(await self.bootstrap_token("operator.key"))
        tenant = await auth.CreateTenant(auth_pb2.CreateTenantRequest(name=name), metadata=operator, timeout=10)
        key = await auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(
            tenant_id=tenant.tenant_id, name=f"{name} uploads", scopes=list(scopes)), metadata=operator, timeout=10)
        reply = await auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=key.secret), timeout=10)
        return Caller(tenant_id=tenant.tenant_id, token=reply.access_token)

    async def stop(self) -> None:
        await self.channel.close()
        await self.server.stop(1.0)
        await self.bus.close()


async def start_stack(data_dir: Path, *, with_metadata: bool = True, tls: TlsFiles | None = None,
                      **upload_fields: object) -> Stack:
    """auth + process + metadata + upload on one server on a free port. Without
    metadata, metadata_addr points at a port nobody listens on. With tls, every
    service's TLS settings are those files (the test's channel presents the
    same certificate). upload_fields override the upload service's settings
    (e.g. upload_idle_timeout_seconds)."""
    tls = tls or TlsFiles()
    port = _reserve_port()
    own = f"{HOST}:{port}"
    shared = dict(data_dir=data_dir, grpc_host=HOST, grpc_port=port, auth_addr=own, process_addr=own,
                  metadata_addr=own if with_metadata else f"{HOST}:{_reserve_port()}",
                  storage_url=(data_dir / "objects").resolve().as_uri(), bus_url="memory://",
                  shutdown_grace_seconds=1.0, tls_cert_file=tls.cert_file, tls_key_file=tls.key_file,
                  tls_ca_file=tls.ca_file)
    bus = InProcessBus()
    await bus.start()
    store = LocalDirectoryStore(data_dir / "objects")
    auth = AuthComponent(AuthSettings(**shared))
    upload_settings = UploadSettings(**shared, **upload_fields)
    components = [auth, ProcessComponent(ProcessSettings(**shared), bus, store)]
    if with_metadata:
        components.append(MetadataComponent(MetadataSettings(**shared), bus, store))
    components.append(UploadComponent(upload_settings, store,
                                      ServiceToken(upload_settings.read_service_api_key, peer_channel(own, tls=tls))))
    server = await start_server(components, TokenVerifier(auth.local_jwks), HOST, port, tls=tls)
    return Stack(data_dir=data_dir, address=own, server=server, bus=bus, channel=peer_channel(own, tls=tls))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    running = await start_stack(tmp_path_factory.mktemp("upload-stack"))
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def caller(stack: Stack) -> Caller:
    return await stack.tenant_token("Upload Co")


@pytest.fixture(scope="module")
def token(caller: Caller) -> str:
    return caller.token


# --- media and client --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("upload-media")


@pytest.fixture(scope="module")
def small_clip(media: Path) -> Path:
    """What 'the next good upload' sends: 1 s, 320x180, cheap to transcode."""
    return make_clip(media / "next.mp4", seconds=1.0, width=320, height=180)


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


async def requests_for(path: Path, *, filename: str | None = None, size_bytes: int | None = None,
                       sha256: str = "", profile: str = "", title: str = "", chunk_bytes: int = MiB,
                       before_chunk: Callable[[int], Awaitable[None]] | None = None
                       ) -> AsyncIterator[upload_pb2.UploadRequest]:
    """The header, then the file read from disk chunk by chunk, as the vtc CLI sends it."""
    yield upload_pb2.UploadRequest(header=upload_pb2.UploadHeader(
        filename=filename or path.name, size_bytes=path.stat().st_size if size_bytes is None else size_bytes,
        sha256=sha256, profile=profile, title=title))
    with path.open("rb") as handle:
        index = 0
        while data := handle.read(chunk_bytes):
            if before_chunk is not None:
                await before_chunk(index)
            yield upload_pb2.UploadRequest(chunk=httpbody_pb2.HttpBody(data=data))
            index += 1


async def upload(stack: Stack, token: str, path: Path, **header) -> upload_pb2.UploadResponse:  # type: ignore[no-untyped-def]
    return await stack.uploads.Upload(requests_for(path, **header), metadata=bearer(token), timeout=60)


async def listed_video_ids(stack: Stack, token: str) -> set[str]:
    reply = await stack.metadata.ListVideos(metadata_pb2.ListVideosRequest(page_size=500), metadata=bearer(token),
                                            timeout=10)
    return {v.video_id for v in reply.videos}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- accepted uploads --------------------------------------------------------------------------

async def test_good_clip_is_probed_stored_and_recorded(stack: Stack, caller: Caller, clip_640x360: Path) -> None:
    token = caller.token
    reply = await upload(stack, token, clip_640x360, filename="beach.mp4", title="Beach day",
                         sha256=sha256_of(clip_640x360))

    assert reply.video_id.startswith("vid_") and reply.job_id.startswith("job_")
    assert reply.size_bytes == clip_640x360.stat().st_size
    assert reply.sha256 == sha256_of(clip_640x360)
    probe = reply.probe
    assert (probe.width, probe.height, probe.video_codec) == (640, 360, "h264")
    assert probe.fps == pytest.approx(30.0)
    assert probe.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert probe.has_audio and probe.audio_codec == "aac"

    video = await stack.metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=reply.video_id),
                                          metadata=bearer(token), timeout=10)
    assert (video.title, video.filename, video.size_bytes, video.sha256) == (
        "Beach day", "beach.mp4", reply.size_bytes, reply.sha256)
    assert video.probe == reply.probe
    assert video.job.job_id == reply.job_id and video.job.profile == "default"
    # The source in storage is the very file uploaded.
    assert (stack.objects_dir / video.source_key).read_bytes() == clip_640x360.read_bytes()
    assert video.tenant_id == caller.tenant_id
    assert video.source_key == f"{caller.tenant_id}/{reply.video_id}/source.mp4"
    assert stack.spool_files() == []


async def test_large_upload_streams_to_disk_in_1_mib_chunks(stack: Stack, token: str, media: Path) -> None:
    # Uncompressed pictures make a small clip a big file: 2 s of 640x360 is about 20 MiB.
    big = make_clip(media / "raw.mkv", seconds=2.0, width=640, height=360, codec="rawvideo")
    size = big.stat().st_size
    assert size > 16 * MiB

    spooled_sizes: list[int] = []

    async def spool_has_grown(index: int) -> None:
        # Before sending chunk n, the service must already have written the chunks
        # before it to its spool file, but for the batch it is gathering (spool.py
        # writes BATCH_BYTES at a time): the upload goes to disk as it arrives.
        if index == 0:
            return
        deadline = time.monotonic() + 10
        while True:
            files = stack.spool_files()
            written = files[0].stat().st_size if files else 0
            if written >= index * MiB - BATCH_BYTES:
                spooled_sizes.append(written)
                return
            assert time.monotonic() < deadline, f"spool holds {written} bytes before chunk {index}"
            await asyncio.sleep(0.005)

    digest = sha256_of(big)
    tracemalloc.start()
    try:
        reply = await stack.uploads.Upload(
            requests_for(big, sha256=digest, before_chunk=spool_has_grown), metadata=bearer(token), timeout=120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert reply.size_bytes == size and reply.probe.video_codec == "rawvideo"
    assert (reply.probe.width, reply.probe.height) == (640, 360)
    assert len(spooled_sizes) == -(-size // MiB) - 1
    assert spooled_sizes == sorted(spooled_sizes)
    # Client and server share this process: together they held a few chunks at a
    # time (the server at most two batches, the one written and the one gathered,
    # plus a chunk for each side), never the file.
    # Two batches in the writer, a chunk or two in flight on each side (client and server share this process).
    assert peak < 3 * BATCH_BYTES + 2 * MiB < size, f"peak Python memory {peak} bytes for a {size}-byte upload"
    assert stack.spool_files() == []


async def test_accepted_upload_is_logged_with_its_ids_and_tenant(
        stack: Stack, caller: Caller, small_clip: Path) -> None:
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("vtc.upload")
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        reply = await upload(stack, caller.token, small_clip)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    accepted = [r for r in records if r["msg"] == "upload accepted"]
    assert len(accepted) == 1
    assert accepted[0]["video_id"] == reply.video_id and accepted[0]["job_id"] == reply.job_id
    assert accepted[0]["tenant"] == caller.tenant_id


# --- rejected uploads --------------------------------------------------------------------------

@dataclass(frozen=True)
class BadUpload:
    name: str
    make: Callable[[Path, Path], Path]  # (media dir, good clip) -> file to send
    header: dict
    reason: str


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_UPLOADS = [
    BadUpload("empty", lambda d, c: _write(d / "empty.mp4", b""), {}, "the file is empty"),
    BadUpload("random bytes", lambda d, c: _write(d / "noise.mp4", os.urandom(300_000)), {},
              "not a video file: its format is not one we recognise"),
    BadUpload("truncated mp4", lambda d, c: _write(d / "half.mp4", c.read_bytes()[: c.stat().st_size // 2]), {},
              "the file is truncated"),
    BadUpload("text named .mp4", lambda d, c: _write(d / "notes.mp4", b"not a video, just notes\n" * 300), {},
              "not a video file: it contains text"),
    BadUpload("wrong declared size", lambda d, c: c, {"size_bytes_delta": 1000},
              "bytes but header.size_bytes declared"),
    BadUpload("wrong sha256", lambda d, c: c, {"sha256": hashlib.sha256(b"another file").hexdigest()},
              "sha256 mismatch: the header declared " + hashlib.sha256(b"another file").hexdigest()),
    BadUpload("audio only, under a profile of video outputs", lambda d, c: make_clip(d / "voice.m4a", seconds=1.0,
                                                                                    video=False), {},
              "the file holds only audio (aac), and profile 'default' makes video from pictures"),
    BadUpload("unknown profile", lambda d, c: c, {"profile": "cinema-8k"}, "unknown profile 'cinema-8k'"),
    BadUpload("hls playlist naming another file",
              lambda d, c: _write(d / "evil.m3u8", f"#EXTM3U\n#EXTINF:1.0,\n{c}\n#EXT-X-ENDLIST\n".encode()), {},
              "playlists and file lists are not accepted; upload the media file itself"),
    BadUpload("concat list naming another file",
              lambda d, c: _write(d / "list.mp4", f"ffconcat version 1.0\nfile '{c}'\n".encode()), {},
              "playlists and file lists are not accepted; upload the media file itself"),
]


@pytest.mark.parametrize("bad", BAD_UPLOADS, ids=lambda b: b.name)
async def test_bad_upload_is_refused_with_its_reason_and_leaves_nothing(
        bad: BadUpload, stack: Stack, token: str, media: Path, clip_640x360: Path, small_clip: Path) -> None:
    path = bad.make(media, clip_640x360)
    header = dict(bad.header)
    if delta := header.pop("size_bytes_delta", 0):
        header["size_bytes"] = path.stat().st_size + delta
    videos_before = await listed_video_ids(stack, token)
    assert stack.stored_video_ids() <= videos_before

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await upload(stack, token, path, **header)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.reason in refused.value.details()
    assert await listed_video_ids(stack, token) == videos_before
    assert stack.stored_video_ids() <= videos_before
    assert stack.spool_files() == []
    # And the service still takes the next good upload.
    accepted = await upload(stack, token, small_clip)
    assert (accepted.probe.width, accepted.probe.height) == (320, 180)


async def test_size_mismatch_names_both_numbers(stack: Stack, token: str, clip_640x360: Path) -> None:
    size = clip_640x360.stat().st_size
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await upload(stack, token, clip_640x360, size_bytes=size + 1000)
    assert f"received {size} bytes but header.size_bytes declared {size + 1000}" in refused.value.details()


async def test_checksum_mismatch_names_both_digests(stack: Stack, token: str, clip_640x360: Path) -> None:
    declared = hashlib.sha256(b"another file").hexdigest()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await upload(stack, token, clip_640x360, sha256=declared)
    assert declared in refused.value.details() and sha256_of(clip_640x360) in refused.value.details()


async def test_unknown_profile_lists_the_available_ones(stack: Stack, token: str, clip_640x360: Path) -> None:
    profiles = await process_pb2_grpc.ProcessServiceStub(stack.channel).ListProfiles(
        process_pb2.ListProfilesRequest(), metadata=bearer(token), timeout=10)
    names = [p.name for p in profiles.profiles]
    assert "default" in names

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await upload(stack, token, clip_640x360, profile="cinema-8k")
    assert all(name in refused.value.details() for name in names)


async def test_upload_without_a_token_is_unauthenticated(stack: Stack, clip_640x360: Path) -> None:
    videos_before = stack.stored_video_ids()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.uploads.Upload(requests_for(clip_640x360), timeout=30)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert stack.stored_video_ids() == videos_before


async def test_upload_with_a_read_only_key_is_denied(stack: Stack, clip_640x360: Path) -> None:
    reader = (await stack.tenant_token("Read Only Co", scopes=("videos:read",))).token
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await upload(stack, reader, clip_640x360)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "videos:write" in refused.value.details()
    assert await listed_video_ids(stack, reader) == set()


async def test_client_hanging_up_mid_upload_leaves_no_spool_file(stack: Stack, token: str, media: Path) -> None:
    data = media / "endless.mp4"
    data.write_bytes(os.urandom(BATCH_BYTES + 3 * MiB))
    videos_before = stack.stored_video_ids()
    hold = asyncio.Event()
    sent_chunks = BATCH_BYTES // MiB + 1  # a whole batch on disk, the next one being gathered

    async def stall(index: int) -> None:
        if index == sent_chunks:
            await hold.wait()  # never set: the client stops sending mid-file

    call = stack.uploads.Upload(requests_for(data, before_chunk=stall), metadata=bearer(token), timeout=60)
    deadline = time.monotonic() + 30
    while not (stack.spool_files() and stack.spool_files()[0].stat().st_size >= BATCH_BYTES):
        assert time.monotonic() < deadline, "the upload never reached the spool"
        await asyncio.sleep(0.01)

    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    deadline = time.monotonic() + 10
    while stack.spool_files():
        assert time.monotonic() < deadline, f"spool files left behind: {stack.spool_files()}"
        await asyncio.sleep(0.01)
    assert stack.stored_video_ids() == videos_before


async def test_video_that_cannot_be_recorded_leaves_no_source(tmp_path: Path, clip_640x360: Path) -> None:
    # This stack has no metadata service: RegisterVideo finds nobody listening.
    lonely = await start_stack(tmp_path, with_metadata=False)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await upload(lonely, (await lonely.tenant_token("No Metadata Co")).token, clip_640x360)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "metadata service is unreachable" in refused.value.details()
        assert lonely.stored_video_ids() == set()
        assert lonely.spool_files() == []
    finally:
        await lonely.stop()
