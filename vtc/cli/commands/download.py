"""`vtc download VIDEO_ID --rendition NAME [-o FILE]`: stream a rendition to a
file. Bytes land in a temporary name beside the target, renamed only when
complete, so an interrupted download never leaves a truncated file that looks whole.

`vtc download VIDEO_ID --rendition NAME --url [--ttl SECONDS]`: print a
time-limited URL instead (GetDownloadUrl), for curl, a player or a browser."""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
from pathlib import Path

from vtc.cli.client import UNARY_TIMEOUT_SECONDS, Session
from vtc.cli.errors import CliError
from vtc.cli.output import Output, human_bytes, to_dict
from vtc.cli.progress import byte_progress
from vtc.v1 import common_pb2, metadata_pb2


def default_output(video_id: str, rendition: str, container: str = "") -> Path:
    """VIDEO_ID_NAME.mp4, or the rendition's own container's suffix (.m4a, .webm)."""
    return Path(f"{video_id}_{rendition}.{container or 'mp4'}")


def rendition_facts(session: Session, video_id: str, rendition: str) -> common_pb2.Rendition | None:
    """Its size (the bar's total) and container (the file's suffix); the download itself says whether the
    rendition exists."""
    video = session.videos.GetVideo(metadata_pb2.GetVideoRequest(video_id=video_id),
                                    metadata=session.metadata(), timeout=UNARY_TIMEOUT_SECONDS)
    return next((r for r in video.job.renditions if r.name == rendition), None)


def download_rendition(session: Session, video_id: str, rendition: str, target: Path, *, show_progress: bool,
                       total: int | None = None) -> tuple[int, str]:
    """Writes the rendition to target; returns (bytes, sha256 hex)."""
    stream = session.videos.DownloadRendition(
        metadata_pb2.DownloadRenditionRequest(video_id=video_id, rendition=rendition), metadata=session.metadata())
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    digest, written = hashlib.sha256(), 0
    # 0o666 like any new file: the umask decides, as it would for `curl -o`.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file, byte_progress("download", total, enabled=show_progress) as counter:
            for body in stream:
                file.write(body.data)
                digest.update(body.data)
                written += len(body.data)
                counter(len(body.data))
        os.replace(temp, target)
    except BaseException:
        stream.cancel()
        temp.unlink(missing_ok=True)
        raise
    return written, digest.hexdigest()


def run_download_url(args: argparse.Namespace, out: Output) -> int:
    with Session.open(args.addr) as session:
        reply = session.videos.GetDownloadUrl(
            metadata_pb2.GetDownloadUrlRequest(video_id=args.video_id, rendition=args.rendition,
                                               ttl_seconds=args.ttl or 0),
            metadata=session.metadata(), timeout=UNARY_TIMEOUT_SECONDS)
    if out.json_mode:
        out.json({"video_id": args.video_id, "rendition": args.rendition, **to_dict(reply)})
    else:
        # The URL alone on stdout, so `curl -o out.mp4 "$(vtc download ID --rendition 720p --url)"` works.
        out.say(reply.url)
    return 0


def run_download(args: argparse.Namespace, out: Output) -> int:
    if args.url:
        return run_download_url(args, out)
    if args.ttl is not None:
        raise CliError("--ttl goes with --url")
    if args.output and not Path(args.output).parent.is_dir():
        raise CliError(f"no such directory: {Path(args.output).parent}")
    with Session.open(args.addr) as session:
        facts = rendition_facts(session, args.video_id, args.rendition)
        target = Path(args.output) if args.output else default_output(
            args.video_id, args.rendition, facts.container if facts else "")
        size, sha256 = download_rendition(session, args.video_id, args.rendition, target,
                                          show_progress=out.progress, total=facts.size_bytes if facts else None)
    if out.json_mode:
        out.json({"video_id": args.video_id, "rendition": args.rendition, "path": str(target),
                  "size_bytes": size, "sha256": sha256})
    else:
        out.say(f"saved {args.rendition} of {args.video_id} to {target} ({human_bytes(size)})")
    return 0
