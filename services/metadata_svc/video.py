"""A video as the catalogue knows it: what was uploaded, and its latest job."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.metadata_svc.job import Job, JobStatus
from services.shared.errors import InvalidArgument
from services.shared.ids import require_id, require_tenant_id
from services.shared.storage import validate_key
from services.shared.storage.keys import video_prefix
from services.shared.validation import MAX_TITLE_CHARS, bounded_message, file_name, free_text, sha256_hex, slug
from vtc.v1 import common_pb2

DEFAULT_PROFILE = "default"
# What upload's probe says of a source is a few hundred bytes; a cap keeps every listing bounded.
MAX_PROBE_BYTES = 64 * 1024


# A video's summary status is its latest job's outcome.
_VIDEO_STATUS = {
    JobStatus.QUEUED: common_pb2.VIDEO_STATUS_PROCESSING,
    JobStatus.RUNNING: common_pb2.VIDEO_STATUS_PROCESSING,
    JobStatus.COMPLETED: common_pb2.VIDEO_STATUS_READY,
    JobStatus.FAILED: common_pb2.VIDEO_STATUS_FAILED,
    JobStatus.CANCELLED: common_pb2.VIDEO_STATUS_CANCELLED,
}


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
            video.status = _VIDEO_STATUS[self.job.status]
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
    profile_document: str = ""  # a customer's own profile (checked by the servicer); `profile` is its name

    def validate(self) -> NewVideo:
        """Checks every field as if a client had sent it: the caller is a service, but
        ids reach storage paths and text reaches every listing."""
        require_id(self.video_id, "vid", "video_id")
        require_id(self.job_id, "job", "job_id")
        require_tenant_id(self.tenant_id)
        if self.size_bytes < 0:
            raise InvalidArgument("size_bytes must not be negative")
        if self.filename and file_name(self.filename) != self.filename:
            raise InvalidArgument("filename must be a base name without surrounding spaces")
        if free_text(self.title, "title", max_chars=MAX_TITLE_CHARS) != self.title:
            raise InvalidArgument("title must not have surrounding spaces")
        if sha256_hex(self.sha256, "sha256") != self.sha256:
            raise InvalidArgument("sha256 must be lower-case hex")
        slug(self.profile, "profile")
        bounded_message(self.probe, "probe", max_bytes=MAX_PROBE_BYTES)
        if not self.source_key:
            raise InvalidArgument("source_key is required")
        validate_key(self.source_key)
        # DeleteVideo removes the video's prefix; a source stored elsewhere would outlive it.
        prefix = video_prefix(self.tenant_id, self.video_id)
        if not self.source_key.startswith(prefix):
            raise InvalidArgument(f"source_key must lie under {prefix!r} (see storage.keys.source_key)")
        return self
