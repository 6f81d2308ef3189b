"""TLS and mutual TLS on real gRPC servers, with a CA and certificates made
for the test (gateway.dev_certs, on the cryptography package).

A server given VTC_TLS_CERT_FILE / VTC_TLS_KEY_FILE speaks TLS only, so a
plaintext client is refused; given VTC_TLS_CA_FILE as well it also refuses a
client without a certificate from that CA. The services' own calls to each
other (upload -> auth, metadata, process) use the same settings: a whole
upload goes through a mutual-TLS server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pydantic
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.dev_certs import issue, new_ca, write_dev_certs
from services.shared.server import RunningServer, start_server
from services.shared.tls import TlsConfigError, TlsFiles
from services.upload_svc.settings import Settings as UploadSettings
from tests.integration.test_upload_grpc import bearer, start_stack, upload
from tests.media import make_clip
from tests.tokens import TestKeys
from vtc.v1 import metadata_pb2

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by another CA
    stranger_key: Path

    def pem(self, path: Path) -> bytes:
        return path.read_bytes()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("tls")
    paths = write_dev_certs(directory / "ours")
    stranger_cert, stranger_key = issue(new_ca("someone else's CA"), "stranger", server=False).write(
        directory, "stranger")
    return Certs(paths["ca_cert"], paths["server_cert"], paths["server_key"], paths["client_cert"],
                 paths["client_key"], stranger_cert, stranger_key)


async def tls_server(tls: TlsFiles) -> RunningServer:
    """A server with only the standard services (health, reflection), as every service has them."""
    return await start_server([], TestKeys().verifier(), "127.0.0.1", 0, tls=tls)


async def health(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode | str:
    """The server's health status, or the gRPC code of the failed call."""
    channel = (grpc.aio.secure_channel(address, credentials) if credentials is not None
               else grpc.aio.insecure_channel(address))
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


@pytest_asyncio.fixture(loop_scope="module")
async def tls_only(certs: Certs) -> AsyncIterator[str]:
    server = await tls_server(TlsFiles(certs.server_cert, certs.server_key))
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        await server.stop(0)


@pytest_asyncio.fixture(loop_scope="module")
async def mutual(certs: Certs) -> AsyncIterator[str]:
    server = await tls_server(TlsFiles(certs.server_cert, certs.server_key, certs.ca))
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        await server.stop(0)


async def test_tls_server_refuses_a_plaintext_client(tls_only: str, certs: Certs) -> None:
    assert await health(tls_only, None) == grpc.StatusCode.UNAVAILABLE
    # The same server answers a TLS client that trusts our CA...
    assert await health(tls_only, grpc.ssl_channel_credentials(certs.pem(certs.ca))) == "SERVING"
    # ...and a client that does not trust it refuses the server.
    assert await health(tls_only, grpc.ssl_channel_credentials()) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_refuses_clients_without_a_certificate_from_the_ca(mutual: str, certs: Certs) -> None:
    ca = certs.pem(certs.ca)

    assert await health(mutual, None) == grpc.StatusCode.UNAVAILABLE
    assert await health(mutual, grpc.ssl_channel_credentials(ca)) == grpc.StatusCode.UNAVAILABLE
    stranger = grpc.ssl_channel_credentials(ca, certs.pem(certs.stranger_key), certs.pem(certs.stranger_cert))
    assert await health(mutual, stranger) == grpc.StatusCode.UNAVAILABLE

    ours = grpc.ssl_channel_credentials(ca, certs.pem(certs.client_key), certs.pem(certs.client_cert))
    assert await health(mutual, ours) == "SERVING"


async def test_services_call_each_other_over_mutual_tls(tmp_path: Path, certs: Certs) -> None:
    """auth, process, metadata and upload on one mutual-TLS server: an upload
    needs upload's calls to auth (its service token), process (profiles) and
    metadata (RegisterVideo), all through TLS channels built from the settings."""
    clip = make_clip(tmp_path / "tls.mp4", seconds=1.0, width=320, height=180)
    stack = await start_stack(tmp_path / "data", tls=TlsFiles(certs.server_cert, certs.server_key, certs.ca))
    try:
        caller = await stack.tenant_token("TLS Co")
        reply = await upload(stack, caller.token, clip)
        video = await stack.metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=reply.video_id),
                                              metadata=bearer(caller.token), timeout=10)
        assert video.size_bytes == clip.stat().st_size

        assert await health(stack.address, None) == grpc.StatusCode.UNAVAILABLE
        assert await health(stack.address, grpc.ssl_channel_credentials(certs.pem(certs.ca))) == \
            grpc.StatusCode.UNAVAILABLE
    finally:
        await stack.stop()


async def test_a_certificate_without_its_key_is_refused_at_start(certs: Certs) -> None:
    with pytest.raises(pydantic.ValidationError, match="VTC_TLS_CERT_FILE and VTC_TLS_KEY_FILE go together"):
        UploadSettings(tls_cert_file=certs.server_cert)


async def test_a_missing_certificate_file_is_named_at_start(tmp_path: Path, certs: Certs) -> None:
    missing = tmp_path / "nope.crt"
    with pytest.raises(TlsConfigError, match=f"cannot read VTC_TLS_CERT_FILE={missing}"):
        await tls_server(TlsFiles(missing, certs.server_key))


async def test_all_in_one_with_mutual_tls_serves_rest_through_envoy_over_tls(tmp_path: Path, certs: Certs) -> None:
    """`make run` with the TLS settings: the gRPC port refuses plaintext, and
    Envoy reaches the services over mutual TLS (it verifies them against the
    CA and presents the services' certificate)."""
    import httpx

    from services.all_in_one import AllInOneSettings, start_all_in_one

    settings = AllInOneSettings(data_dir=tmp_path, grpc_port=0, rest_port=0, shutdown_grace_seconds=1.0,
                                tls_cert_file=certs.server_cert, tls_key_file=certs.server_key,
                                tls_ca_file=certs.ca)
    vtc = await start_all_in_one(settings)
    try:
        assert await health(vtc.grpc_address, None) == grpc.StatusCode.UNAVAILABLE
        admin_key = vtc.admin_key_file.read_text().strip()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{vtc.rest_port}", timeout=30) as rest:
            token = await rest.post("/v1/auth/token", json={"apiKey": admin_key})
            assert token.status_code == 200, token.text
            profiles = await rest.get("/v1/profiles",
                                      headers={"authorization": f"Bearer {token.json()['accessToken']}"})
        assert profiles.status_code == 200, profiles.text
        assert "default" in [p["name"] for p in profiles.json()["profiles"]]
    finally:
        await vtc.stop()


async def test_compose_healthcheck_speaks_tls_with_the_services_settings(mutual: str, certs: Certs) -> None:
    import os
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "deploy" / "healthcheck.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTC_TLS_")}

    def run(**tls: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), "grpc", mutual], capture_output=True, text=True,
                              timeout=30, check=False,
                              env={**env, **{f"VTC_TLS_{k.upper()}_FILE": str(v) for k, v in tls.items()}})

    async def check(**tls: Path) -> subprocess.CompletedProcess[str]:
        # In a thread: the server under test runs on this event loop.
        return await asyncio.to_thread(lambda: run(**tls))

    assert (await check()).returncode == 1  # plaintext against a TLS server: unhealthy
    healthy = await check(cert=certs.server_cert, key=certs.server_key, ca=certs.ca)
    assert healthy.returncode == 0, healthy.stderr
