"""Following a job across server restarts.

A WatchJob stream starts with the job's current state, so reconnecting is
just watching again: whatever happened while the stream was down shows up
in that first message. The stream is re-opened when the server is
unreachable (UNAVAILABLE), when the connection under it is reset (a server
killed or restarted behind a gateway ends the stream with a reset instead of
a status), or when the server ends it before the job finished (a graceful
shutdown). Only an outage longer than the reconnect budget is an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc

from vtc.v1 import common_pb2, metadata_pb2

TERMINAL = frozenset({common_pb2.JOB_STATUS_COMPLETED, common_pb2.JOB_STATUS_FAILED,
                      common_pb2.JOB_STATUS_CANCELLED})
RECONNECT_BUDGET_SECONDS = 120.0
FIRST_PAUSE_SECONDS = 0.2
LONGEST_PAUSE_SECONDS = 2.0

# What a broken connection looks like when it surfaces as another code.
_RESET_WORDS = ("rst_stream", "stream removed", "socket closed", "connection reset", "goaway",
                "broken pipe", "end of tcp stream", "upstream", "connection refused")


def is_connection_loss(error: grpc.RpcError) -> bool:
    """Whether the call failed because the connection failed, not because of the request."""
    if not isinstance(error, grpc.Call):
        return False
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return True
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED):
        details = (error.details() or "").lower()
        return any(word in details for word in _RESET_WORDS)
    return False


class WatchLost(Exception):
    """The server stayed unreachable for longer than the reconnect budget."""

    def __init__(self, job_id: str, seconds: float, last_problem: str) -> None:
        super().__init__(f"lost the watch of job {job_id}: no connection for {seconds:.0f} s ({last_problem}); "
                         f"run `vtc watch {job_id}` again")


@dataclass
class ReconnectingWatch:
    """Yields the job's states until it is terminal, re-opening the stream as needed.

    open_stream: opens one WatchJob stream (a new token each time, if due).
    on_reconnect: told, once per outage, what went wrong.
    """

    job_id: str
    open_stream: Callable[[metadata_pb2.WatchJobRequest], Iterator[metadata_pb2.WatchJobResponse]]
    on_reconnect: Callable[[str], None]
    budget_seconds: float = RECONNECT_BUDGET_SECONDS
    sleep: Callable[[float], None] = time.sleep

    def __iter__(self) -> Iterator[common_pb2.Job]:
        outage_since: float | None = None
        pause = FIRST_PAUSE_SECONDS
        while True:
            try:
                stream = self.open_stream(metadata_pb2.WatchJobRequest(job_id=self.job_id))
                try:
                    for update in stream:
                        outage_since, pause = None, FIRST_PAUSE_SECONDS
                        yield update.job
                        if update.job.status in TERMINAL:
                            return
                finally:
                    cancel = getattr(stream, "cancel", None)
                    if cancel is not None:
                        cancel()  # no-op once the server has ended the stream
                problem = "the server ended the stream before the job finished"
            except grpc.RpcError as error:
                if not is_connection_loss(error):
                    raise
                problem = f"{error.code().name}: {' '.join((error.details() or '').split())}"
            now = time.monotonic()
            if outage_since is None:
                outage_since = now
                self.on_reconnect(problem)
            elif now - outage_since > self.budget_seconds:
                raise WatchLost(self.job_id, now - outage_since, problem)
            self.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
