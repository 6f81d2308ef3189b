"""Hostile sources that refer to other files: the upload's probe and the
worker both refuse them, so no upload can make us read a file it does not hold
(another tenant's rendition, a key, /etc/passwd)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import pytest

from services.process_svc.execute.probe import open_source
from services.process_svc.failures import SourceUnreadable
from services.shared.media_source import REFERENCING_REASON, open_untrusted_media
from services.upload_svc.probe import UnusableMedia, probe_file
from tests.media import make_clip


@pytest.fixture(scope="module")
def victim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands for another tenant's rendition somewhere on the same disk."""
    return make_clip(tmp_path_factory.mktemp("other-tenant") / "720p.mp4", seconds=1.0, width=320, height=240)


def hls_absolute(d: Path, victim: Path) -> Path:
    path = d / "evil.m3u8"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n{victim}\n#EXT-X-ENDLIST\n")
    return path


def hls_relative(d: Path, victim: Path) -> Path:
    path = d / "upload.mp4"  # the name says mp4; the content is a playlist
    relative = Path("..") / victim.parent.name / victim.name
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n{relative}\n#EXT-X-ENDLIST\n")
    return path


def hls_file_url(d: Path, victim: Path) -> Path:
    path = d / "url.m3u8"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n{victim.as_uri()}\n#EXT-X-ENDLIST\n")
    return path


def ffconcat(d: Path, victim: Path) -> Path:
    path = d / "list.txt"
    path.write_text(f"ffconcat version 1.0\nfile '{victim}'\n")
    return path


def dash_manifest(d: Path, victim: Path) -> Path:
    path = d / "manifest.mpd"
    path.write_text(
        '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'mediaPresentationDuration="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">'
        f'<Period><AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="1000">'
        f'<BaseURL>{victim}</BaseURL></Representation></AdaptationSet></Period></MPD>\n')
    return path


HOSTILE: dict[str, Callable[[Path, Path], Path]] = {
    "hls playlist, absolute path": hls_absolute,
    "hls playlist named .mp4, relative path": hls_relative,
    "hls playlist, file:// url": hls_file_url,
    "ffconcat list": ffconcat,
    "dash manifest": dash_manifest,
}


@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
def test_upload_probe_refuses_sources_that_refer_to_other_files(make, tmp_path: Path, victim: Path) -> None:  # type: ignore[no-untyped-def]
    source = make(tmp_path, victim)
    with pytest.raises(UnusableMedia) as refused:
        probe_file(source)
    assert REFERENCING_REASON in refused.value.message
    assert str(victim) not in refused.value.message


@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
def test_worker_refuses_sources_that_refer_to_other_files(make, tmp_path: Path, victim: Path) -> None:  # type: ignore[no-untyped-def]
    source = make(tmp_path, victim)
    with pytest.raises(SourceUnreadable) as refused:
        open_source(source)
    assert REFERENCING_REASON in refused.value.reason


def test_a_plain_ffmpeg_open_would_have_read_the_other_file(tmp_path: Path, victim: Path) -> None:
    """Why the allow-list exists: without it FFmpeg follows the playlist to the victim's pictures."""
    with av.open(str(hls_absolute(tmp_path, victim))) as container:
        assert container.format.name == "hls"
        assert container.streams.video[0].codec_context.width == 320


def test_playlist_reason_names_what_was_uploaded(tmp_path: Path, victim: Path) -> None:
    with pytest.raises(UnusableMedia) as refused:
        probe_file(hls_absolute(tmp_path, victim))
    assert refused.value.message.startswith("the file is an HLS playlist (.m3u8), which refers to other files")


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm", ".avi", ".ts", ".flv", ".h264"])
def test_self_contained_containers_still_open(suffix: str, tmp_path: Path) -> None:
    codec = "libvpx-vp9" if suffix == ".webm" else "libx264"
    source = make_clip(tmp_path / f"clip{suffix}", seconds=0.5, width=160, height=96, codec=codec,
                       audio=suffix not in {".h264", ".webm"})
    with open_untrusted_media(source) as container:
        assert container.streams.video[0].codec_context.width == 160
    with open_source(source) as container:
        assert container.streams.video[0].codec_context.width == 160
