"""The error examples in docs/rest.md and docs/cli.md are what the real service
says: each is replayed against the running stack and compared line for line,
so a reworded server message fails here until the docs say it too."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import httpx
import pytest

from tests.cli_runner import Cli, _one_error_line
from tests.stack import Stack

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _section(page: str, heading: str) -> str:
    text = (DOCS / page).read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _fence(section: str) -> list[str]:
    """The lines of the section's first fenced block."""
    return section.split("```", 2)[1].splitlines()[1:]


def test_the_rest_error_example_is_what_the_gateway_answers(stack: Stack) -> None:
    block = _fence(_section("rest.md", "Errors"))
    path = re.search(r'"\$REST(/v1/[^"]+)"', block[0]).group(1)  # type: ignore[union-attr]
    status_line, documented_body = block[1], block[-1]

    reply = httpx.get(stack.rest_url + path, headers={"Authorization": f"Bearer {stack.admin_token()}"}, timeout=10)

    assert f"HTTP/1.1 {reply.status_code} {reply.reason_phrase}" == status_line
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == json.loads(documented_body)


@pytest.fixture(scope="module")
def documented_cli_errors() -> dict[str, str]:
    """The documented lines, by what follows `vtc: error: ` up to the first space."""
    lines = [line for line in _fence(_section("cli.md", "Errors and exit codes")) if line.startswith("vtc: error: ")]
    return {line.removeprefix("vtc: error: ").split(" ")[0]: line for line in lines}


def test_the_cli_not_found_example_is_what_vtc_status_prints(cli: Cli, documented_cli_errors: dict[str, str]) -> None:
    documented = documented_cli_errors["NOT_FOUND:"]
    video_id = re.search(r"vid_[0-9a-z]+", documented).group(0)  # type: ignore[union-attr]

    assert _one_error_line(cli.run("status", video_id)) == documented


def test_the_cli_not_logged_in_example_is_what_vtc_prints(stack: Stack, tmp_path: Path,
                                                           documented_cli_errors: dict[str, str]) -> None:
    fresh = Cli(config_dir=tmp_path / "config", addr=stack.grpc_address)

    assert _one_error_line(fresh.run("ls", "--addr", stack.grpc_address)) == documented_cli_errors["not"]


def test_the_cli_unreachable_server_example_is_what_vtc_prints(cli: Cli,
                                                               documented_cli_errors: dict[str, str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    documented = documented_cli_errors["UNAVAILABLE:"].replace("127.0.0.1:50051", f"127.0.0.1:{port}")
    head = documented.removesuffix("...")

    line = _one_error_line(cli.run("ls", "--addr", f"127.0.0.1:{port}", timeout=60))

    assert line.startswith(head) and len(line) > len(head)
