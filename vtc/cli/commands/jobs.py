"""`vtc watch JOB_ID` (and `vtc upload --watch`): live transcoding progress
until the job ends, then its renditions or why it failed. `vtc cancel JOB_ID`:
stop a queued or running job."""

from __future__ import annotations

import argparse

from vtc.cli.client import UNARY_TIMEOUT_SECONDS, Session
from vtc.cli.errors import CliError
from vtc.cli.output import Output, renditions_table, status_name, to_dict
from vtc.cli.progress import transcode_progress
from vtc.v1 import common_pb2, metadata_pb2

_TERMINAL = {common_pb2.JOB_STATUS_COMPLETED, common_pb2.JOB_STATUS_FAILED, common_pb2.JOB_STATUS_CANCELLED}


class JobFailed(CliError):
    def __init__(self, job: common_pb2.Job) -> None:
        reason = job.error or "no reason given"
        super().__init__(f"job {job.job_id} {status_name(job.status)}: {reason}")
        self.job = job


def follow_job(session: Session, job_id: str, *, show_progress: bool) -> common_pb2.Job:
    """Streams the job's state until it is terminal; returns the last state."""
    stream = session.videos.WatchJob(metadata_pb2.WatchJobRequest(job_id=job_id), metadata=session.metadata())
    job: common_pb2.Job | None = None
    try:
        with transcode_progress(enabled=show_progress) as bar:
            for update in stream:
                job = update.job
                bar.show(job)
                if job.status in _TERMINAL:
                    break
    finally:
        stream.cancel()  # no-op once the server has ended the stream
    if job is None or job.status not in _TERMINAL:
        state = status_name(job.status) if job else "unknown"
        raise CliError(f"the server ended the watch of job {job_id} before it finished (status {state}); "
                       f"run `vtc watch {job_id}` again")
    return job


def show_outcome(job: common_pb2.Job, out: Output) -> None:
    """Renditions for people; the JSON is the caller's (it may wrap the job)."""
    if job.status == common_pb2.JOB_STATUS_COMPLETED and not out.json_mode:
        count = len(job.renditions)
        out.say(f"job {job.job_id} completed: {count} rendition{'' if count == 1 else 's'}")
        out.show(renditions_table(job.renditions))


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
