"""A video with an HLS + DASH presentation on a running stack, for the tests of
GetVideo's playback URLs (e2e, security, browser)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from services.shared.storage.keys import presentation_prefix
from tests.calls import bearer, upload_requests
from tests.presentation import make_presentation
from tests.stack import Stack
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2_grpc


@dataclass
class PresentedVideo:
    stack: Stack
    token: str
    tenant_id: str
    video_id: str

    def get_video(self, url_ttl_seconds: int = 0, token: str | None = None) -> common_pb2.Video:
        with self.stack.channel() as channel:
            return metadata_pb2_grpc.MetadataServiceStub(channel).GetVideo(
                metadata_pb2.GetVideoRequest(video_id=self.video_id, url_ttl_seconds=url_ttl_seconds),
                metadata=bearer(token or self.token), timeout=10)

    @property
    def folder(self) -> Path:
        """Where the local store keeps the presentation (the stack stores under <data_dir>/objects)."""
        return self.stack.data_dir / "objects" / presentation_prefix(self.tenant_id, self.video_id)


def upload_and_wait(stack: Stack, token: str, clip: Path, title: str,
                    profile: str = "") -> tuple[str, common_pb2.Job]:
    with stack.channel() as channel:
        reply = upload_pb2_grpc.UploadServiceStub(channel).Upload(
            upload_requests(clip, title, profile), metadata=bearer(token), timeout=60)
        updates = list(metadata_pb2_grpc.MetadataServiceStub(channel).WatchJob(
            metadata_pb2.WatchJobRequest(job_id=reply.job_id), metadata=bearer(token), timeout=300))
    return reply.video_id, updates[-1].job


def present_video(stack: Stack, token: str, clip: Path, scratch: Path) -> PresentedVideo:
    """Uploads clip, waits for its job, and makes sure the video has a presentation: the transcoder's
    (the default profile's adaptive output); for a profile without one, the test writes one it made
    with PyAV's dash muxer into the video's presentation/ folder itself."""
    video_id, job = upload_and_wait(stack, token, clip, "playback clip")
    assert job.status == common_pb2.JOB_STATUS_COMPLETED, job.error
    video = PresentedVideo(stack, token, job.tenant_id, video_id)
    if not (video.folder / "master.m3u8").exists():
        made = make_presentation(scratch / video_id)
        shutil.copytree(made, video.folder, dirs_exist_ok=True)
    return video

