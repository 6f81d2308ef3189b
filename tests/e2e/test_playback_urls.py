"""GetVideo's playback URLs on the whole stack, fetched through the real Envoy
gateway the way a player does: the master playlist, then every file it
references, resolved relative to the playlist's URL. Range, Content-Length,
Content-Type, CORS (preflight included) and caching on each; a changed or
expired URL gives 403 and no media."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import grpc
import httpx
import pytest

from tests.calls import bearer
from tests.cli_runner import Cli
from tests.playback import PresentedVideo, present_video
from tests.presentation import make_presentation
from tests.stack import Stack
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2, upload_pb2_grpc

ORIGIN = "http://127.0.0.1:9"  # a player page on another origin


@pytest.fixture(scope="module")
def presented(stack: Stack, clip_two_rungs: Path, tmp_path_factory: pytest.TempPathFactory) -> PresentedVideo:
    return present_video(stack, stack.admin_token(), clip_two_rungs, tmp_path_factory.mktemp("presentation"))


def references(playlist: str) -> list[str]:
    """Every URI an HLS playlist names: lines that are not tags, and URI="..." attributes."""
    uris = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    return uris + re.findall(r'URI="([^"]+)"', playlist)


def crawl_hls(master_url: str, client: httpx.Client) -> dict[str, httpx.Response]:
    """What hls.js fetches: the master, each media playlist, their init and media segments."""
    fetched: dict[str, httpx.Response] = {}
    pending = [master_url]
    while pending:
        url = pending.pop()
        if url in fetched:
            continue
        reply = client.get(url, headers={"Origin": ORIGIN})
        fetched[url] = reply
        if url.endswith(".m3u8") and reply.status_code == 200:
            pending += [urljoin(url, uri) for uri in references(reply.text)]
    return fetched


def test_get_video_gives_absolute_signed_urls_of_the_gateway(presented: PresentedVideo) -> None:
    before = time.time()
    video = presented.get_video()

    for url, entry in ((video.hls_url, "master.m3u8"), (video.dash_url, "manifest.mpd")):
        split = urlsplit(url)
        assert f"{split.scheme}://{split.netloc}" == presented.stack.rest_url, "the gateway's own address"
        assert split.path.startswith("/play/") and split.path.endswith("/" + entry)
        assert not split.query, "the signature is in the path, where relative references keep it"
    assert abs(video.playback_expires_at.ToSeconds() - (before + 3600)) < 10, "an hour by default"
    assert abs(presented.get_video(url_ttl_seconds=120).playback_expires_at.ToSeconds() - (before + 120)) < 10


def test_every_file_of_the_hls_presentation_is_served_with_its_headers(presented: PresentedVideo) -> None:
    with httpx.Client(timeout=30) as client:
        fetched = crawl_hls(presented.get_video().hls_url, client)

    kinds = {urlsplit(url).path.rsplit(".", 1)[-1] for url in fetched}
    # Playlists, CMAF init segments (init.mp4) and media segments.
    assert kinds == {"m3u8", "mp4", "m4s"} and len(fetched) >= 10, sorted(fetched)
    for url, reply in fetched.items():
        assert reply.status_code == 200, (url, reply.status_code, reply.text[:200])
        on_disk = presented.folder / urlsplit(url).path.split("/", 3)[3]
        assert reply.content == on_disk.read_bytes()
        assert int(reply.headers["content-length"]) == on_disk.stat().st_size
        assert reply.headers["access-control-allow-origin"] == "*"
        assert reply.headers["accept-ranges"] == "bytes"
        if url.endswith(".m3u8"):
            assert reply.headers["content-type"] == "application/vnd.apple.mpegurl"
            assert reply.headers["cache-control"] == "private, no-cache"
        else:
            assert reply.headers["content-type"] == ("video/mp4" if url.endswith(".mp4") else "video/iso.segment")
            max_age = int(re.search(r"max-age=(\d+)", reply.headers["cache-control"])[1])
            assert "immutable" in reply.headers["cache-control"] and 3500 < max_age <= 3600


def test_the_mpd_and_its_segments_are_served(presented: PresentedVideo) -> None:
    mpd_url = presented.get_video().dash_url
    with httpx.Client(timeout=30) as client:
        mpd = client.get(mpd_url)
        assert mpd.status_code == 200 and mpd.headers["content-type"] == "application/dash+xml"
        templates = ET.fromstring(mpd.content).iter("{urn:mpeg:dash:schema:mpd:2011}SegmentTemplate")
        initialization = next(templates).get("initialization").replace("$RepresentationID$", "0")
        init = client.get(urljoin(mpd_url, initialization))
    assert init.status_code == 200 and init.content[4:8] == b"ftyp"


def test_ranges_and_a_304_for_a_playlist_seen_before(presented: PresentedVideo) -> None:
    master = presented.get_video().hls_url
    last = sorted(p.relative_to(presented.folder).as_posix() for p in presented.folder.rglob("*.m4s"))[-1]
    segment = urljoin(master, last)
    whole = (presented.folder / last).read_bytes()
    size = len(whole)
    with httpx.Client(timeout=30) as client:
        head = client.get(segment, headers={"Range": "bytes=0-99"})
        tail = client.get(segment, headers={"Range": "bytes=-50"})
        past = client.get(segment, headers={"Range": f"bytes={size}-"})
        first = client.get(master)
        again = client.get(master, headers={"If-None-Match": first.headers["etag"]})

    assert head.status_code == 206 and head.content == whole[:100]
    assert head.headers["content-range"] == f"bytes 0-99/{size}" and head.headers["content-length"] == "100"
    assert tail.status_code == 206 and tail.content == whole[-50:]
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"
    assert again.status_code == 304 and again.content == b""


def test_a_cors_preflight_for_a_range_request_is_answered(presented: PresentedVideo) -> None:
    reply = httpx.options(presented.get_video().hls_url, timeout=30, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"})

    assert reply.status_code in (200, 204)
    assert reply.headers["access-control-allow-origin"] == "*"
    assert "GET" in reply.headers["access-control-allow-methods"]
    assert "range" in reply.headers["access-control-allow-headers"].lower()


def test_a_changed_or_expired_url_gives_403_and_no_media(presented: PresentedVideo) -> None:
    url = presented.get_video(url_ttl_seconds=1).hls_url
    token = urlsplit(url).path.split("/")[2]
    scope, expires, signature = token.split(".")
    longer = url.replace(f".{expires}.", f".{int(expires) + 3600}.")

    refused = httpx.get(longer, timeout=30)
    assert refused.status_code == 403
    assert refused.json() == {"code": 7, "message": "this URL's signature does not match: "
                                                    "it was changed, or signed with another key"}
    time.sleep(2.1)
    expired = httpx.get(url, timeout=30)
    assert expired.status_code == 403
    assert expired.json()["message"] == "this URL has expired: ask GetVideo for new playback URLs"
    assert b"#EXTM3U" not in expired.content


def test_a_video_without_a_presentation_has_no_playback_urls(stack: Stack, clip_640x360: Path) -> None:
    """The `audio` profile makes no presentation: GetVideo then carries no playback URLs."""
    token = stack.admin_token()
    data = clip_640x360.read_bytes()
    with stack.channel() as channel:
        header = upload_pb2.UploadHeader(filename=clip_640x360.name, size_bytes=len(data), profile="audio",
                                         sha256=hashlib.sha256(data).hexdigest())
        reply = upload_pb2_grpc.UploadServiceStub(channel).Upload(
            iter([upload_pb2.UploadRequest(header=header), upload_pb2.UploadRequest(chunk={"data": data})]),
            metadata=bearer(token), timeout=60)
        stub = metadata_pb2_grpc.MetadataServiceStub(channel)
        job = list(stub.WatchJob(metadata_pb2.WatchJobRequest(job_id=reply.job_id), metadata=bearer(token),
                                 timeout=300))[-1].job
        video = stub.GetVideo(metadata_pb2.GetVideoRequest(video_id=reply.video_id), metadata=bearer(token),
                              timeout=10)

    assert job.status == common_pb2.JOB_STATUS_COMPLETED, job.error
    assert (video.hls_url, video.dash_url, video.HasField("playback_expires_at")) == ("", "", False)


def test_a_ttl_past_seven_days_is_refused(presented: PresentedVideo) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        presented.get_video(url_ttl_seconds=8 * 24 * 3600)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "url_ttl_seconds must be between 1 and 604800" in refused.value.details()


def test_rest_get_video_carries_the_urls(presented: PresentedVideo) -> None:
    reply = httpx.get(f"{presented.stack.rest_url}/v1/videos/{presented.video_id}?url_ttl_seconds=300",
                      headers={"Authorization": f"Bearer {presented.token}"}, timeout=30)

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["hlsUrl"].endswith("/master.m3u8") and body["dashUrl"].endswith("/manifest.mpd")
    assert httpx.get(body["hlsUrl"], timeout=30).text.startswith("#EXTM3U")


def test_vtc_status_prints_the_urls_whole_on_their_own_lines(presented: PresentedVideo, cli: Cli) -> None:
    shown = cli.run("status", presented.video_id, "--ttl", "600")
    as_json = cli.json("status", presented.video_id)

    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line.split()[1] for line in shown.stdout.splitlines()
             if line.startswith(("hls_url ", "dash_url "))}
    assert set(lines) == {"hls_url", "dash_url"}, shown.stdout
    master = httpx.get(lines["hls_url"], timeout=30)
    assert master.status_code == 200 and master.text.startswith("#EXTM3U")
    assert "any HLS/DASH player until" in shown.stdout
    assert as_json["hls_url"].endswith("/master.m3u8") and as_json["playback_expires_at"]


def test_after_a_retranscode_the_urls_play_the_new_jobs_presentation(presented: PresentedVideo,
                                                                    tmp_path: Path) -> None:
    with presented.stack.channel() as channel:
        stub = metadata_pb2_grpc.MetadataServiceStub(channel)
        job = stub.Retranscode(metadata_pb2.RetranscodeRequest(video_id=presented.video_id),
                               metadata=bearer(presented.token), timeout=30)
        final = list(stub.WatchJob(metadata_pb2.WatchJobRequest(job_id=job.job_id),
                                   metadata=bearer(presented.token), timeout=300))[-1].job
    assert final.status == common_pb2.JOB_STATUS_COMPLETED, final.error
    folder = presented.folder.parent / "jobs" / job.job_id / "presentation"
    if not (folder / "master.m3u8").exists():  # until the transcoder writes presentations
        shutil.copytree(make_presentation(tmp_path / "again", seconds=2.0), folder)

    url = presented.get_video().hls_url
    scope = base64.urlsafe_b64decode(urlsplit(url).path.split("/")[2].split(".")[0] + "==").decode()

    assert scope == f"{presented.tenant_id}/{presented.video_id}/jobs/{job.job_id}/presentation/"
    assert httpx.get(url, timeout=30).content == (folder / "master.m3u8").read_bytes()


def test_no_signed_path_reaches_envoys_access_log(presented: PresentedVideo) -> None:
    """A signed URL's path is its credential: the access log names the route, not the path."""
    url = presented.get_video().hls_url
    token = urlsplit(url).path.split("/")[2]
    marker = f"play-log-{time.monotonic_ns()}"
    assert httpx.get(url, headers={"x-request-id": marker}, timeout=30).status_code == 200
    gateway = presented.stack.vtc.gateway
    assert gateway is not None

    deadline = time.monotonic() + 30
    while marker not in gateway.log_path.read_text():
        assert time.monotonic() < deadline, gateway.log_tail()
        time.sleep(0.2)
    log = gateway.log_path.read_text()
    line = next(json.loads(entry) for entry in log.splitlines() if marker in entry)

    assert (line["path"], line["status"]) == ("/play/(signed)", 200)
    assert token not in log and token.split(".")[2] not in log
