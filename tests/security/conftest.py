"""The attack suite: each test is one attack with the outcome it must get,
against a running vtc (the all-in-one process with Envoy in front), over gRPC
and REST. At the end it prints "N attacks, N refused"; every attack that does
not get its expected refusal is a failed test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.security.world import World, build_world

_tally = {"attacks": 0, "refused": 0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/security/" not in report.nodeid.replace("\\", "/"):
        return
    if report.when == "call" or (report.when == "setup" and not report.passed and not report.skipped):
        _tally["attacks"] += 1
        _tally["refused"] += int(report.passed)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if _tally["attacks"]:
        terminalreporter.write_line(f"{_tally['attacks']} attacks, {_tally['refused']} refused")


# Limits set low so that the attacks on them run in seconds.
LIMITS = {
    "VTC_UPLOAD_IDLE_TIMEOUT_SECONDS": "2",
    "VTC_UPLOAD_MAX_CONCURRENT_PER_TENANT": "3",
    "VTC_AUTH_ISSUE_TOKEN_KEY_BURST": "5",
    "VTC_AUTH_ISSUE_TOKEN_PER_KEY_PER_MINUTE": "1",
    "VTC_AUTH_ISSUE_TOKEN_PEER_BURST": "30",
    "VTC_METADATA_QUOTA_STORED_BYTES": str(8 * 1024 * 1024),
}


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Two tenants (A with a transcoded video, B the attacker) on a stack of their own."""
    from tests.stack import run_stack

    saved = {name: os.environ.get(name) for name in LIMITS}
    os.environ.update(LIMITS)
    running = run_stack(tmp_path_factory.mktemp("vtc-security"), gateway=True)
    try:
        stack = next(running)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        yield build_world(stack, idle_timeout_seconds=float(LIMITS["VTC_UPLOAD_IDLE_TIMEOUT_SECONDS"]),
                          max_concurrent_uploads=int(LIMITS["VTC_UPLOAD_MAX_CONCURRENT_PER_TENANT"]))
    finally:
        next(running, None)
