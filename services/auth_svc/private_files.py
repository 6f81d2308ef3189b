"""Files only this user may read: key files (0600) in directories only this
user may enter (0700). Written atomically, so a crash never leaves half a key."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    # mkdir's mode is masked by the umask and ignored when the directory exists.
    os.chmod(path, PRIVATE_DIR_MODE)


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
