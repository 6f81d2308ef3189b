"""GetDownloadUrl on the whole stack with local storage: the URL (over gRPC, REST
and `vtc download --url`) is fetched from the REST gateway's /files/ route,
with Range, by anyone holding it, until it expires; changed, it is refused."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import httpx
import pytest

from tests.calls import bearer, upload_requests
from tests.media import decoded_summary
from tests.stack import Stack
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2_grpc

VTC = Path(sys.executable).with_name("vtc")


class Ready:
    def __init__(self, stack: Stack, video_id: str, rendition: common_pb2.Rendition, token: str) -> None:
        self.stack, self.video_id, self.rendition, self.token = stack, video_id, rendition, token

    def metadata(self) -> Iterator[metadata_pb2_grpc.MetadataServiceStub]:
        with self.stack.channel() as channel:
            yield metadata_pb2_grpc.MetadataServiceStub(channel)

    def get_url(self, ttl_seconds: int = 0) -> metadata_pb2.GetDownloadUrlResponse:
        for stub in self.metadata():
            return stub.GetDownloadUrl(metadata_pb2.GetDownloadUrlRequest(
                video_id=self.video_id, rendition=self.rendition.name, ttl_seconds=ttl_seconds),
                metadata=bearer(self.token), timeout=10)
        raise AssertionError("unreachable")

    def streamed_bytes(self) -> bytes:
        for stub in self.metadata():
            return b"".join(c.data for c in stub.DownloadRendition(metadata_pb2.DownloadRenditionRequest(
                video_id=self.video_id, rendition=self.rendition.name), metadata=bearer(self.token), timeout=60))
        raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def ready(stack: Stack, clip_640x360: Path) -> Ready:
    token = stack.admin_token()
    with stack.channel() as channel:
        reply = upload_pb2_grpc.UploadServiceStub(channel).Upload(
            upload_requests(clip_640x360, "url clip"), metadata=bearer(token), timeout=60)
        updates = list(metadata_pb2_grpc.MetadataServiceStub(channel).WatchJob(
            metadata_pb2.WatchJobRequest(job_id=reply.job_id), metadata=bearer(token), timeout=120))
    job = updates[-1].job
    assert job.status == common_pb2.JOB_STATUS_COMPLETED, job.error
    return Ready(stack, reply.video_id, job.renditions[0], token)


def test_the_url_serves_the_rendition_through_the_gateway_without_a_token(ready: Ready, tmp_path: Path) -> None:
    before = time.time()
    reply = ready.get_url()

    url = urlsplit(reply.url)
    assert f"{url.scheme}://{url.netloc}" == ready.stack.rest_url, "the gateway's own address"
    assert url.path.startswith("/files/")
    assert abs(reply.expires_at.ToSeconds() - (before + 3600)) < 10, "an hour by default"
    assert (reply.size_bytes, reply.content_type) == (ready.rendition.size_bytes, "video/mp4")

    got = httpx.get(reply.url, timeout=30)  # no Authorization header: the URL is the credential

    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "video/mp4"
    assert int(got.headers["content-length"]) == ready.rendition.size_bytes
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["access-control-allow-origin"] == "*"
    assert got.content == ready.streamed_bytes()
    out = tmp_path / "via-url.mp4"
    out.write_bytes(got.content)
    summary = decoded_summary(out)
    assert (summary["width"], summary["height"], summary["frames"]) == (640, 360, 60)


def test_ranges_come_back_as_partial_content(ready: Ready) -> None:
    url = ready.get_url().url
    whole = ready.streamed_bytes()
    size = len(whole)

    head = httpx.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
    tail = httpx.get(url, headers={"Range": "bytes=-50"}, timeout=30)
    past = httpx.get(url, headers={"Range": f"bytes={size}-"}, timeout=30)

    assert head.status_code == 206 and head.content == whole[:100]
    assert head.headers["content-range"] == f"bytes 0-99/{size}"
    assert tail.status_code == 206 and tail.content == whole[-50:]
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"
    assert httpx.head(url, timeout=30).headers["content-length"] == str(size)


def test_a_changed_or_expired_url_is_refused(ready: Ready) -> None:
    url = ready.get_url(ttl_seconds=1).url
    token = urlsplit(url).path.split("/")[2]
    scope, expires, signature = token.split(".")
    longer = url.replace(f".{expires}.", f".9{expires}.")
    other_file = url.replace(f"/{ready.rendition.name}.mp4", "/1080p.mp4")

    refused = httpx.get(longer, timeout=30)
    assert refused.status_code == 403
    assert refused.json() == {"code": 7, "message": "this URL's signature does not match: "
                                                    "it was changed, or signed with another key"}
    assert httpx.get(other_file, timeout=30).status_code == 403
    time.sleep(2.1)
    expired = httpx.get(url, timeout=30)
    assert expired.status_code == 403
    assert expired.json()["message"] == "this URL has expired: ask GetDownloadUrl for a new one"


def test_rest_and_errors(ready: Ready) -> None:
    rest = httpx.get(f"{ready.stack.rest_url}/v1/videos/{ready.video_id}/renditions/{ready.rendition.name}"
                     ":downloadUrl", params={"ttlSeconds": 120}, headers={"Authorization": f"Bearer {ready.token}"},
                     timeout=30)
    assert rest.status_code == 200, rest.text
    body = rest.json()
    assert body["sizeBytes"] == str(ready.rendition.size_bytes)
    assert httpx.get(body["url"], headers={"Range": "bytes=0-9"}, timeout=30).content == ready.streamed_bytes()[:10]

    with pytest.raises(grpc.RpcError) as missing:
        Ready(ready.stack, ready.video_id, common_pb2.Rendition(name="1080p"), ready.token).get_url()
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as too_long:
        ready.get_url(ttl_seconds=8 * 24 * 3600)
    assert too_long.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "between 1 and 604800 (7 days)" in too_long.value.details()


def test_vtc_download_url_prints_a_url_curl_can_fetch(ready: Ready, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTC_") and k != "XDG_CONFIG_HOME"}
    env.update(VTC_CONFIG_DIR=str(tmp_path / "config"), VTC_DATA_DIR=str(ready.stack.data_dir))
    addr = ready.stack.grpc_address
    login = subprocess.run([str(VTC), "login", "--addr", addr], env=env, capture_output=True, text=True, timeout=60)
    assert login.returncode == 0, login.stderr

    done = subprocess.run([str(VTC), "download", ready.video_id, "--rendition", ready.rendition.name, "--url",
                           "--ttl", "300"], env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert "\n" not in url and url.startswith(f"{ready.stack.rest_url}/files/")
    fetched = httpx.get(url, timeout=30).content
    assert hashlib.sha256(fetched).digest() == hashlib.sha256(ready.streamed_bytes()).digest()
    assert not list(tmp_path.glob("*.mp4")), "--url saves nothing"
