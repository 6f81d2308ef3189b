"""Why a job failed, in words a person can act on.

JobFailure is for failures of the job itself (a source that cannot be
decoded, a profile that does not exist): the worker publishes a failed event
with its reason and acks. Anything else escaping a job is a bug and is
reported as such, without redelivery; storage or bus outages are retried.
"""

from __future__ import annotations


class JobFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SourceUnreadable(JobFailure):
    """The source cannot be opened or decoded."""


class TranscodeCancelled(Exception):
    """The executor stopped because the worker is shutting down; the job is redelivered."""


def clock(seconds: float) -> str:
    """00:01.2 style media time, for reasons a person reads."""
    seconds = max(seconds, 0.0)
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{minutes:02d}:{rest:04.1f}"
    return f"{hours}:{text}" if hours else text
