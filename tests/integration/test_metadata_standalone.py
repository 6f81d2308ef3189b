"""The metadata service running alone: create_server with its own bus, store
and a TokenVerifier fed from the auth service's JWKS over gRPC, and
`python -m services.metadata_svc` starting and stopping on a signal. The auth
service itself is built elsewhere; here a server that only answers GetJwks
(with the test signing key) stands in for it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.json_format import ParseDict
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.metadata_svc.server import create_server
from services.metadata_svc.settings import Settings
from services.shared.ids import new_id
from services.shared.storage.keys import source_key
from tests.tokens import TestKeys
from vtc.v1 import auth_pb2, auth_pb2_grpc, metadata_pb2, metadata_pb2_grpc

REPO = Path(__file__).resolve().parents[2]


class JwksOnlyAuth(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, keys: TestKeys) -> None:
        self._keys = keys

    async def GetJwks(self, request: auth_pb2.GetJwksRequest, context: grpc.aio.ServicerContext) -> auth_pb2.Jwks:
        return ParseDict(self._keys.jwks(), auth_pb2.Jwks(), ignore_unknown_fields=True)


@pytest.fixture
async def auth_addr() -> AsyncIterator[tuple[str, TestKeys]]:
    keys = TestKeys()
    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServiceServicer_to_server(JwksOnlyAuth(keys), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", keys
    finally:
        await server.stop(0)


async def test_create_server_checks_tokens_against_the_auth_jwks_and_keeps_data_under_data_dir(
        tmp_path: Path, auth_addr: tuple[str, TestKeys]) -> None:
    address, keys = auth_addr
    settings = Settings(data_dir=tmp_path / "var", grpc_port=0, auth_addr=address, bus_url="memory://")
    running = await create_server(settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = metadata_pb2_grpc.MetadataServiceStub(channel)
            video_id = new_id("vid")
            await stub.RegisterVideo(metadata_pb2.RegisterVideoRequest(
                video_id=video_id, job_id=new_id("job"), tenant_id="ten_a", title="alone",
                source_key=source_key("ten_a", video_id, "a.mp4")),
                metadata=keys.metadata(tenant_id="system", scopes=("service",)))
            video = await stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=video_id),
                                        metadata=keys.metadata(tenant_id="ten_a"))
            assert video.title == "alone" and video.job.profile == "default"

            stranger = TestKeys()  # same kid, a key the auth service never published
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=video_id),
                                    metadata=stranger.metadata(tenant_id="ten_a"))
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert (tmp_path / "var" / "metadata.db").is_file()
    finally:
        await running.stop(0)


def listening_port(process: subprocess.Popen[str]) -> int:
    assert process.stdout is not None
    for line in process.stdout:  # JSON log lines; the listening one names the port
        record = json.loads(line)
        if "listening on" in record["msg"]:
            return int(record["msg"].rsplit(":", 1)[1])
    raise AssertionError(f"the service exited ({process.wait()}) without saying where it listens")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def health_of(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="vtc.v1.MetadataService"), timeout=5)
    return reply.status


async def wait_for_health(port: int, status: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while (seen := await health_of(port)) != status:
        assert time.monotonic() < deadline, f"health stayed {seen}, expected {status}"
        await asyncio.sleep(0.1)


async def test_python_m_is_ready_only_while_auth_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    auth_port = free_port()
    env = {**os.environ, "VTC_DATA_DIR": str(tmp_path / "var"), "VTC_GRPC_PORT": "0",
           "VTC_AUTH_ADDR": f"127.0.0.1:{auth_port}", "VTC_BUS_URL": "memory://",
           "VTC_READINESS_INTERVAL_SECONDS": "0.2"}
    process = subprocess.Popen([sys.executable, "-m", "services.metadata_svc"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = await asyncio.wait_for(asyncio.to_thread(listening_port, process), 60)
        # Up, but its auth peer is not: an orchestrator must not send it traffic yet.
        assert await health_of(port) == health_pb2.HealthCheckResponse.NOT_SERVING
        auth = grpc.aio.server()
        auth_pb2_grpc.add_AuthServiceServicer_to_server(JwksOnlyAuth(TestKeys()), auth)
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), auth)
        auth.add_insecure_port(f"127.0.0.1:{auth_port}")
        await auth.start()
        try:
            await wait_for_health(port, health_pb2.HealthCheckResponse.SERVING)
        finally:
            await auth.stop(0)
        await wait_for_health(port, health_pb2.HealthCheckResponse.NOT_SERVING)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(("service", "env", "named"), [
    ("metadata_svc", {}, "VTC_AUTH_ADDR"),
    ("upload_svc", {"VTC_AUTH_ADDR": "127.0.0.1:9"}, "VTC_METADATA_ADDR"),
    ("upload_svc", {"VTC_AUTH_ADDR": "127.0.0.1:9", "VTC_METADATA_ADDR": "127.0.0.1:9"}, "VTC_PROCESS_ADDR"),
])
def test_a_service_alone_without_a_peer_address_fails_at_start_naming_the_setting(
        tmp_path: Path, service: str, env: dict[str, str], named: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VTC_")}
    done = subprocess.run([sys.executable, "-m", f"services.{service}"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**clean, "VTC_DATA_DIR": str(tmp_path), "VTC_GRPC_PORT": "0", **env})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{named} is not set" in done.stderr.strip().splitlines()[-1]
