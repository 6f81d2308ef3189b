"""`vtc watch` carries on across a lost connection: which failures it
reconnects after, what it says, and when it gives up."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from vtc.cli.watch_stream import ReconnectingWatch, WatchLost, is_connection_loss
from vtc.v1 import common_pb2, metadata_pb2


class RpcFailure(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """What grpc raises: an RpcError that is also the Call, with a code and details."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self):  # type: ignore[no-untyped-def]
        return ()

    def trailing_metadata(self):  # type: ignore[no-untyped-def]
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback) -> bool:  # type: ignore[no-untyped-def]
        return False


def state(status: int, percent: float = 0.0) -> metadata_pb2.WatchJobResponse:
    return metadata_pb2.WatchJobResponse(job=common_pb2.Job(job_id="job_1", status=status,
                                                            progress=common_pb2.Progress(percent=percent)))


RUNNING, DONE = common_pb2.JOB_STATUS_RUNNING, common_pb2.JOB_STATUS_COMPLETED


def streams(*scripts: list[object]):  # type: ignore[no-untyped-def]
    """Each call opens the next scripted stream: responses, then maybe an error."""
    pending = list(scripts)

    def open_stream(request: metadata_pb2.WatchJobRequest) -> Iterator[metadata_pb2.WatchJobResponse]:
        assert request.job_id == "job_1"
        script = pending.pop(0)

        def run() -> Iterator[metadata_pb2.WatchJobResponse]:
            for item in script:
                if isinstance(item, BaseException):
                    raise item
                yield item
        return run()

    return open_stream


@pytest.mark.parametrize("failure", [
    RpcFailure(grpc.StatusCode.UNAVAILABLE, "Socket closed"),
    RpcFailure(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"),
    RpcFailure(grpc.StatusCode.INTERNAL, "Received RST_STREAM with error code 2"),
    RpcFailure(grpc.StatusCode.UNKNOWN, "Stream removed"),
])
def test_a_lost_connection_reconnects_and_carries_on_from_the_current_state(failure: RpcFailure) -> None:
    said: list[str] = []
    watch = ReconnectingWatch("job_1", streams([state(RUNNING, 10), failure],
                                               [failure],  # still down on the first retry
                                               [state(RUNNING, 60), state(DONE, 100)]),
                              said.append, sleep=lambda _: None)
    assert [job.progress.percent for job in watch] == [10, 60, 100]
    assert len(said) == 1 and failure.code().name in said[0]


def test_a_stream_the_server_ends_early_is_reopened() -> None:
    said: list[str] = []
    watch = ReconnectingWatch("job_1", streams([state(RUNNING, 10)], [state(DONE, 100)]), said.append,
                              sleep=lambda _: None)
    assert [job.status for job in watch] == [RUNNING, DONE]
    assert "ended the stream" in said[0]


def test_errors_about_the_request_are_not_retried() -> None:
    watch = ReconnectingWatch("job_1", streams([RpcFailure(grpc.StatusCode.NOT_FOUND, "no job job_1")]),
                              lambda _: None, sleep=lambda _: None)
    with pytest.raises(grpc.RpcError):
        list(watch)
    assert not is_connection_loss(RpcFailure(grpc.StatusCode.INTERNAL, "internal error; the service logged it"))


def test_an_outage_longer_than_the_budget_gives_up_with_the_command_to_resume() -> None:
    down = RpcFailure(grpc.StatusCode.UNAVAILABLE, "failed to connect")
    watch = ReconnectingWatch("job_1", streams(*[[down]] * 1000), lambda _: None, budget_seconds=0.05,
                              sleep=lambda _: time.sleep(0.01))
    with pytest.raises(WatchLost, match=r"run `vtc watch job_1` again"):
        list(watch)
