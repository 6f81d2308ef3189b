"""REST through the real Envoy (grpc_json_transcoder, config from
gateway.envoy_config) to a real grpc.aio server on port 0.

The server is built by services.shared.server.start_server, so calls pass the
real auth and error-mapping interceptors; only its servicers are test doubles
of the upload and metadata logic (they record what reached them), so each test
shows what Envoy does to a request or reply on its way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
from google.api import httpbody_pb2

from gateway.envoy_config import build_envoy_config
from gateway.envoy_process import DESCRIPTOR_SET, EnvoyError, EnvoyProcess, launch_envoy
from services.shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from services.shared.principal import current_principal
from services.shared.server import RunningServer, start_server
from services.shared.tls import TlsFiles
from tests.tokens import TestKeys
from vtc.v1 import auth_pb2, auth_pb2_grpc, common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2, upload_pb2_grpc

MiB = 1024 * 1024
TENANT = "ten_gateway"


# --- test doubles of the services' logic ---------------------------------------------------------

@dataclass
class ReceivedUpload:
    """What one Upload call delivered to the service, message by message."""

    header: upload_pb2.UploadHeader
    tenant: str
    authorization: str
    chunk_sizes: list[int] = field(default_factory=list)
    headers_present: list[bool] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    first_message: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def total(self) -> int:
        return sum(self.chunk_sizes)


class RecordingUploads(upload_pb2_grpc.UploadServiceServicer):
    def __init__(self) -> None:
        self.uploads: dict[str, ReceivedUpload] = {}

    async def Upload(self, requests, context):  # type: ignore[no-untyped-def]
        upload: ReceivedUpload | None = None
        async for request in requests:
            if upload is None:
                if not request.HasField("header"):
                    raise InvalidArgument("the first message must carry the header "
                                          "(over REST: ?header.filename=...&header.size_bytes=...)")
                metadata = dict(context.invocation_metadata())
                upload = ReceivedUpload(header=request.header, tenant=current_principal().tenant_id,
                                        authorization=str(metadata.get("authorization", "")))
                self.uploads[request.header.filename] = upload
            upload.headers_present.append(request.HasField("header"))
            upload.chunk_sizes.append(len(request.chunk.data))
            upload.content_types.append(request.chunk.content_type)
            upload.digest.update(request.chunk.data)
            upload.first_message.set()
        if upload is None:
            raise InvalidArgument("empty upload")
        upload.finished.set()
        if upload.total != upload.header.size_bytes:
            raise InvalidArgument(f"declared {upload.header.size_bytes} bytes but received {upload.total}")
        return upload_pb2.UploadResponse(video_id="vid_" + upload.header.filename, job_id="job_1",
                                         size_bytes=upload.total, sha256=upload.digest.hexdigest())


DOMAIN_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls for cls in (InvalidArgument, FailedPrecondition, Unauthenticated, PermissionDenied, NotFound,
                                  AlreadyExists, Unavailable, RuntimeError)
}
RENDITION_CHUNKS = [bytes([n]) * size for n, size in ((1, MiB), (2, MiB), (3, 300 * 1024 + 7))]
WATCH_PERCENTS = [0.0, 40.0, 100.0]
WATCH_INTERVAL_SECONDS = 0.4


class ScriptedMetadata(metadata_pb2_grpc.MetadataServiceServicer):
    """Knows one video ("vid_known") with one rendition ("720p") and one job ("job_known")."""

    async def GetVideo(self, request, context):  # type: ignore[no-untyped-def]
        if request.video_id != "vid_known":
            raise NotFound(f"no video {request.video_id}")
        measured = common_pb2.Rendition(name="720p", quality=common_pb2.RenditionQuality(
            psnr_db=42.91, ssim=0.9909, xpsnr_db=39.69, frames_compared=60))
        return common_pb2.Video(video_id=request.video_id, tenant_id=current_principal().tenant_id,
                                job=common_pb2.Job(renditions=[measured]))

    async def ListVideos(self, request, context):  # type: ignore[no-untyped-def]
        # Echoes the paging it was asked for, so a test sees how the query string bound.
        return metadata_pb2.ListVideosResponse(
            videos=[common_pb2.Video(video_id="vid_known")],
            next_page_token=f"size={request.page_size};after={request.page_token}")

    async def GetJob(self, request, context):  # type: ignore[no-untyped-def]
        # job_id names the domain error to raise, e.g. "job_FailedPrecondition".
        raise DOMAIN_ERRORS[request.job_id.removeprefix("job_")](f"scripted {request.job_id}")

    async def DownloadRendition(self, request, context):  # type: ignore[no-untyped-def]
        if (request.video_id, request.rendition) != ("vid_known", "720p"):
            raise NotFound(f"video {request.video_id} has no rendition {request.rendition!r}")
        for chunk in RENDITION_CHUNKS:
            yield httpbody_pb2.HttpBody(content_type="video/mp4", data=chunk)

    async def WatchJob(self, request, context):  # type: ignore[no-untyped-def]
        if request.job_id != "job_known":
            raise NotFound(f"no job {request.job_id}")
        for n, percent in enumerate(WATCH_PERCENTS):
            if n:
                await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            done = percent >= 100
            status = common_pb2.JOB_STATUS_COMPLETED if done else common_pb2.JOB_STATUS_RUNNING
            job = common_pb2.Job(job_id=request.job_id, status=status,
                                 progress=common_pb2.Progress(percent=percent))
            yield metadata_pb2.WatchJobResponse(job=job)


class ScriptedAuth(auth_pb2_grpc.AuthServiceServicer):
    """IssueToken for the API key "key_good" (a public method: no token needed)."""

    async def IssueToken(self, request, context):  # type: ignore[no-untyped-def]
        if request.api_key != "key_good":
            raise Unauthenticated("unknown or revoked API key")
        return auth_pb2.IssueTokenResponse(access_token="tok", token_type="Bearer", expires_in=900)


@dataclass
class ServicerComponent:
    """A Component (services.shared.server) holding one servicer."""

    service_names: list[str]
    add: object
    servicer: object

    def register(self, server: grpc.aio.Server) -> None:
        self.add(self.servicer, server)  # type: ignore[operator]

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


# --- a gRPC server on its own event loop, and Envoy in front of it --------------------------------

class GrpcServerThread:
    def __init__(self, components: list[ServicerComponent], keys: TestKeys) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="grpc-under-envoy", daemon=True)
        self.thread.start()
        self.server: RunningServer = asyncio.run_coroutine_threadsafe(
            start_server(components, keys.verifier(), "127.0.0.1", 0), self.loop).result(timeout=30)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def _envoy(upstreams: str | dict[str, str], workdir: Path) -> EnvoyProcess:
    config = build_envoy_config(descriptor_path=DESCRIPTOR_SET, upstreams=upstreams,
                                listen_port=0, admin_socket=workdir / "admin.sock")
    return launch_envoy(config, workdir=workdir)


@dataclass
class Gateway:
    envoy: EnvoyProcess
    uploads: RecordingUploads
    keys: TestKeys
    grpc_address: str

    @property
    def url(self) -> str:
        return self.envoy.url

    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys.token(tenant_id=TENANT)}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    keys = TestKeys()
    uploads = RecordingUploads()
    server = GrpcServerThread([
        ServicerComponent(["vtc.v1.UploadService"], upload_pb2_grpc.add_UploadServiceServicer_to_server, uploads),
        ServicerComponent(["vtc.v1.MetadataService"], metadata_pb2_grpc.add_MetadataServiceServicer_to_server,
                  ScriptedMetadata()),
        ServicerComponent(["vtc.v1.AuthService"], auth_pb2_grpc.add_AuthServiceServicer_to_server, ScriptedAuth()),
    ], keys)
    envoy = _envoy(server.address, tmp_path_factory.mktemp("envoy"))
    try:
        yield Gateway(envoy=envoy, uploads=uploads, keys=keys, grpc_address=server.address)
    finally:
        envoy.close()
        server.stop()


@pytest.fixture
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        yield http


def _upload_path(filename: str, size: int) -> str:
    return f"/v1/uploads?header.filename={filename}&header.size_bytes={size}"


def _error(reply: httpx.Response) -> dict:
    assert reply.headers["content-type"].startswith("application/json"), reply.text
    body = reply.json()
    assert isinstance(body["code"], int) and body["message"], body
    return body


# --- uploads -------------------------------------------------------------------------------------

def test_rest_upload_of_6_mib_arrives_whole_in_chunks_of_at_most_1_mib(gateway: Gateway, client: httpx.Client,
                                                                         tmp_path: Path) -> None:
    source = tmp_path / "big.mp4"
    source.write_bytes(os.urandom(6 * MiB + 12_345))
    size = source.stat().st_size
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    query = {"header.filename": "big.mp4", "header.size_bytes": size, "header.sha256": expected,
             "header.profile": "default", "header.title": "Holiday clip (final) & more"}
    auth = gateway.auth()

    with source.open("rb") as body:
        reply = client.post("/v1/uploads", params=query, content=body, headers={**auth, "content-type": "video/mp4"})

    assert reply.status_code == 200, reply.text
    assert reply.json() == {"videoId": "vid_big.mp4", "jobId": "job_1", "sizeBytes": str(size),
                            "sha256": expected}
    received = gateway.uploads.uploads["big.mp4"]
    assert received.total == size
    assert received.digest.hexdigest() == expected
    # Envoy cuts the body into several gRPC messages, none above 1 MiB...
    assert len(received.chunk_sizes) >= -(-size // MiB)
    assert max(received.chunk_sizes) <= MiB
    # ...and binds the query string into the first message only.
    assert received.headers_present[0] and not any(received.headers_present[1:])
    assert received.header == upload_pb2.UploadHeader(filename="big.mp4", size_bytes=size, sha256=expected,
                                                      profile="default", title="Holiday clip (final) & more")
    assert received.content_types[0] == "video/mp4"
    # The bearer token passed through to gRPC metadata and was checked there.
    assert received.tenant == TENANT
    assert received.authorization == auth["authorization"]


def test_rest_upload_reaches_the_service_while_the_body_is_still_being_sent(gateway: Gateway,
                                                                            client: httpx.Client) -> None:
    """Envoy streams the body: the service holds the first chunk before the
    client has sent the rest (a buffering proxy would deadlock this test)."""
    first, rest = os.urandom(2 * MiB), os.urandom(2 * MiB)
    seen_before_the_end: list[bool] = []

    def body() -> Iterator[bytes]:
        yield first
        deadline = time.monotonic() + 10
        while "streamed.mp4" not in gateway.uploads.uploads and time.monotonic() < deadline:
            time.sleep(0.01)
        upload = gateway.uploads.uploads.get("streamed.mp4")
        seen_before_the_end.append(upload is not None and upload.first_message.wait(timeout=10)
                                   and not upload.finished.is_set())
        yield rest

    reply = client.post(_upload_path("streamed.mp4", len(first) + len(rest)), content=body(),
                        headers=gateway.auth())

    assert reply.status_code == 200, reply.text
    assert seen_before_the_end == [True]
    assert reply.json()["sha256"] == hashlib.sha256(first + rest).hexdigest()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the curl command line is not installed")
@pytest.mark.parametrize("send_file", [["--data-binary", "@{path}"], ["-T", "{path}"]], ids=["data-binary", "T"])
def test_curl_upload_as_docs_show(gateway: Gateway, tmp_path: Path, send_file: list[str]) -> None:
    """docs/rest.md's commands: --data-binary (curl reads the file first) and -T
    (streams it from disk); both send `Expect: 100-continue` for big bodies."""
    source = tmp_path / f"clip-{send_file[0].strip('-')}.mov"
    source.write_bytes(os.urandom(3 * MiB + 1))
    size = source.stat().st_size
    completed = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-X", "POST", f"{gateway.url}/v1/uploads",
         "--url-query", f"header.filename={source.name}", "--url-query", f"header.size_bytes={size}",
         "-H", f"Authorization: {gateway.auth()['authorization']}", "-H", "Content-Type: video/quicktime",
         *[arg.format(path=source) for arg in send_file]],
        capture_output=True, timeout=60, check=False)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    reply = json.loads(completed.stdout)
    assert reply["sizeBytes"] == str(size)
    assert reply["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert gateway.uploads.uploads[source.name].content_types[0] == "video/quicktime"


def test_upload_the_service_rejects_is_a_json_400(gateway: Gateway, client: httpx.Client) -> None:
    body = os.urandom(2 * MiB)
    reply = client.post(_upload_path("short.mp4", len(body) + 1), content=body, headers=gateway.auth())

    assert reply.status_code == 400
    error = _error(reply)
    assert error["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert error["message"] == f"declared {len(body) + 1} bytes but received {len(body)}"


def test_upload_without_query_header_is_a_json_400(gateway: Gateway, client: httpx.Client) -> None:
    # Rejected at the first message, while most of the 6 MiB is still on its way.
    reply = client.post("/v1/uploads", content=bytes(6 * MiB), headers=gateway.auth())

    assert reply.status_code == 400
    assert "header.filename" in _error(reply)["message"]


def test_upload_without_token_is_a_json_401(client: httpx.Client) -> None:
    reply = client.post(_upload_path("anon.mp4", 4), content=b"abcd")

    assert reply.status_code == 401
    assert _error(reply)["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]


# --- downloads and watches (server streaming) ------------------------------------------------------

def test_rest_download_is_the_raw_concatenated_chunks(gateway: Gateway, client: httpx.Client) -> None:
    reply = client.get("/v1/videos/vid_known/renditions/720p:download", headers=gateway.auth())

    assert reply.status_code == 200
    assert reply.headers["content-type"] == "video/mp4"
    assert reply.content == b"".join(RENDITION_CHUNKS)


def test_rest_download_of_a_missing_rendition_is_a_json_404(gateway: Gateway, client: httpx.Client) -> None:
    reply = client.get("/v1/videos/vid_known/renditions/4k:download", headers=gateway.auth())

    assert reply.status_code == 404
    assert _error(reply) == {
        "code": grpc.StatusCode.NOT_FOUND.value[0],
        "message": "video vid_known has no rendition '4k'",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "NOT_FOUND",
                     "domain": "vtc", "metadata": {}}],
    }


def test_watch_job_is_newline_delimited_json_flushed_per_event(gateway: Gateway, client: httpx.Client) -> None:
    arrivals: list[tuple[float, dict]] = []
    with client.stream("GET", "/v1/jobs/job_known:watch", headers=gateway.auth()) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/json"
        for line in reply.iter_lines():
            if line:
                arrivals.append((time.monotonic(), json.loads(line)))

    assert [event["job"]["progress"]["percent"] for _, event in arrivals] == WATCH_PERCENTS
    assert arrivals[-1][1]["job"]["status"] == "JOB_STATUS_COMPLETED"
    # Each line came when its event happened, not all at the end.
    spread = arrivals[-1][0] - arrivals[0][0]
    assert spread >= WATCH_INTERVAL_SECONDS * (len(WATCH_PERCENTS) - 1) * 0.8


def test_watch_of_an_unknown_job_is_a_json_404(gateway: Gateway, client: httpx.Client) -> None:
    reply = client.get("/v1/jobs/job_nope:watch", headers=gateway.auth())

    assert reply.status_code == 404
    error = _error(reply)
    assert (error["code"], error["message"]) == (grpc.StatusCode.NOT_FOUND.value[0], "no job job_nope")
    assert error["details"][0]["reason"] == "NOT_FOUND"


# --- errors --------------------------------------------------------------------------------------

def test_not_found_from_the_service_is_http_404_with_code_and_message(gateway: Gateway,
                                                                      client: httpx.Client) -> None:
    reply = client.get("/v1/videos/vid_nope", headers=gateway.auth())

    assert reply.status_code == 404
    error = _error(reply)
    assert (error["code"], error["message"]) == (5, "no video vid_nope")


@pytest.mark.parametrize(("error", "http_status", "code"), [
    ("InvalidArgument", 400, 3), ("FailedPrecondition", 400, 9), ("Unauthenticated", 401, 16),
    ("PermissionDenied", 403, 7), ("NotFound", 404, 5), ("AlreadyExists", 409, 6), ("Unavailable", 503, 14),
    ("RuntimeError", 500, 13),  # an unexpected exception: INTERNAL with a generic message
])
def test_each_domain_error_has_its_http_status(gateway: Gateway, client: httpx.Client, error: str,
                                               http_status: int, code: int) -> None:
    reply = client.get(f"/v1/jobs/job_{error}", headers=gateway.auth())

    assert reply.status_code == http_status
    body = _error(reply)
    assert body["code"] == code
    if error != "RuntimeError":
        assert body["message"] == f"scripted job_{error}"


def test_json_body_in_json_reply_out(client: httpx.Client) -> None:
    good = client.post("/v1/auth/token", json={"apiKey": "key_good"})
    bad = client.post("/v1/auth/token", json={"apiKey": "key_bad"})

    assert good.status_code == 200
    assert good.json() == {"accessToken": "tok", "tokenType": "Bearer", "expiresIn": "900", "tenantId": "",
                           "scopes": []}
    assert bad.status_code == 401
    assert _error(bad)["message"] == "unknown or revoked API key"


@pytest.mark.parametrize("query", ["page_size=2&page_token=vid_a", "pageSize=2&pageToken=vid_a"])
def test_query_parameters_bind_by_proto_or_json_name(gateway: Gateway, client: httpx.Client, query: str) -> None:
    reply = client.get(f"/v1/videos?{query}", headers=gateway.auth())

    assert reply.status_code == 200
    assert reply.json()["nextPageToken"] == "size=2;after=vid_a"


def test_unary_reply_prints_fields_with_default_values(gateway: Gateway, client: httpx.Client) -> None:
    reply = client.get("/v1/videos/vid_known", headers=gateway.auth())

    assert reply.status_code == 200
    video = reply.json()
    assert video["videoId"] == "vid_known" and video["tenantId"] == TENANT
    assert video["sizeBytes"] == "0" and video["title"] == ""


def test_rest_video_carries_each_renditions_quality_report(gateway: Gateway, client: httpx.Client) -> None:
    reply = client.get("/v1/videos/vid_known", headers=gateway.auth())

    assert reply.json()["job"]["renditions"][0]["quality"] == {"psnrDb": 42.91, "ssim": 0.9909, "xpsnrDb": 39.69,
                                                               "framesCompared": 60}


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("GET", "/v1/nothing-here", None, 404, 5),
    ("GET", "/v1/videos?colour=red", None, 400, 3),
    ("POST", "/v1/auth/token", b"{not json", 400, 3),
])
def test_requests_envoy_rejects_get_the_same_json_error_shape(client: httpx.Client, method: str, path: str,
                                                               body: bytes | None, status: int, code: int) -> None:
    reply = client.request(method, path, content=body, headers={"content-type": "application/json"})

    assert reply.status_code == status
    assert _error(reply)["code"] == code


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe closes


def test_a_service_that_is_down_is_a_json_503(tmp_path: Path) -> None:
    envoy = _envoy(f"127.0.0.1:{_closed_port()}", tmp_path)
    try:
        reply = httpx.get(envoy.url + "/v1/videos/vid_1", timeout=30)
    finally:
        envoy.close()

    assert reply.status_code == 503
    assert _error(reply)["code"] == grpc.StatusCode.UNAVAILABLE.value[0]


def test_grpc_clients_pass_through_envoy_with_status_details(gateway: Gateway) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{gateway.envoy.port}") as channel:
        stub = metadata_pb2_grpc.MetadataServiceStub(channel)
        video = stub.GetVideo(metadata_pb2.GetVideoRequest(video_id="vid_known"),
                              metadata=list(gateway.auth().items()), timeout=10)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetVideo(metadata_pb2.GetVideoRequest(video_id="vid_nope"),
                          metadata=list(gateway.auth().items()), timeout=10)

    assert video.tenant_id == TENANT
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "no video vid_nope"
    assert "grpc-status-details-bin" in dict(raised.value.trailing_metadata())


# --- one upstream per service (the compose shape) --------------------------------------------------

def test_each_service_is_routed_to_its_own_upstream(tmp_path: Path) -> None:
    keys = TestKeys()
    uploads = RecordingUploads()
    upload_server = GrpcServerThread(
        [ServicerComponent(["vtc.v1.UploadService"], upload_pb2_grpc.add_UploadServiceServicer_to_server,
                           uploads)], keys)
    metadata_server = GrpcServerThread(
        [ServicerComponent(["vtc.v1.MetadataService"], metadata_pb2_grpc.add_MetadataServiceServicer_to_server,
                   ScriptedMetadata())], keys)
    envoy = _envoy({"vtc.v1.UploadService": upload_server.address,
                    "vtc.v1.MetadataService": metadata_server.address,
                    "vtc.v1.AuthService": upload_server.address,  # serves no auth: UNIMPLEMENTED there
                    "vtc.v1.ProcessService": metadata_server.address}, tmp_path)
    auth = {"authorization": f"Bearer {keys.token(tenant_id=TENANT)}"}
    try:
        with httpx.Client(base_url=envoy.url, timeout=30) as http:
            upload = http.post(_upload_path("routed.mp4", 3), content=b"abc", headers=auth)
            video = http.get("/v1/videos/vid_known", headers=auth)
            token = http.post("/v1/auth/token", json={"apiKey": "k"})
    finally:
        envoy.close()
        upload_server.stop()
        metadata_server.stop()

    assert upload.status_code == 200 and "routed.mp4" in uploads.uploads
    assert video.status_code == 200 and video.json()["videoId"] == "vid_known"
    assert token.status_code == 501
    assert _error(token)["code"] == grpc.StatusCode.UNIMPLEMENTED.value[0]


# --- the process wrapper -------------------------------------------------------------------------

def test_envoy_stops_cleanly_and_frees_its_port(tmp_path: Path) -> None:
    envoy = _envoy("127.0.0.1:1", tmp_path)
    port = envoy.port
    assert envoy.running()

    code = envoy.close()

    assert code == 0  # SIGTERM is a clean shutdown for Envoy
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_envoy_on_a_taken_port_fails_with_its_own_reason(gateway: Gateway, tmp_path: Path) -> None:
    config = build_envoy_config(descriptor_path=DESCRIPTOR_SET, upstreams="127.0.0.1:1",
                                listen_port=gateway.envoy.port, admin_socket=tmp_path / "admin.sock")

    with pytest.raises(EnvoyError, match="(?i)address already in use"):
        launch_envoy(config, workdir=tmp_path, timeout=15).close()  # close() only if it wrongly started


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="util-linux setpriv is not installed")
def test_envoy_does_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    """kill -9 of `make run` must not leave an Envoy holding the REST port."""
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path\n"
         "from gateway.envoy_config import build_envoy_config\n"
         "from gateway.envoy_process import DESCRIPTOR_SET, launch_envoy\n"
         "config = build_envoy_config(descriptor_path=DESCRIPTOR_SET, upstreams='127.0.0.1:1',"
         f" listen_port=0, admin_socket=Path({str(tmp_path / 'admin.sock')!r}))\n"
         f"envoy = launch_envoy(config, workdir=Path({str(tmp_path)!r}))\n"
         "print(envoy.port, envoy.process.pid, flush=True)\n"
         "time.sleep(300)\n"],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True)
    try:
        port, envoy_pid = map(int, parent.stdout.readline().split())  # type: ignore[union-attr]
        assert _accepts_connections(port)
    finally:
        parent.kill()
        parent.wait(timeout=10)

    deadline = time.monotonic() + 10
    while _accepts_connections(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    outlived = _accepts_connections(port)
    if outlived:
        os.kill(envoy_pid, signal.SIGKILL)  # leave no orphan behind, even when failing
    assert not outlived, f"Envoy (pid {envoy_pid}) outlived its parent"


def _accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_all_in_one_gateway_serves_rest_for_one_address(tmp_path: Path) -> None:
    from gateway.envoy_process import start_envoy_for_all_in_one

    @dataclass
    class Settings:
        rest_host: str = "127.0.0.1"
        rest_port: int = 0
        data_dir: Path = tmp_path
        tls: TlsFiles = TlsFiles()

    envoy = await start_envoy_for_all_in_one(Settings(), grpc_address="127.0.0.1:1")
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            reply = await http.get(f"http://127.0.0.1:{envoy.port}/v1/profiles")
    finally:
        await envoy.stop()

    assert envoy.config_path == tmp_path / "envoy" / "envoy.yaml"
    assert envoy.admin_socket == tmp_path / "envoy" / "admin.sock"
    assert reply.status_code == 503  # nothing serves gRPC at 127.0.0.1:1
    assert _error(reply)["code"] == grpc.StatusCode.UNAVAILABLE.value[0]


# --- docker-compose's health checks (deploy/healthcheck.py) ------------------------------------------

def _healthcheck(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(__file__).resolve().parents[2] / "deploy" / "healthcheck.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=30,
                          check=False)


def test_healthcheck_passes_for_a_serving_grpc_server_and_a_live_envoy(gateway: Gateway) -> None:
    assert _healthcheck("grpc", gateway.grpc_address).returncode == 0
    assert _healthcheck("envoy-admin", str(gateway.envoy.admin_socket)).returncode == 0


def test_healthcheck_fails_with_a_reason_when_nothing_serves() -> None:
    grpc_check = _healthcheck("grpc", f"127.0.0.1:{_closed_port()}")
    http_check = _healthcheck("envoy-admin", "/nonexistent/envoy-admin.sock")

    assert grpc_check.returncode == 1 and "UNAVAILABLE" in grpc_check.stderr
    assert http_check.returncode == 1 and "unhealthy" in http_check.stderr


# --- what Envoy exposes and what it writes down ----------------------------------------------------

def _listening_tcp_ports(pid: int) -> set[int]:
    """TCP ports process `pid` listens on, from /proc (its socket inodes against the kernel's tables)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_envoy_admin_api_is_a_socket_only_its_owner_can_open_and_no_tcp_port(gateway: Gateway) -> None:
    envoy = gateway.envoy

    # The one TCP port Envoy listens on is the REST listener: no admin port for other local users.
    assert _listening_tcp_ports(envoy.process.pid) == {envoy.port}
    mode = envoy.admin_socket.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    # And it is still the admin API, for us.
    assert envoy.admin_get("/ready") == "LIVE"


def test_no_token_reaches_envoys_access_log(gateway: Gateway, client: httpx.Client) -> None:
    """Neither the Authorization header nor a token in the query string is written
    to the access log, whether the request reaches a service, is refused by the
    transcoder, or matches no route."""
    in_header = gateway.keys.token(tenant_id=TENANT)
    in_query = gateway.keys.token(tenant_id=TENANT + "_q")
    marker = f"log-check-{time.monotonic_ns()}"
    requests = [
        ("GET", f"/v1/videos/vid_known?access_token={in_query}"),  # transcoder: unknown parameter, 400
        ("GET", f"/v1/videos/vid_known?{marker}=1&token={in_query}"),
        ("GET", f"/no/such/route?access_token={in_query}"),  # no route, 404
        ("GET", "/v1/videos/vid_known"),  # served
    ]
    for method, path in requests:
        reply = client.request(method, path, headers={"authorization": f"Bearer {in_header}",
                                                      "x-request-id": marker})
        assert reply.status_code in (200, 400, 404), reply.text

    # Envoy flushes its access log on its own schedule: wait until all four lines are in.
    deadline = time.monotonic() + 30
    while gateway.envoy.log_path.read_text().count(marker) < len(requests):
        assert time.monotonic() < deadline, gateway.envoy.log_tail()
        time.sleep(0.2)
    log = gateway.envoy.log_path.read_text()
    logged = [json.loads(line) for line in log.splitlines() if marker in line and line.startswith("{")]

    assert len(logged) == len(requests)
    assert {entry["path"] for entry in logged} == {"/v1/videos/vid_known", "/no/such/route"}
    for secret in (in_header, in_query, in_header.split(".")[2], in_query.split(".")[2]):
        assert secret not in log
    assert "access_token" not in log
