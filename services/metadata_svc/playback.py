"""Playback URLs: GetVideo's hls_url and dash_url, signed folder URLs of the
video's presentation (services/shared/storage/signed_urls.py) that the gateway
serves at /play/ to stock players."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from services.metadata_svc.job import Job, JobStatus, OutputStatus
from services.metadata_svc.video import Video
from services.shared.errors import NotFound, VtcError
from services.shared.storage import ObjectStore
from services.shared.storage.keys import presentation_prefix, video_prefix
from services.shared.storage.signed_urls import UrlSigner

log = logging.getLogger("vtc.metadata.playback")

HLS_ENTRY = "master.m3u8"
DASH_ENTRY = "manifest.mpd"
ADAPTIVE_OUTPUT = "adaptive"  # the output type (profiles) whose files are a presentation


@dataclass(frozen=True)
class PlaybackUrls:
    hls_url: str  # "" when the presentation has no HLS master playlist
    dash_url: str  # "" when it has no MPD
    expires_at: datetime


class Playback:
    """Signs a video's presentation for playback, when it has one. `signer` is None
    where no file server serves signed URLs (then videos get no playback URLs)."""

    def __init__(self, store: ObjectStore, signer: UrlSigner | None) -> None:
        self._store = store
        self._signer = signer

    async def urls(self, video: Video, ttl_seconds: int) -> PlaybackUrls | None:
        """The URLs of the newest presentation: the latest job's when it completed in a folder of
        its own (a re-transcode, a retry), else the upload's job's, while it is there. None when
        there is none, or when they cannot be made now: the video is still worth returning."""
        if self._signer is None:
            return None
        try:
            return await self._newest(video, ttl_seconds, self._signer)
        except VtcError as error:  # storage unreachable, no signing secret: logged, GetVideo still answers
            log.warning("no playback URLs for video %s: %s", video.video_id, error.message)
            return None

    async def _newest(self, video: Video, ttl_seconds: int, signer: UrlSigner) -> PlaybackUrls | None:
        latest = video.job
        if latest is not None and latest.status is JobStatus.COMPLETED and (recorded := _recorded(video, latest)):
            return _signed(signer, *recorded, ttl_seconds)  # from the job's record: no storage call
        # Not recorded (a job before outputs were recorded), or the latest job has not completed:
        # what storage holds, in the job's own folder first, then the upload's.
        own_folder = latest is not None and latest.status is JobStatus.COMPLETED and latest.outputs_in_job_folder
        for job_id in ((latest.job_id, "") if own_folder and latest else ("",)):
            prefix = presentation_prefix(video.tenant_id, video.video_id, job_id=job_id)
            present = [entry for entry in (HLS_ENTRY, DASH_ENTRY) if await self._exists(prefix + entry)]
            if present:
                return _signed(signer, prefix, present, ttl_seconds)
        return None

    async def _exists(self, key: str) -> bool:
        try:
            await self._store.stat(key)
        except NotFound:
            return False
        return True


def _recorded(video: Video, job: Job) -> tuple[str, list[str]] | None:
    """(folder, entries) of the job's completed adaptive output, from the files the worker reported:
    the folder holding its master playlist or MPD (the shallowest), inside this video's own prefix."""
    for output in job.outputs:
        if output.type != ADAPTIVE_OUTPUT or output.status is not OutputStatus.COMPLETED:
            continue
        keys = {f.storage_key for f in output.files}
        tops = sorted((k for k in keys if k.endswith(("/" + HLS_ENTRY, "/" + DASH_ENTRY))), key=len)
        folder = tops[0].rsplit("/", 1)[0] + "/" if tops else ""
        if folder.startswith(video_prefix(video.tenant_id, video.video_id)):
            return folder, [entry for entry in (HLS_ENTRY, DASH_ENTRY) if folder + entry in keys]
    return None


def _signed(signer: UrlSigner, prefix: str, present: list[str], ttl_seconds: int) -> PlaybackUrls:
    expires = int(time.time()) + ttl_seconds
    hls, dash = (signer.folder_url(prefix, entry, expires) if entry in present else ""
                 for entry in (HLS_ENTRY, DASH_ENTRY))
    return PlaybackUrls(hls, dash, datetime.fromtimestamp(expires, UTC))
