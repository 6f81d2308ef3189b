"""A RabbitMQ node of a test's own (its own node name, port, data and log
directories, no plugins), for tests that stop and restart the broker; the
shared one on 5672 is never touched. Needs `rabbitmq-server` (the package that
runs the shared broker); tests skip without it, and fail under VTC_REQUIRE_SERVICES=1."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRabbitMQ:
    def __init__(self, base: Path) -> None:
        if not SERVER.exists() and shutil.which("rabbitmq-server") is None:
            message = "rabbitmq-server is not installed"
            if REQUIRE_SERVICES:
                pytest.fail(f"{message} and VTC_REQUIRE_SERVICES=1")
            pytest.skip(message)
        self.base = base
        self.port = _free_port()
        base.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text("")
        name = f"vtc-test-{uuid.uuid4().hex[:8]}@localhost"
        self.env = {**os.environ, "RABBITMQ_NODENAME": name, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                    "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(_free_port()),
                    "RABBITMQ_MNESIA_BASE": str(base / "mnesia"), "RABBITMQ_LOG_BASE": str(base / "log"),
                    "RABBITMQ_LOGS": str(base / "log" / "rabbit.log"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
                    "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"), "RABBITMQ_PID_FILE": str(base / "pid")}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self, timeout: float = 120) -> float:
        """Starts the node (again, with the same data) and returns how long it took."""
        started = time.monotonic()
        server = str(SERVER) if SERVER.exists() else str(shutil.which("rabbitmq-server"))
        with (self.base / "server.out").open("ab") as out:
            # Its own process group: stop() signals exactly the processes started here.
            self._process = subprocess.Popen([server], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        while time.monotonic() - started < timeout:
            if self._process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: {(self.base / 'server.out').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return time.monotonic() - started
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"the private RabbitMQ node did not listen on {self.port} within {timeout} s")

    def stop(self, timeout: float = 60) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(10)
        # The node's helpers (its disk monitor) sit in the same group: wait for the port to free.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    time.sleep(0.3)
            except OSError:
                break
        self._process = None
