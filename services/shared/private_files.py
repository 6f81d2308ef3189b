"""Files and directories only this user may read: data files (0600) in
directories only this user may enter (0700), whatever the umask. Everything a
service keeps (DBs, objects, keys, spool and scratch files, logs) is created
through these. Key files are written atomically, so a crash never leaves half a key."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def create_private_dirs(path: Path) -> None:
    """Creates path and its missing parents with mode 0700. Folders that exist
    are left as they are: they may be shared ones (/tmp) the operator chose."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            folder.mkdir(mode=PRIVATE_DIR_MODE)  # the umask can only take bits away from 0700


def ensure_private_dir(path: Path) -> None:
    """A folder of our own (keys): created like create_private_dirs, and made 0700 if it existed."""
    create_private_dirs(path)
    os.chmod(path, PRIVATE_DIR_MODE)


def ensure_private_file(path: Path) -> None:
    """Creates path empty with mode 0600 if missing (its folders 0700), or makes the existing file 0600."""
    create_private_dirs(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
    finally:
        os.close(descriptor)


def open_private(path: Path, *, append: bool = False) -> BinaryIO:
    """`path` opened for writing (truncated, or appended to), mode 0600 even if it existed."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    descriptor = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
        return os.fdopen(descriptor, "ab" if append else "wb")
    except BaseException:
        os.close(descriptor)
        raise


def write_private_file(path: Path, text: str, *, replace: bool = False) -> bool:
    """Writes `text` to `path` with mode 0600. Without `replace`, an existing file
    is left alone and False is returned (another process may have won the race)."""
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # O_EXCL + mode at creation: the secret is never readable by others, not even briefly.
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(staging, path)
            return True
        try:
            os.link(staging, path)  # atomic create-if-missing
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)


def read_private_file(path: Path) -> str | None:
    """The file's text without surrounding whitespace, or None when there is no file."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def is_private(path: Path) -> bool:
    return path.stat().st_mode & 0o077 == 0
