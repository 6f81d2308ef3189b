"""`vtc retranscode VIDEO_ID`: a new job for a stored video, under a named profile or one
of your own (--profile-file). `vtc retry JOB_ID`: a new job making again what a finished
job did not make. Both print the new job; with --watch, follow it to its end."""

from __future__ import annotations

import argparse
from pathlib import Path

from vtc.cli.client import UNARY_TIMEOUT_SECONDS, Session
from vtc.cli.commands.jobs import check_outcome, follow_job, show_outcome
from vtc.cli.errors import CliError
from vtc.cli.output import Output, status_name, to_dict
from vtc.v1 import common_pb2, metadata_pb2

# The server's limit (services/process_svc/profiles/document.py); checked here to say so before sending.
MAX_PROFILE_FILE_BYTES = 64 * 1024


def read_profile_file(path: Path | None) -> str:
    """The text of a profile of one's own (YAML or JSON), or "" when none was named."""
    if path is None:
        return ""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"no such profile file: {path}") from None
    except IsADirectoryError:
        raise CliError(f"{path} is a directory, not a profile file") from None
    if len(data) > MAX_PROFILE_FILE_BYTES:
        raise CliError(f"{path} is {len(data)} bytes; a profile may have at most {MAX_PROFILE_FILE_BYTES}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text; a profile is YAML or JSON") from None


def run_retranscode(args: argparse.Namespace, out: Output) -> int:
    request = metadata_pb2.RetranscodeRequest(video_id=args.video_id, profile=args.profile or "",
                                              profile_document=read_profile_file(args.profile_file))
    with Session.open(args.addr) as session:
        job = session.videos.Retranscode(request, metadata=session.metadata(), timeout=UNARY_TIMEOUT_SECONDS)
        return _new_job(session, job, args, out, f"video {args.video_id}: new job {job.job_id} "
                                                 f"(profile {job.profile})")


def run_retry(args: argparse.Namespace, out: Output) -> int:
    with Session.open(args.addr) as session:
        job = session.videos.RetryJob(metadata_pb2.RetryJobRequest(job_id=args.job_id), metadata=session.metadata(),
                                      timeout=UNARY_TIMEOUT_SECONDS)
        return _new_job(session, job, args, out, f"job {args.job_id} retried as job {job.job_id}")


def _new_job(session: Session, job: common_pb2.Job, args: argparse.Namespace, out: Output, said: str) -> int:
    if not out.json_mode:
        out.say(f"{said}: {status_name(job.status)}")
    if not args.watch:
        if out.json_mode:
            out.json(to_dict(job))
        return 0
    job = follow_job(session, job.job_id, show_progress=out.progress)
    if out.json_mode:
        out.json(to_dict(job))
    show_outcome(job, out)
    check_outcome(job)
    return 0
