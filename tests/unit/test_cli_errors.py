"""Failures end as one line on stderr naming the gRPC status and the server's
message. The gRPC errors here come from a real server on port 0."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from vtc.cli.commands.jobs import JobFailed, check_outcome
from vtc.cli.credentials import Credentials, CredentialStore
from vtc.cli.errors import CliError, error_line
from vtc.cli.main import EXIT_FAILURE, main
from vtc.v1 import common_pb2

_METHOD = "/vtc.v1.MetadataService/GetVideo"


def _not_found(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.NOT_FOUND, "no video vid_x\n(for this tenant)")


@pytest.fixture
def failing_server() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(_not_found)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "vtc.v1.MetadataService", {"GetVideo": handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def _call(addr: str) -> grpc.RpcError:
    with grpc.insecure_channel(addr) as channel:
        try:
            channel.unary_unary(_METHOD)(b"", timeout=5)
        except grpc.RpcError as error:
            return error
    raise AssertionError("the call should have failed")


def test_status_code_name_and_details_on_one_line(failing_server: str) -> None:
    assert error_line(_call(failing_server)) == "vtc: error: NOT_FOUND: no video vid_x (for this tenant)"


def test_unreachable_server_says_where_and_what_to_do(unused_tcp_port: int) -> None:
    line = error_line(_call(f"127.0.0.1:{unused_tcp_port}"), addr=f"127.0.0.1:{unused_tcp_port}")
    assert line.startswith(f"vtc: error: UNAVAILABLE: cannot reach the vtc server at 127.0.0.1:{unused_tcp_port} "
                           "(is `make run` running?)")
    assert "\n" not in line


def test_cli_and_os_errors_read_as_sentences(tmp_path: Path) -> None:
    assert error_line(CliError("not logged in: run `vtc login`")) == "vtc: error: not logged in: run `vtc login`"
    try:
        (tmp_path / "missing.mp4").open()
    except OSError as error:
        assert error_line(error) == f"vtc: error: No such file or directory: {tmp_path / 'missing.mp4'}"


def test_a_command_failing_on_the_server_prints_one_line_and_exits_1(
        failing_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VTC_CONFIG_DIR", str(tmp_path))
    CredentialStore(tmp_path).save(Credentials(addr=failing_server, api_key="k", access_token="t",
                                               expires_at=datetime.now(UTC) + timedelta(hours=1)))
    assert main(["status", "vid_x"]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.err == "vtc: error: NOT_FOUND: no video vid_x (for this tenant)\n"
    assert captured.out == ""


def test_not_logged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VTC_CONFIG_DIR", str(tmp_path))
    assert main(["ls"]) == EXIT_FAILURE
    assert capsys.readouterr().err == "vtc: error: not logged in: run `vtc login`\n"


def test_a_failed_job_reads_as_its_reason() -> None:
    job = common_pb2.Job(job_id="job_1", status=common_pb2.JOB_STATUS_FAILED,
                         error="the source's video stream cannot be decoded")
    with pytest.raises(JobFailed) as failed:
        check_outcome(job)
    assert error_line(failed.value) == "vtc: error: job job_1 failed: the source's video stream cannot be decoded"
    check_outcome(common_pb2.Job(job_id="job_2", status=common_pb2.JOB_STATUS_COMPLETED))  # no raise


def test_a_server_message_with_escape_sequences_is_printed_harmless() -> None:
    hostile = "no video \x1b]0;owned\x07\x1b[2J\x9b1A\u202evom.exe"

    def abort(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.NOT_FOUND, hostile)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "vtc.v1.MetadataService", {"GetVideo": grpc.unary_unary_rpc_method_handler(abort)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        line = error_line(_call(f"127.0.0.1:{port}"))
    finally:
        server.stop(0)
    assert line == "vtc: error: NOT_FOUND: no video \\x1b]0;owned\\x07\\x1b[2J\\x9b1A\\u202evom.exe"
