"""The gRPC face of the metadata service: parse, keep the call to the caller's
tenant, call the domain, build the reply (who may call each RPC at all is
services/shared/access_policy.py). Errors are domain exceptions, mapped once by
ErrorMappingInterceptor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2

from services.metadata_svc.cancel import cancel_job
from services.metadata_svc.catalog import VideoCatalog, job_not_found
from services.metadata_svc.job import Job
from services.metadata_svc.job_profile import JobProfile, JobProfiles
from services.metadata_svc.paging import DEFAULT_PAGE_MAX_BYTES, PageCursor, fitting_count, page_size
from services.metadata_svc.playback import Playback
from services.metadata_svc.removal import remove_video
from services.metadata_svc.replica_fanout import ReplicaFanout
from services.metadata_svc.video import DEFAULT_PROFILE, NewVideo
from services.metadata_svc.watch import JobGone
from services.shared.bus import Publisher
from services.shared.errors import InvalidArgument, NotFound
from services.shared.ids import new_id, require_id
from services.shared.logs import bind
from services.shared.principal import current_principal
from services.shared.storage import ObjectStore
from services.shared.validation import slug
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc

DOWNLOAD_CHUNK_BYTES = 1024 * 1024
MAX_DOWNLOAD_URL_TTL_SECONDS = 7 * 24 * 3600  # B2's limit for a download authorization


def _url_ttl(asked: int, default: int, field: str) -> int:
    """How long a signed URL works: what the caller asked, or the service's default."""
    if not 0 <= asked <= MAX_DOWNLOAD_URL_TTL_SECONDS:
        raise InvalidArgument(f"{field} must be between 1 and {MAX_DOWNLOAD_URL_TTL_SECONDS} (7 days), or 0 "
                              f"for the default, not {asked}")
    return asked or default


def _own_tenant() -> str:
    """The tenant every video call acts for: the caller's own."""
    return current_principal().tenant_id


