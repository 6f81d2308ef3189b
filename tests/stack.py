"""The whole service running for tests: the all-in-one process (four services on
one gRPC server, in-process bus, local storage, optionally Envoy) on its own
event loop in a background thread, so sync and async tests alike can call it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import grpc

from services.all_in_one import AllInOne, AllInOneSettings, start_all_in_one


@dataclass
class Stack:
    vtc: AllInOne
    loop: asyncio.AbstractEventLoop
    data_dir: Path

    @property
    def grpc_address(self) -> str:
        return self.vtc.grpc_address

    @property
    def rest_url(self) -> str:
        assert self.vtc.rest_port, "this stack runs without the REST gateway"
        return f"http://127.0.0.1:{self.vtc.rest_port}"

    @property
    def admin_key(self) -> str:
        return self.vtc.admin_key_file.read_text().strip()

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.grpc_address)

    def admin_token(self) -> str:
        """A token of the default tenant's admin (what `vtc login` uses)."""
        return self._token(self.admin_key)

    def operator_token(self) -> str:
        """A token of the platform operator: tenants and their keys."""
        return self._token(self.vtc.operator_key_file.read_text().strip())

    def _token(self, api_key: str) -> str:
        from vtc.v1 import auth_pb2, auth_pb2_grpc

        with self.channel() as channel:
            reply = auth_pb2_grpc.AuthServiceStub(channel).IssueToken(
                auth_pb2.IssueTokenRequest(api_key=api_key), timeout=10)
        return reply.access_token


def run_stack(data_dir: Path, *, gateway: bool) -> Iterator[Stack]:
    """Starts the stack, yields it, stops it. For use inside a pytest fixture."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="vtc-stack", daemon=True)
    thread.start()
    settings = AllInOneSettings(data_dir=data_dir, grpc_port=0, rest_port=0, gateway_enabled=gateway,
                                shutdown_grace_seconds=1.0)
    started: Future[AllInOne] = asyncio.run_coroutine_threadsafe(start_all_in_one(settings), loop)
    vtc = started.result(timeout=120)
    try:
        yield Stack(vtc=vtc, loop=loop, data_dir=data_dir)
    finally:
        asyncio.run_coroutine_threadsafe(vtc.stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
