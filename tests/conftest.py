"""Shared fixtures. Tests that need RabbitMQ or PostgreSQL skip when those are
absent, and fail instead when VTC_REQUIRE_SERVICES=1 (as in CI)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.media import make_clip

REQUIRE_SERVICES = os.environ.get("VTC_REQUIRE_SERVICES") == "1"


def service_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if service_reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and VTC_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture(scope="session")
def clip_640x360(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s 640x360 30 fps H.264 clip with AAC audio."""
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=2.0, width=640, height=360)


@pytest.fixture(scope="session")
def clip_two_rungs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8 s 854x480 clip with audio: the default profile makes two rungs of it (480p, 360p) and a
    presentation of two 4 s segments per track, enough for a player to switch levels and play on."""
    return make_clip(tmp_path_factory.mktemp("media") / "two-rungs.mp4", seconds=8.0, width=854, height=480)


@pytest.fixture(scope="session")
def clip_1080p(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s 1920x1080 clip: its four-rung ladder takes long enough to be caught mid-encode."""
    return make_clip(tmp_path_factory.mktemp("media") / "clip1080.mp4", seconds=6.0, width=1920, height=1080)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The all-in-one service with its REST gateway, shared by the e2e tests."""
    from tests.stack import run_stack

    yield from run_stack(tmp_path_factory.mktemp("vtc-data"), gateway=True)
