"""Signed URLs of the local store: what verifies, what is refused and why; Range parsing."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from services.shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.shared.storage.file_server import Unsatisfiable, byte_range
from services.shared.storage.signed_urls import UrlSigner, load_or_create_secret

KEY = "ten_a/vid_1/renditions/720p.mp4"


def parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path, query["expires"][0], query["signature"][0]


def test_a_signed_url_verifies_until_it_expires() -> None:
    signer = UrlSigner(os.urandom(32), "http://127.0.0.1:8080/")
    expires = int(time.time()) + 60
    url = signer.url(KEY, expires)

    assert url.startswith(f"http://127.0.0.1:8080/files/{KEY}?expires={expires}&signature=")
    assert signer.verify(*parts(url)) == KEY
    with pytest.raises(PermissionDenied, match="expired"):
        signer.verify(*parts(url), now=expires + 1)


@pytest.mark.parametrize("change", ["key", "expires", "signature", "secret"])
def test_any_change_breaks_the_signature(change: str) -> None:
    signer = UrlSigner(os.urandom(32))
    path, expires, signature = parts(signer.url(KEY, int(time.time()) + 60))
    if change == "key":
        path = path.replace("720p", "1080p")
    elif change == "expires":
        expires = str(int(expires) + 3600)
    elif change == "signature":
        signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    else:
        signer = UrlSigner(os.urandom(32))

    with pytest.raises(PermissionDenied, match="signature does not match"):
        signer.verify(path, expires, signature)


def test_unsigned_and_escaping_paths_are_refused() -> None:
    signer = UrlSigner(os.urandom(32))
    with pytest.raises(PermissionDenied, match="not signed"):
        signer.verify(f"/files/{KEY}", "", "")
    expires = int(time.time()) + 60
    with pytest.raises(InvalidArgument):
        signer.url("ten_a/../ten_b/x.mp4", expires)


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