class MetadataServicer(metadata_pb2_grpc.MetadataServiceServicer):
    def __init__(self, catalog: VideoCatalog, store: ObjectStore, fanout: ReplicaFanout, bus: Publisher, *,
                 on_registered: Callable[[], None] = lambda: None, download_url_ttl_seconds: int = 3600,
                 page_max_bytes: int = DEFAULT_PAGE_MAX_BYTES, playback: Playback | None = None,
                 profiles: JobProfiles | None = None) -> None:
        self._catalog = catalog
        self._playback = playback
        self._profiles = profiles or JobProfiles()
        self._download_url_ttl = download_url_ttl_seconds
        self._store = store
        self._fanout = fanout
        self._hub = fanout.hub
        self._bus = bus
        self._on_registered = on_registered  # the outbox holds a new job request: relay it now
        self._page_max_bytes = page_max_bytes

    async def RegisterVideo(self, request: metadata_pb2.RegisterVideoRequest,
                            context: grpc.aio.ServicerContext) -> metadata_pb2.RegisterVideoResponse:
        profile = (self._profiles.resolve(request.profile, request.profile_document) if request.profile_document
                   else JobProfile(request.profile or DEFAULT_PROFILE))
        new = NewVideo(video_id=request.video_id, job_id=request.job_id,
                       tenant_id=current_principal().tenant_acted_for(request.tenant_id), title=request.title,
                       filename=request.filename, size_bytes=request.size_bytes, sha256=request.sha256,
                       probe=request.probe, source_key=request.source_key,
                       profile=profile.name, profile_document=profile.document).validate()
        bind(video_id=new.video_id, job_id=new.job_id, tenant=new.tenant_id)
        video, job = await self._catalog.register(new, datetime.now(UTC))
        self._on_registered()
        return metadata_pb2.RegisterVideoResponse(video=video.to_proto(), job=job.to_proto())

    async def GetVideo(self, request: metadata_pb2.GetVideoRequest,
                       context: grpc.aio.ServicerContext) -> common_pb2.Video:
        tenant = _own_tenant()
        ttl = _url_ttl(request.url_ttl_seconds, self._download_url_ttl, "url_ttl_seconds")
        video = await self._catalog.get_video(tenant, require_id(request.video_id, "vid", "video_id"))
        reply = video.to_proto()
        if self._playback is not None and (urls := await self._playback.urls(video, ttl)):
            reply.hls_url, reply.dash_url = urls.hls_url, urls.dash_url
            reply.playback_expires_at.FromDatetime(urls.expires_at)
        return reply

    async def ListVideos(self, request: metadata_pb2.ListVideosRequest,
                         context: grpc.aio.ServicerContext) -> metadata_pb2.ListVideosResponse:
        tenant = _own_tenant()
        page = await self._catalog.list_videos(tenant, page_size(request.page_size),
                                               PageCursor.from_token(request.page_token))
        videos = [v.to_proto() for v in page.videos]
        page = page.first(fitting_count((v.ByteSize() for v in videos), self._page_max_bytes))
        return metadata_pb2.ListVideosResponse(
            videos=videos[:len(page.videos)],
            next_page_token=page.next_cursor.token() if page.next_cursor else "")

    async def DeleteVideo(self, request: metadata_pb2.DeleteVideoRequest,
                          context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        tenant = _own_tenant()
        video_id = require_id(request.video_id, "vid", "video_id")
        bind(video_id=video_id)
        await remove_video(self._catalog, self._store, self._fanout, self._bus, tenant, video_id)
        return empty_pb2.Empty()

    async def GetJob(self, request: metadata_pb2.GetJobRequest,
                     context: grpc.aio.ServicerContext) -> common_pb2.Job:
        tenant = _own_tenant()
        job = await self._catalog.get_job(tenant, require_id(request.job_id, "job", "job_id"))
        return job.to_proto()

    async def CancelJob(self, request: metadata_pb2.CancelJobRequest,
                        context: grpc.aio.ServicerContext) -> common_pb2.Job:
        tenant = _own_tenant()
        job_id = require_id(request.job_id, "job", "job_id")
        bind(job_id=job_id)
        job = await cancel_job(self._catalog, self._bus, self._fanout, tenant, job_id)
        return job.to_proto()

    async def WatchJob(self, request: metadata_pb2.WatchJobRequest,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[metadata_pb2.WatchJobResponse]:
        tenant = _own_tenant()
        job_id = require_id(request.job_id, "job", "job_id")
        bind(job_id=job_id)
        with self._hub.subscribe(job_id) as subscription:
            snapshot = await self._catalog.get_job(tenant, job_id)
            yield metadata_pb2.WatchJobResponse(job=snapshot.to_proto())

            async def reread() -> Job:
                try:
                    return await self._catalog.get_job(tenant, job_id)
                except NotFound:
                    raise JobGone(job_id) from None

            try:
                async for update in subscription.after(snapshot, reread):
                    yield metadata_pb2.WatchJobResponse(job=update.job, event=update.event)
            except JobGone:
                raise job_not_found(job_id) from None

    async def Retranscode(self, request: metadata_pb2.RetranscodeRequest,
                          context: grpc.aio.ServicerContext) -> common_pb2.Job:
        tenant = _own_tenant()
        video_id = require_id(request.video_id, "vid", "video_id")
        profile = self._profiles.resolve(request.profile, request.profile_document)
        job_id = new_id("job")
        bind(video_id=video_id, job_id=job_id)
        job = await self._catalog.retranscode(tenant, video_id, job_id, profile.name, profile.document,
                                              datetime.now(UTC))
        self._on_registered()
        return job.to_proto()

    async def RetryJob(self, request: metadata_pb2.RetryJobRequest,
                       context: grpc.aio.ServicerContext) -> common_pb2.Job:
        tenant = _own_tenant()
        retried = require_id(request.job_id, "job", "job_id")
        job_id = new_id("job")
        bind(job_id=job_id)
        job = await self._catalog.retry_job(tenant, retried, job_id, datetime.now(UTC))
        self._on_registered()
        return job.to_proto()

    async def DownloadRendition(self, request: metadata_pb2.DownloadRenditionRequest,
                                context: grpc.aio.ServicerContext) -> AsyncIterator[httpbody_pb2.HttpBody]:
        tenant = _own_tenant()
        video_id = require_id(request.video_id, "vid", "video_id")
        bind(video_id=video_id)
        rendition = await self._catalog.find_rendition(tenant, video_id, slug(request.rendition, "rendition"))
        async for chunk in self._store.read_chunks(rendition.storage_key, DOWNLOAD_CHUNK_BYTES):
            yield httpbody_pb2.HttpBody(content_type=rendition.content_type, data=chunk)

    async def GetDownloadUrl(self, request: metadata_pb2.GetDownloadUrlRequest,
                             context: grpc.aio.ServicerContext) -> metadata_pb2.GetDownloadUrlResponse:
        tenant = _own_tenant()
        video_id = require_id(request.video_id, "vid", "video_id")
        bind(video_id=video_id)
        ttl = _url_ttl(request.ttl_seconds, self._download_url_ttl, "ttl_seconds")
        rendition = await self._catalog.find_rendition(tenant, video_id, slug(request.rendition, "rendition"))
        shared = await self._store.download_url(rendition.storage_key, ttl)
        reply = metadata_pb2.GetDownloadUrlResponse(url=shared.url, size_bytes=rendition.size_bytes,
                                                    content_type=rendition.content_type)
        reply.expires_at.FromDatetime(shared.expires_at)
        return reply
