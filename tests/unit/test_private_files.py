"""Data files and folders are created private (0600 / 0700) whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from services.shared.db import create_engine, sqlite_url
from services.shared.private_files import create_private_dirs, ensure_private_file, open_private


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_folders_are_0700_but_an_existing_shared_one_is_left_alone(tmp_path: Path, umask_022: None) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    create_private_dirs(shared / "a" / "b")
    assert (_mode(shared / "a"), _mode(shared / "a" / "b"), _mode(shared)) == (0o700, 0o700, 0o755)


def test_files_are_0600_even_when_they_existed(tmp_path: Path, umask_022: None) -> None:
    existing = tmp_path / "old.log"
    existing.write_text("x")
    os.chmod(existing, 0o644)
    with open_private(existing, append=True) as log:
        log.write(b"y")
    assert (existing.read_text(), _mode(existing)) == ("xy", 0o600)
    ensure_private_file(tmp_path / "new" / "auth.db")
    assert (_mode(tmp_path / "new"), _mode(tmp_path / "new" / "auth.db")) == (0o700, 0o600)


async def test_a_sqlite_database_and_its_wal_are_private(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "data" / "metadata.db"
    engine = create_engine(sqlite_url(path))
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES (1)"))
            modes = {p.name: _mode(p) for p in path.parent.iterdir()}
    finally:
        await engine.dispose()
    assert "metadata.db-wal" in modes
    assert modes == dict.fromkeys(modes, 0o600)
    assert _mode(path.parent) == 0o700
