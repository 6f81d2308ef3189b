"""A video as the catalogue knows it: what was uploaded, and its latest job."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.metadata_svc.job import Job
from services.shared.errors import InvalidArgument
from services.shared.storage.keys import video_prefix
from vtc.v1 import common_pb2

DEFAULT_PROFILE = "default"


@dataclass
class Video:
    video_id: str
    tenant_id: str
    title: str
    filename: str
    size_bytes: int
    sha256: str
    source_key: str
    created_at: datetime
    probe: common_pb2.MediaProbe = field(default_factory=common_pb2.MediaProbe)
    job: Job | None = None  # the latest

    @property
    def storage_prefix(self) -> str:
        """Everything stored for this video (source, renditions) sits under this prefix."""
        return video_prefix(self.tenant_id, self.video_id)

    def to_proto(self) -> common_pb2.Video:
        video = common_pb2.Video(video_id=self.video_id, tenant_id=self.tenant_id, title=self.title,
                                 filename=self.filename, size_bytes=self.size_bytes, sha256=self.sha256,
                                 probe=self.probe, source_key=self.source_key)
        video.created_at.FromDatetime(self.created_at)
        if self.job is not None:
            video.job.CopyFrom(self.job.to_proto())
        return video


@dataclass(frozen=True)
class NewVideo:
    """An accepted upload, as the upload service registers it."""

    video_id: str
    job_id: str
    tenant_id: str
    title: str
    filename: str
    size_bytes: int
    sha256: str
    probe: common_pb2.MediaProbe
    source_key: str
    profile: str

    def validate(self) -> NewVideo:
        for name in ("video_id", "job_id", "tenant_id", "source_key"):
            if not getattr(self, name):
                raise InvalidArgument(f"{name} is required")
        if self.size_bytes < 0:
            raise InvalidArgument("size_bytes must not be negative")
        # DeleteVideo removes the video's prefix; a source stored elsewhere would outlive it.
        prefix = video_prefix(self.tenant_id, self.video_id)
        if not self.source_key.startswith(prefix):
            raise InvalidArgument(f"source_key must lie under {prefix!r} (see storage.keys.source_key)")
        return self
