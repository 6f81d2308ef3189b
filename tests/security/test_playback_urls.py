"""Attacks on the signed playback and download URLs (served by the gateway at
/play/ and /files/ without any other credential): a changed token, an expired
one, one tenant's token aimed at another tenant's video, paths that climb out
of the signed folder. Each must be refused with no media in the reply."""

from __future__ import annotations

import base64
import http.client
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import grpc
import pytest

from services.shared.storage.keys import presentation_prefix
from tests.calls import bearer, upload_requests
from tests.media import make_clip
from tests.playback import PresentedVideo
from tests.presentation import make_presentation
from tests.security.world import World
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2_grpc

MEDIA_MARKERS = (b"#EXTM3U", b"<MPD", b"ftyp", b"moof", b"mdat")


@dataclass
class Playback:
    world: World
    a: PresentedVideo  # the victim's video
    c: PresentedVideo  # the attacker's own video, for a genuine token of their own

    def get(self, path: str) -> tuple[int, bytes]:
        """GET of `path` sent byte for byte (no client normalises dots or escapes)."""
        host = urlsplit(self.world.stack.rest_url).netloc
        connection = http.client.HTTPConnection(host, timeout=30)
        try:
            connection.putrequest("GET", path, skip_accept_encoding=True)
            connection.endheaders()
            reply = connection.getresponse()
            return reply.status, reply.read()
        finally:
            connection.close()


def _token_parts(url: str) -> tuple[str, str, str, str]:
    """route, token, rest of a signed URL's path, and the whole path."""
    _, route, token, rest = urlsplit(url).path.split("/", 3)
    return route, token, rest, urlsplit(url).path


def _present(world: World, video: PresentedVideo) -> PresentedVideo:
    folder = video.folder
    if not (folder / "master.m3u8").exists():  # until the transcoder writes presentations
        shutil.copytree(make_presentation(world.media_dir / f"presentation-{video.video_id}", seconds=2.0),
                        folder, dirs_exist_ok=True)
    return video


@pytest.fixture(scope="module")
def playback(world: World) -> Iterator[Playback]:
    c = world.new_tenant("c")
    clip = make_clip(world.media_dir / "c-own.mp4", seconds=1.0, width=320, height=180)
    with world.channel() as channel:
        uploaded = upload_pb2_grpc.UploadServiceStub(channel).Upload(
            upload_requests(clip, title="C's own"), metadata=bearer(c.token), timeout=60)
        for reply in metadata_pb2_grpc.MetadataServiceStub(channel).WatchJob(
                metadata_pb2.WatchJobRequest(job_id=uploaded.job_id), metadata=bearer(c.token), timeout=120):
            if reply.job.status >= common_pb2.JOB_STATUS_COMPLETED:
                break
    a = _present(world, PresentedVideo(world.stack, world.a.token, world.a.tenant_id, world.a_video_id))
    ready = Playback(world, a, _present(world, PresentedVideo(world.stack, c.token, c.tenant_id, uploaded.video_id)))
    # The control: the genuine URLs play; without that every refusal below could be a broken server.
    for video in (ready.a, ready.c):
        status, body = ready.get(urlsplit(video.get_video().hls_url).path)
        assert status == 200 and body.startswith(b"#EXTM3U")
    yield ready


def _refused(status: int, body: bytes) -> bool:
    return status in (400, 403, 404) and not any(marker in body for marker in MEDIA_MARKERS)


@pytest.mark.parametrize("part", ["signature", "expiry", "scope"])
def test_a_tampered_token_is_refused(part: str, playback: Playback) -> None:
    route, token, rest, _ = _token_parts(playback.a.get_video().hls_url)
    scope, expires, signature = token.split(".")
    if part == "signature":
        signature = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    elif part == "expiry":
        expires = str(int(expires) + 365 * 24 * 3600)
    else:  # the whole video folder instead of its presentation: the source file would be in reach
        scope = base64.urlsafe_b64encode(
            presentation_prefix(playback.a.tenant_id, playback.a.video_id).removesuffix("presentation/").encode()
        ).decode().rstrip("=")
        rest = "source.mp4"
    status, body = playback.get(f"/{route}/{scope}.{expires}.{signature}/{rest}")
    assert status == 403 and _refused(status, body)


def test_an_expired_url_is_refused(playback: Playback) -> None:
    path = urlsplit(playback.a.get_video(url_ttl_seconds=1).hls_url).path
    time.sleep(2.1)
    status, body = playback.get(path)
    assert status == 403 and _refused(status, body)


def test_ones_own_signature_over_another_tenants_video_is_refused(playback: Playback) -> None:
    """C swaps the folder in their own genuine token for A's presentation folder."""
    route, token, rest, _ = _token_parts(playback.c.get_video().hls_url)
    _, expires, signature = token.split(".")
    scope = base64.urlsafe_b64encode(
        presentation_prefix(playback.a.tenant_id, playback.a.video_id).encode()).decode().rstrip("=")
    status, body = playback.get(f"/{route}/{scope}.{expires}.{signature}/master.m3u8")
    assert status == 403 and _refused(status, body)


def test_another_tenants_video_gives_no_urls(playback: Playback) -> None:
    c_asking_for_a = PresentedVideo(playback.world.stack, playback.c.token, playback.c.tenant_id,
                                    playback.a.video_id)
    with pytest.raises(grpc.RpcError) as refused:
        c_asking_for_a.get_video()
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


CLIMBS = {
    "to A's video from C's folder": "../../{a_tenant}/{a_video}/presentation/master.m3u8",
    "to A's video, encoded": "..%2F..%2F{a_tenant}%2F{a_video}%2Fpresentation%2Fmaster.m3u8",
    "to the source beside the presentation": "../source.mp4",
    "to the source, encoded dots": "%2e%2e/source.mp4",
    "to the source, encoded slash": "..%2fsource.mp4",
    "to the source, double-encoded": "%252e%252e%252fsource.mp4",
    "to the source, backslash": "..%5csource.mp4",
    "to the signing key": "../../../../keys/url-signing.key",
    "absolute path": "%2fetc%2fpasswd",
    "a sibling folder sharing the prefix": "../presentation-other/master.m3u8",
    "nul byte": "master.m3u8%00.mp4",
}


@pytest.mark.parametrize("climb", CLIMBS.values(), ids=CLIMBS.keys())
def test_a_path_out_of_the_signed_folder_is_refused(climb: str, playback: Playback) -> None:
    own = playback.c if "C's" in climb or "{a_tenant}" in climb else playback.a
    route, token, _, _ = _token_parts(own.get_video().hls_url)
    rest = climb.format(a_tenant=playback.a.tenant_id, a_video=playback.a.video_id)
    status, body = playback.get(f"/{route}/{token}/{rest}")
    assert _refused(status, body), (status, body[:200])


def test_a_download_token_opens_no_other_file(playback: Playback) -> None:
    with playback.world.channel() as channel:
        download = metadata_pb2_grpc.MetadataServiceStub(channel).GetDownloadUrl(
            metadata_pb2.GetDownloadUrlRequest(video_id=playback.a.video_id, rendition=playback.world.a_rendition),
            metadata=bearer(playback.a.token), timeout=10)
    route, token, name, _ = _token_parts(download.url)
    for path in (f"/{route}/{token}/source.mp4", f"/{route}/{token}/../source.mp4",
                 f"/play/{token}/{name}", f"/play/{token}/../source.mp4"):
        status, body = playback.get(path)
        assert _refused(status, body), (path, status, body[:200])
