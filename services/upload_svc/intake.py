"""Accepting one upload: receive and check the bytes, probe them, store the
source, and record the video on metadata_svc, which also dispatches its
transcode (its outbox): once RegisterVideo has answered, the job is certain to
run, whatever happens to this service afterwards.

Nothing of a rejected or failed upload stays behind: the spool file is removed
whatever happens, and a stored source is deleted again if the video cannot be
recorded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import time
from collections.abc import AsyncIterable
from pathlib import Path, PurePosixPath

import grpc

from services.shared import metrics
from services.shared.ids import new_id
from services.shared.logs import log_context
from services.shared.storage import ObjectStore
from services.shared.storage.keys import source_key, video_prefix
from services.shared.tokens import ServiceToken
from services.upload_svc.peers import peer_failure, service_credentials
from services.upload_svc.probe import UnusableMedia, probe
from services.upload_svc.profiles import ProfileCatalogue
from services.upload_svc.receiver import ReceivedFile, UploadHeader, UploadLimits, UploadReceiver, spool_file
from services.upload_svc.wire import UploadMessage
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2

log = logging.getLogger("vtc.upload")

# Types mimetypes does not know everywhere; stored with the source so a download gets the right one.
_VIDEO_TYPES = {
    ".mp4": "video/mp4", ".m4v": "video/x-m4v", ".mov": "video/quicktime", ".mkv": "video/x-matroska",
    ".webm": "video/webm", ".avi": "video/x-msvideo", ".ts": "video/mp2t", ".mts": "video/mp2t",
    ".m2ts": "video/mp2t", ".mpg": "video/mpeg", ".mpeg": "video/mpeg", ".flv": "video/x-flv",
    ".3gp": "video/3gpp", ".wmv": "video/x-ms-wmv", ".ogv": "video/ogg", ".mxf": "application/mxf",
}


def source_content_type(filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    return _VIDEO_TYPES.get(suffix) or mimetypes.guess_type(filename)[0] or "application/octet-stream"


class UploadIntake:
    def __init__(self, *, spool_dir: Path, limits: UploadLimits, store: ObjectStore,
                 profiles: ProfileCatalogue, metadata: metadata_pb2_grpc.MetadataServiceStub,
                 service_token: ServiceToken, direct_io: bool = True) -> None:
        self._spool_dir = spool_dir
        self._direct_io = direct_io
        self._limits = limits
        self._store = store
        self._profiles = profiles
        self._metadata = metadata
        self._service_token = service_token

    async def accept(self, requests: AsyncIterable[UploadMessage],
                     tenant_id: str) -> upload_pb2.UploadResponse:
        receiver = UploadReceiver(requests, self._limits)
        header = await receiver.read_header()
        video_id, job_id = new_id("vid"), new_id("job")
        with log_context(video_id=video_id, job_id=job_id, tenant=tenant_id):
            # Before the bytes: an unknown profile should not cost the client a whole upload.
            if not header.profile_document:  # a customer's own was checked with the header
                await self._profiles.require(header.profile)
            with spool_file(self._spool_dir, header.filename) as path:
                started, cpu_started = time.perf_counter(), time.process_time()
                received = await receiver.receive_into(path, direct_io=self._direct_io)
                last_byte, cpu_received = time.perf_counter(), time.process_time()
                # Once per upload, never per chunk: the hot path stays as it is.
                metrics.UPLOAD_BYTES.inc(received.size_bytes)
                metrics.UPLOAD_THROUGHPUT.observe(received.size_bytes / max(last_byte - started, 1e-6))
                media = await probe(path)
                if not media.width:
                    await self._require_audio_outputs(header, media)
                probed = time.perf_counter()
                await self._store_and_register(video_id, job_id, tenant_id, header, received, media)
                stored = time.perf_counter()
            # The phases' times: the receive one is the network and the work per chunk, the rest is the
            # wait between the last byte and the reply; receive_cpu_seconds is this process's CPU time
            # (all threads, so any other upload's too) meanwhile. bench/upload.py reads them.
            log.info("upload accepted", extra={"fields": {
                "bytes": received.size_bytes, "profile": header.profile,
                "width": media.width, "height": media.height, "duration_seconds": round(media.duration_seconds, 3),
                "messages": received.messages, "receive_seconds": round(last_byte - started, 3),
                "receive_cpu_seconds": round(cpu_received - cpu_started, 3),
                "probe_seconds": round(probed - last_byte, 3),
                "store_seconds": round(stored - probed, 3)}})
        return upload_pb2.UploadResponse(video_id=video_id, job_id=job_id, size_bytes=received.size_bytes,
                                         sha256=received.sha256, probe=media)

    async def _require_audio_outputs(self, header: UploadHeader, media: common_pb2.MediaProbe) -> None:
        """A file of sound alone makes nothing under a profile of video outputs: refused with the way out."""
        types = (header.document_output_types if header.profile_document
                 else await self._profiles.output_types(header.profile))
        if "audio" not in types:
            raise UnusableMedia(f"the file holds only audio ({media.audio_codec}), and profile {header.profile!r} "
                                "makes video from pictures: upload it with a profile that makes audio outputs, such "
                                "as 'audio' (AAC and Opus renditions)")

    async def _store_and_register(self, video_id: str, job_id: str, tenant_id: str, header: UploadHeader,
                                  received: ReceivedFile, media: common_pb2.MediaProbe) -> str:
        key = source_key(tenant_id, video_id, header.filename)
        storing = asyncio.ensure_future(self._store.put_file(key, received.path, source_content_type(header.filename),
                                                             take=True))  # the spool file goes when this returns
        try:
            # Shielded so a client hanging up mid-copy cannot leave the copy running unseen;
            # the cleanup below waits for it and removes what it wrote.
            await asyncio.shield(storing)
            await self._register(video_id, job_id, tenant_id, header, received, media, key)
        except BaseException:
            with contextlib.suppress(Exception):
                await storing
            await self._store.delete_prefix(video_prefix(tenant_id, video_id))
            raise
        return key

    async def _register(self, video_id: str, job_id: str, tenant_id: str, header: UploadHeader,
                        received: ReceivedFile, media: common_pb2.MediaProbe, key: str) -> None:
        request = metadata_pb2.RegisterVideoRequest(
            video_id=video_id, job_id=job_id, tenant_id=tenant_id, title=header.title, filename=header.filename,
            size_bytes=received.size_bytes, sha256=received.sha256, probe=media, source_key=key,
            profile=header.profile, profile_document=header.profile_document)
        credentials = await service_credentials(self._service_token)
        try:
            await self._metadata.RegisterVideo(request, metadata=credentials, timeout=30)
        except grpc.aio.AioRpcError as error:
            raise peer_failure("metadata", "record the video", error) from error
