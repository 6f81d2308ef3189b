"""Settings of the metadata service (env prefix VTC_, like every service)."""

from __future__ import annotations

from pydantic import Field

from services.metadata_svc.paging import DEFAULT_PAGE_MAX_BYTES
from services.shared.db import sqlite_url
from services.shared.settings import CommonSettings


class Settings(CommonSettings):
    metadata_database_url: str = Field(
        "", description="SQLAlchemy async URL of the metadata DB (sqlite+aiosqlite:///... or "
                        "postgresql+asyncpg://user@host/db); empty: SQLite at <data_dir>/metadata.db.")
    metadata_silent_job_seconds: float = Field(
        300.0, gt=0, description="A RUNNING job without any event (progress is the heartbeat) for this long has lost "
                                 "its worker: it is handed to another, and FAILED after bus_max_deliveries attempts.")
    metadata_silent_job_check_seconds: float = Field(
        30.0, gt=0, description="How often metadata looks for such silent jobs.")
    metadata_orphan_source_grace_seconds: float = Field(
        3600.0, gt=0, description="Age at which a stored source no video points to (an upload cut off before "
                                  "RegisterVideo) is removed.")
    metadata_orphan_sweep_interval_seconds: float = Field(
        600.0, gt=0, description="How often metadata looks through storage for such sources.")
    metadata_dispatch_ahead: int = Field(
        0, ge=0, description="Job requests released beyond the workers' free slots (0: one goes out when a "
                             "worker is free, the rest wait in the DB and are released fairly across tenants).")
    metadata_outbox_poll_seconds: float = Field(
        1.0, gt=0, description="How often the outbox relay looks for work it was not woken for (other replicas').")
    metadata_quota_stored_bytes: int = Field(
        0, ge=0, description="Bytes a tenant may store (sources and renditions); 0: no limit.")
    metadata_quota_queued_jobs: int = Field(
        500, ge=0, description="Jobs a tenant may have queued at once; further uploads are refused; 0: no limit.")
    metadata_download_url_ttl_seconds: int = Field(
        3600, ge=1, le=7 * 24 * 3600, description="How long a GetDownloadUrl URL works when the caller does not say.")
    metadata_files_port: int = Field(
        0, ge=0, description="HTTP port (on VTC_GRPC_HOST) serving the signed playback URLs (and the local store's "
                             "download URLs); route the gateway's /play/ and /files/ to it (envoy_config --files). "
                             "0 picks one.")
    metadata_metrics_sample_seconds: float = Field(
        10.0, gt=0, description="How often metadata reads the figures behind its gauges (jobs by state, outbox "
                                "backlog, queue depths and consumers on the broker) for /metrics.")
    metadata_list_page_max_bytes: int = Field(
        DEFAULT_PAGE_MAX_BYTES, ge=64 * 1024,
        description="Largest encoded ListVideos page in bytes; a page ends there even before page_size videos.")

    @property
    def resolved_database_url(self) -> str:
        if self.metadata_database_url:
            return self.metadata_database_url
        return sqlite_url(self.data_dir / "metadata.db")
