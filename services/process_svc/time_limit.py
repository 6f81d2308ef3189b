"""A job's wall-time limit, from its source's duration: a job that runs far
longer than its peers is stuck or pathological, and must end with a reason
instead of holding a worker for ever."""

from __future__ import annotations

from dataclasses import dataclass

from services.process_svc.failures import clock


@dataclass(frozen=True)
class TimeLimit:
    factor: float  # wall seconds allowed per second of source
    minimum_seconds: float

    def for_source(self, duration_seconds: float) -> float:
        return max(self.minimum_seconds, self.factor * max(duration_seconds, 0.0))

    def reason(self, duration_seconds: float) -> str:
        limit = self.for_source(duration_seconds)
        basis = (f"{self.factor:g}x the source's duration of {clock(duration_seconds)}"
                 if limit > self.minimum_seconds else "the least any job gets")
        return (f"the transcode did not finish within its time limit of {clock(limit)} ({basis}) and was "
                "stopped; the workers may be overloaded, or the file unusually slow to decode: try again "
                "later, or re-encode the source before uploading it")
