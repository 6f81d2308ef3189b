"""Scratch directories of running jobs, one per job under the worker's work dir.

A job's directory holds an flock on its `.owner.lock` for as long as the job
runs; the kernel drops the lock when the process ends, however it ends
(SIGKILL included). So a worker starting up can tell abandoned directories
from live ones, even when several workers share one work dir: it removes
every directory whose lock it can take.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from services.shared.private_files import create_private_dirs

log = logging.getLogger("vtc.process.scratch")

LOCK_NAME = ".owner.lock"
# A directory without its lock yet may be a moment from taking it: leave it this long.
YOUNG_SECONDS = 5.0


class ScratchDir:
    """One job's scratch space, locked until `remove()`."""

    def __init__(self, work_dir: Path, job_id: str) -> None:
        create_private_dirs(work_dir)
        self.path = Path(tempfile.mkdtemp(prefix=f"{job_id or 'job'}-", dir=work_dir))
        # Locked under another name, then renamed: a visible lock file is always held.
        pending = self.path / (LOCK_NAME + ".new")
        self._lock = os.open(pending, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(pending, self.path / LOCK_NAME)

    def remove(self) -> None:
        """Deletes the directory, then lets go of its lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1


def remove_abandoned(work_dir: Path) -> list[Path]:
    """Removes the scratch directories no live job owns; returns them."""
    if not work_dir.is_dir():
        return []
    removed = []
    for child in sorted(work_dir.iterdir()):
        if child.is_dir() and _abandoned(child):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    if removed:
        log.info("removed %d scratch directories left by jobs that are no longer running", len(removed),
                 extra={"fields": {"directories": [p.name for p in removed]}})
    return removed


def _abandoned(directory: Path) -> bool:
    try:
        lock = os.open(directory / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        try:  # not locked yet, or never: a crash right after creating it
            return time.time() - directory.stat().st_mtime >= YOUNG_SECONDS
        except FileNotFoundError:
            return False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live job holds it
    finally:
        os.close(lock)
    return True
