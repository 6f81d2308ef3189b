"""Per-tenant quotas, checked in the transaction that registers an upload:
bytes stored (sources and renditions) and jobs queued. A refusal is
RESOURCE_EXHAUSTED and names the limit. Concurrent uploads of one tenant
(the upload service's own limit) are checked there, before any byte arrives."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.metadata_svc.job import JobStatus
from services.metadata_svc.models import JobRow, RenditionRow, VideoRow
from services.shared.errors import ResourceExhausted


@dataclass(frozen=True)
class TenantQuota:
    max_stored_bytes: int = 0  # 0: no limit
    max_queued_jobs: int = 0  # 0: no limit

    async def check_new_upload(self, session: AsyncSession, tenant_id: str, size_bytes: int) -> None:
        """Raises ResourceExhausted when one more upload of size_bytes would exceed a quota."""
        if self.max_queued_jobs:
            queued = await queued_jobs(session, tenant_id)
            if queued >= self.max_queued_jobs:
                raise ResourceExhausted(
                    f"tenant {tenant_id} has {queued} jobs queued, the most it may have is {self.max_queued_jobs}: "
                    "upload again once some have started")
        if self.max_stored_bytes:
            stored = await stored_bytes(session, tenant_id)
            if stored + size_bytes > self.max_stored_bytes:
                raise ResourceExhausted(
                    f"tenant {tenant_id} stores {stored} bytes and may store at most {self.max_stored_bytes}; "
                    f"this upload ({size_bytes} bytes) would exceed that: delete videos it no longer needs")

    async def check_new_job(self, session: AsyncSession, tenant_id: str) -> None:
        """Raises ResourceExhausted when one more job of a stored video (a re-transcode, a retry) would
        exceed a quota: its outputs add to what the tenant stores."""
        if self.max_queued_jobs:
            queued = await queued_jobs(session, tenant_id)
            if queued >= self.max_queued_jobs:
                raise ResourceExhausted(
                    f"tenant {tenant_id} has {queued} jobs queued, the most it may have is {self.max_queued_jobs}: "
                    "try again once some have started")
        if self.max_stored_bytes:
            stored = await stored_bytes(session, tenant_id)
            if stored >= self.max_stored_bytes:
                raise ResourceExhausted(
                    f"tenant {tenant_id} stores {stored} bytes, its limit is {self.max_stored_bytes}: a new job's "
                    "outputs would exceed it; delete videos it no longer needs")


async def queued_jobs(session: AsyncSession, tenant_id: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(JobRow).where(
        JobRow.tenant_id == tenant_id, JobRow.status == JobStatus.QUEUED.name)) or 0)


async def stored_bytes(session: AsyncSession, tenant_id: str) -> int:
    sources = await session.scalar(select(func.coalesce(func.sum(VideoRow.size_bytes), 0))
                                   .where(VideoRow.tenant_id == tenant_id))
    renditions = await session.scalar(select(func.coalesce(func.sum(RenditionRow.size_bytes), 0))
                                      .join(JobRow, RenditionRow.job_id == JobRow.job_id)
                                      .where(JobRow.tenant_id == tenant_id))
    return int(sources or 0) + int(renditions or 0)
