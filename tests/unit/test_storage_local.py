"""The local object store: keys never reach outside its root, objects are private whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.shared.errors import InvalidArgument
from services.shared.storage.local import LocalDirectoryStore


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/etc/passwd", "a//b", "a/./b", "", "a/b\x00c",
                                 "a/\x1b[2J"])
async def test_keys_that_leave_the_root_or_carry_controls_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    source = tmp_path / "src"
    source.write_bytes(b"x")
    with pytest.raises(InvalidArgument, match="storage key"):
        await store.put_file(key, source, "video/mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["objects", "src"]


async def test_a_symlink_inside_the_root_does_not_lead_out(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalDirectoryStore(root)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key.pem").write_text("secret")
    (root / "ten_a").symlink_to(tmp_path / "secret")
    with pytest.raises(InvalidArgument, match="outside the store"):
        await store.stat("ten_a/key.pem")


async def test_objects_and_their_folders_are_private_whatever_the_umask(tmp_path: Path, umask_022: None) -> None:
    root = tmp_path / "var" / "objects"
    store = LocalDirectoryStore(root)
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"data" * 1000)
    assert _mode(source) == 0o644  # what the umask gives a plain file
    await store.put_file("ten_a/vid_0123456789abcdef0123/source.mp4", source, "video/mp4")
    stored = root / "ten_a" / "vid_0123456789abcdef0123" / "source.mp4"
    assert stored.read_bytes() == source.read_bytes()
    assert _mode(stored) == 0o600
    for folder in (tmp_path / "var", root, root / "ten_a", stored.parent):
        assert _mode(folder) == 0o700, folder


async def test_a_file_handed_over_on_the_same_file_system_is_linked_not_copied(tmp_path: Path,
                                                                                umask_022: None) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    spooled = tmp_path / "upload-1.mp4"
    spooled.write_bytes(b"m" * 5000)
    os.chmod(spooled, 0o644)

    await store.put_file("t/v/source/clip.mp4", spooled, "video/mp4", take=True)

    stored = tmp_path / "objects" / "t" / "v" / "source" / "clip.mp4"
    assert stored.stat().st_ino == spooled.stat().st_ino  # no second copy of the bytes on disk
    assert _mode(stored) == 0o600
    spooled.unlink()
    assert stored.read_bytes() == b"m" * 5000
    assert not list(stored.parent.glob("*.partial"))


async def test_a_file_not_handed_over_is_copied(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    source = tmp_path / "rendition.mp4"
    source.write_bytes(b"r" * 5000)

    await store.put_file("t/v/r.mp4", source, "video/mp4")

    assert (tmp_path / "objects" / "t" / "v" / "r.mp4").stat().st_ino != source.stat().st_ino
