"""`vtc ls`, `vtc status VIDEO_ID`, `vtc rm VIDEO_ID` (a running job is cancelled first)."""

from __future__ import annotations

import argparse

from vtc.cli.client import UNARY_TIMEOUT_SECONDS, Session
from vtc.cli.commands.jobs import cancel_job
from vtc.cli.output import Output, playback_lines, to_dict, video_summary, videos_table
from vtc.v1 import common_pb2, metadata_pb2

MAX_PAGE_SIZE = 500  # the server's cap


def list_videos(session: Session, limit: int) -> list[common_pb2.Video]:
    """Follows page tokens until `limit` videos or the last page."""
    videos: list[common_pb2.Video] = []
    token = ""
    while len(videos) < limit:
        page = session.videos.ListVideos(
            metadata_pb2.ListVideosRequest(page_size=min(limit - len(videos), MAX_PAGE_SIZE), page_token=token),
            metadata=session.metadata(), timeout=UNARY_TIMEOUT_SECONDS)
        videos.extend(page.videos)
        token = page.next_page_token
        if not token or not page.videos:
            break
    return videos[:limit]


def run_ls(args: argparse.Namespace, out: Output) -> int:
    with Session.open(args.addr) as session:
        videos = list_videos(session, args.limit)
    if out.json_mode:
        out.json({"videos": [to_dict(v) for v in videos]})
    elif videos:
        out.show(videos_table(videos))
    else:
        out.say("no videos yet: `vtc upload FILE`")
    return 0


def run_status(args: argparse.Namespace, out: Output) -> int:
    with Session.open(args.addr) as session:
        video = session.videos.GetVideo(metadata_pb2.GetVideoRequest(video_id=args.video_id,
                                                                     url_ttl_seconds=args.ttl or 0),
                                        metadata=session.metadata(), timeout=UNARY_TIMEOUT_SECONDS)
    if out.json_mode:
        out.json(to_dict(video))
    else:
        out.show(video_summary(video))
        for line in playback_lines(video):
            out.say(line)
    return 0


_UNFINISHED = (common_pb2.JOB_STATUS_QUEUED, common_pb2.JOB_STATUS_RUNNING)


def run_rm(args: argparse.Namespace, out: Output) -> int:
    cancelled = ""
    with Session.open(args.addr) as session:
        video = session.videos.GetVideo(metadata_pb2.GetVideoRequest(video_id=args.video_id),
                                        metadata=session.metadata(), timeout=UNARY_TIMEOUT_SECONDS)
        if video.HasField("job") and video.job.status in _UNFINISHED:
            cancelled = cancel_job(session, video.job.job_id).job_id
        session.videos.DeleteVideo(metadata_pb2.DeleteVideoRequest(video_id=args.video_id),
                                   metadata=session.metadata(), timeout=UNARY_TIMEOUT_SECONDS)
    if out.json_mode:
        out.json({"video_id": args.video_id, "deleted": True, "cancelled_job_id": cancelled})
    else:
        if cancelled:
            out.say(f"cancelled job {cancelled}")
        out.say(f"deleted {args.video_id}")
    return 0
