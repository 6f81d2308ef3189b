"""Signed URLs (single files and presentation folders): what verifies, what is refused and why;
Range parsing; cache headers."""

from __future__ import annotations

import base64
import os
import stat
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from services.shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.shared.storage.file_server import Unsatisfiable, byte_range
from services.shared.storage.signed_urls import SignedRequest, UrlSigner, load_or_create_secret

KEY = "ten_a/vid_1/renditions/720p.mp4"


PREFIX = "ten_a/vid_1/presentation/"


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_a_signed_url_verifies_until_it_expires() -> None:
    signer = UrlSigner(os.urandom(32), "http://127.0.0.1:8080/")
    expires = int(time.time()) + 60
    url = signer.url(KEY, expires)

    assert url.startswith("http://127.0.0.1:8080/files/") and url.endswith("/720p.mp4")
    assert "?" not in url, "the signature sits in the path"
    assert signer.verify(path_of(url)) == SignedRequest(KEY, expires, "/files/")
    with pytest.raises(PermissionDenied, match="expired: ask GetDownloadUrl"):
        signer.verify(path_of(url), now=expires + 1)


def test_a_folder_url_opens_every_file_under_the_folder_by_relative_path() -> None:
    signer = UrlSigner(os.urandom(32), "https://media.example/")
    expires = int(time.time()) + 60
    master = signer.folder_url(PREFIX, "master.m3u8", expires)
    token_path = path_of(master).rsplit("/", 1)[0]

    assert master.startswith("https://media.example/play/") and master.endswith("/master.m3u8")
    # What a player asks for after resolving the playlist's relative references.
    for entry in ("master.m3u8", "720p/playlist.m3u8", "720p/seg-00001.m4s", "audio/init.mp4", "a%20b.m4s"):
        got = signer.verify(f"{token_path}/{entry}")
        assert got.key == PREFIX + entry.replace("%20", " ") and got.expires == expires
    with pytest.raises(PermissionDenied, match="expired: ask GetVideo"):
        signer.verify(path_of(master), now=expires + 1)


@pytest.mark.parametrize("entry", [
    "../source.mov", "720p/../../source.mov", "%2e%2e/source.mov", "..%2fsource.mov", "./master.m3u8",
    "720p//seg.m4s", "", "/etc/passwd", "%2fetc%2fpasswd", "..\\source.mov", "seg%00.m4s", "%ff.m4s",
])
def test_a_path_leaving_the_signed_folder_is_refused(entry: str) -> None:
    signer = UrlSigner(os.urandom(32))
    token_path = path_of(signer.folder_url(PREFIX, "master.m3u8", int(time.time()) + 60)).rsplit("/", 1)[0]

    with pytest.raises((InvalidArgument, PermissionDenied)):
        signer.verify(f"{token_path}/{entry}")


@pytest.mark.parametrize("change", ["scope", "expires", "signature", "secret", "route"])
def test_any_change_breaks_the_signature(change: str) -> None:
    signer = UrlSigner(os.urandom(32))
    path = path_of(signer.folder_url(PREFIX, "master.m3u8", int(time.time()) + 60))
    route, token, entry = path[1:].split("/", 2)
    scope, expires, signature = token.split(".")
    if change == "scope":  # another tenant's video, under one's own signature
        scope = base64.urlsafe_b64encode(b"ten_b/vid_2/presentation/").decode().rstrip("=")
    elif change == "expires":
        expires = str(int(expires) + 3600)
    elif change == "signature":
        signature = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    elif change == "secret":
        signer = UrlSigner(os.urandom(32))
    else:  # a folder token on the single-file route
        route = "files"

    with pytest.raises(PermissionDenied, match="signature does not match"):
        signer.verify(f"/{route}/{scope}.{expires}.{signature}/{entry}")


def test_a_file_url_serves_only_its_own_file() -> None:
    signer = UrlSigner(os.urandom(32))
    token_path = path_of(signer.url(KEY, int(time.time()) + 60)).rsplit("/", 1)[0]

    with pytest.raises(PermissionDenied, match="another file"):
        signer.verify(f"{token_path}/1080p.mp4")


@pytest.mark.parametrize("path", ["/files/ten_a/vid_1/renditions/720p.mp4", "/play/x/master.m3u8",
                                  "/play/!!.1.!!/master.m3u8", "/play/abc.notanumber.abc/x", "/other/x"])
def test_unsigned_paths_are_refused(path: str) -> None:
    with pytest.raises(PermissionDenied, match="not (a )?signed"):
        UrlSigner(os.urandom(32)).verify(path)


def test_signing_refuses_keys_that_escape() -> None:
    signer = UrlSigner(os.urandom(32))
    expires = int(time.time()) + 60
    with pytest.raises(InvalidArgument):
        signer.url("ten_a/../ten_b/x.mp4", expires)
    with pytest.raises(InvalidArgument):
        signer.folder_url(PREFIX, "../x", expires)
    with pytest.raises(InvalidArgument):
        signer.folder_url(PREFIX.rstrip("/"), "x", expires)


def test_the_secret_file_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "url-signing.key"

    first = load_or_create_secret(path)

    assert len(first) == 32 and load_or_create_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("bytes=0-99", (0, 99)), ("bytes=100-", (100, 999)), ("bytes=-100", (900, 999)),
    ("bytes=990-5000", (990, 999)), ("bytes=-5000", (0, 999)), ("bytes=0-1,5-6", None), ("items=0-1", None),
    ("bytes=50-10", None),
])
def test_byte_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, 1000)


def test_the_secret_is_made_only_when_a_url_is_signed_and_a_failure_names_the_setting(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("")  # a keys folder the service cannot write in (a read-only mount in compose)
    signer = UrlSigner(lambda: load_or_create_secret(keys / "url-signing.key"))  # starting needs nothing

    with pytest.raises(FailedPrecondition, match="cannot make .*url-signing.key .*set VTC_URL_SIGNING_KEY"):
        signer.url(KEY, int(time.time()) + 60)


def test_a_short_configured_secret_is_refused() -> None:
    with pytest.raises(FailedPrecondition, match="at least 16 bytes"):
        UrlSigner(b"short").url(KEY, int(time.time()) + 60)
