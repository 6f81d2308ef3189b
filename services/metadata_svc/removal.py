"""Deleting a video: its running jobs are cancelled, then its stored objects,
its rows and its watchers go."""

from __future__ import annotations

import logging

from services.metadata_svc.cancel import tell_workers
from services.metadata_svc.catalog import VideoCatalog
from services.metadata_svc.replica_fanout import ReplicaFanout
from services.shared.bus import Publisher
from services.shared.storage import ObjectStore

log = logging.getLogger("vtc.metadata.removal")


async def remove_video(catalog: VideoCatalog, store: ObjectStore, watchers: ReplicaFanout, bus: Publisher,
                       tenant_id: str, video_id: str) -> None:
    video = await catalog.get_video(tenant_id, video_id)
    # The encoder stops instead of writing renditions of a video that is gone; its watchers get NOT_FOUND.
    for job in await catalog.unfinished_jobs(tenant_id, video_id):
        await tell_workers(bus, job)
    # Objects first: if deleting them fails the rows remain, so the caller can
    # retry; the other order would leave objects no record points to.
    deleted = await store.delete_prefix(video.storage_prefix)
    job_ids = await catalog.delete_video(tenant_id, video_id)
    await watchers.end(job_ids)
    log.info("deleted video with %d jobs and %d stored objects", len(job_ids), deleted)
