"""The run-mesh topology for tests: `start_mesh` (what `make run-mesh` runs)
with edge ports picked by the kernel, a database and a data directory of the
test's own, on its own event loop in a background thread (as tests/stack.py
runs the all-in-one process)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

from services.mesh.launcher import Mesh, start_mesh
from services.mesh.settings import MeshSettings


class RunningMesh:
    def __init__(self, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> None:
        self.mesh = mesh
        self.loop = loop

    @property
    def grpc_address(self) -> str:
        return self.mesh.grpc_address

    @property
    def rest_url(self) -> str:
        return self.mesh.rest_url


def run_mesh(data_dir: Path, database_url: str, bus_url: str, service_env: dict[str, str] | None = None,
             **settings: object) -> Iterator[RunningMesh]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="vtc-mesh", daemon=True)
    thread.start()
    config = MeshSettings(data_dir=data_dir, mesh_grpc_port=0, mesh_rest_port=0, mesh_database_url=database_url,
                          bus_url=bus_url, log_level="INFO", **settings)
    mesh = asyncio.run_coroutine_threadsafe(start_mesh(config, service_env=service_env), loop).result(timeout=300)
    try:
        yield RunningMesh(mesh, loop)
    finally:
        asyncio.run_coroutine_threadsafe(mesh.stop(), loop).result(timeout=120)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
