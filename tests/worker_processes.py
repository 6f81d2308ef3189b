"""Transcode workers as separate processes, the way a mesh runs them
(`python -m services.process_svc`, or a test's wrapper module in its place),
so a test can SIGKILL one mid-encode and start another."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Settings a developer's shell could leak into the workers.
_CLEARED = ("VTC_",)


@dataclass
class WorkerProcess:
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is acked or cleaned up."""
        self.popen.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.popen.wait)

    async def stop(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(self.popen.wait), 30)
            except TimeoutError:
                await self.kill()


@dataclass
class WorkerPool:
    """Workers sharing one bus namespace, one object store and one work dir."""

    env: dict[str, str]
    log_dir: Path
    module: str = "services.process_svc"
    workers: list[WorkerProcess] = field(default_factory=list)
    started: int = 0

    def start(self) -> WorkerProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.started += 1
        log = self.log_dir / f"worker-{self.started}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED)}
        with log.open("wb") as sink:
            popen = subprocess.Popen([sys.executable, "-m", self.module], cwd=ROOT, env={**base, **self.env},
                                     stdout=sink, stderr=subprocess.STDOUT)
        worker = WorkerProcess(popen, log)
        self.workers.append(worker)
        return worker

    def by_pid(self, pid: int) -> WorkerProcess | None:
        return next((w for w in self.workers if w.pid == pid and w.alive()), None)

    def alive(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.alive()]

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))

    def logs(self) -> str:
        """The tail of every worker's log, for a failing assertion's message."""
        return "\n".join(f"--- {w.log.name} (exit {w.popen.returncode})\n" + w.log.read_text()[-3000:]
                         for w in self.workers if w.log.exists())


def worker_env(*, amqp_url: str, namespace: str, objects: Path, work_dir: Path, data_dir: Path,
               **extra: str) -> dict[str, str]:
    return {
        "VTC_BUS_URL": amqp_url, "VTC_BUS_NAMESPACE": namespace, "VTC_STORAGE_URL": objects.resolve().as_uri(),
        "VTC_PROCESS_WORK_DIR": str(work_dir), "VTC_DATA_DIR": str(data_dir), "VTC_GRPC_PORT": "0",
        # Workers verify tokens only for ListProfiles, which these tests never call.
        "VTC_AUTH_ADDR": "127.0.0.1:9", "VTC_PROCESS_PROGRESS_INTERVAL_SECONDS": "0.2", "VTC_LOG_LEVEL": "INFO",
        **extra,
    }
