"""`vtc watch JOB_ID` (and `vtc upload --watch`): live transcoding progress
until the job ends, then its renditions or why it failed; the watch survives
server restarts (see watch_stream.py). `vtc cancel JOB_ID`: stop a queued or
running job."""

from __future__ import annotations

import argparse

from vtc.cli.client import UNARY_TIMEOUT_SECONDS, Session
from vtc.cli.errors import CliError
from vtc.cli.output import Output, outputs_table, renditions_table, status_name, to_dict
from vtc.cli.progress import transcode_progress
from vtc.cli.watch_stream import ReconnectingWatch, WatchLost
from vtc.v1 import common_pb2, metadata_pb2


class JobFailed(CliError):
    def __init__(self, job: common_pb2.Job) -> None:
        reason = job.error or "no reason given"
        super().__init__(f"job {job.job_id} {status_name(job.status)}: {reason}")
        self.job = job


def follow_job(session: Session, job_id: str, *, show_progress: bool) -> common_pb2.Job:
    """Streams the job's state until it is terminal, reconnecting after a
    server restart or a lost connection; returns the last state."""

    def open_stream(request: metadata_pb2.WatchJobRequest):  # type: ignore[no-untyped-def]
        return session.videos.WatchJob(request, metadata=session.metadata())

    job: common_pb2.Job | None = None
    with transcode_progress(enabled=show_progress) as bar:
        def on_reconnect(problem: str) -> None:
            bar.say(f"vtc: lost the watch of job {job_id} ({problem}); reconnecting")

        try:
            for job in ReconnectingWatch(job_id, open_stream, on_reconnect):
                bar.show(job)
        except WatchLost as lost:
            raise CliError(str(lost)) from None
    assert job is not None  # ReconnectingWatch yields until a terminal state or raises
    return job


def show_outcome(job: common_pb2.Job, out: Output) -> None:
    """Renditions for people; the JSON is the caller's (it may wrap the job)."""
    if job.status == common_pb2.JOB_STATUS_COMPLETED and not out.json_mode:
        count = len(job.renditions)
        out.say(f"job {job.job_id} completed: {count} rendition{'' if count == 1 else 's'}")
        out.show(renditions_table(job.renditions))
        if any(o.type != "video" or o.status == common_pb2.OUTPUT_STATUS_FAILED for o in job.outputs):
            out.show(outputs_table(job.outputs))


def check_outcome(job: common_pb2.Job) -> None:
    if job.status != common_pb2.JOB_STATUS_COMPLETED:
        raise JobFailed(job)


def run_watch(args: argparse.Namespace, out: Output) -> int:
    with Session.open(args.addr) as session:
        job = follow_job(session, args.job_id, show_progress=out.progress)
    if out.json_mode:
        out.json(to_dict(job))
    show_outcome(job, out)
    check_outcome(job)
    return 0


def cancel_job(session: Session, job_id: str) -> common_pb2.Job:
    return session.videos.CancelJob(metadata_pb2.CancelJobRequest(job_id=job_id), metadata=session.metadata(),
                                    timeout=UNARY_TIMEOUT_SECONDS)


def run_cancel(args: argparse.Namespace, out: Output) -> int:
    with Session.open(args.addr) as session:
        job = cancel_job(session, args.job_id)
    if out.json_mode:
        out.json(to_dict(job))
    else:
        out.say(f"job {job.job_id} {status_name(job.status)}")
    return 0
