"""Tables of the metadata DB. Portable types only, so the same models run on
SQLite (embedded) and PostgreSQL (scale-out); the schema itself is built by the
Alembic migrations in migrations/, which must match these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.shared.db import UtcDateTime
from services.shared.tracing import current_traceparent


class Base(DeclarativeBase):
    pass


class VideoRow(Base):
    __tablename__ = "videos"
    __table_args__ = (Index("ix_videos_tenant_created", "tenant_id", "created_at", "video_id"),)

    video_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    filename: Mapped[str] = mapped_column(Text, default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    # The upload's MediaProbe in protobuf's JSON form: readable in SQL, and new probe fields need no migration.
    probe: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    jobs: Mapped[list[JobRow]] = relationship(
        back_populates="video", lazy="selectin", order_by="JobRow.created_at",
        cascade="all, delete-orphan", passive_deletes=True)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_tenant", "tenant_id", "job_id"),)

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.video_id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), index=True)  # JobStatus name
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_percent: Mapped[float] = mapped_column(Float, default=0.0)
    progress_frames: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total_frames: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_fps: Mapped[float] = mapped_column(Float, default=0.0)
    progress_speed: Mapped[float] = mapped_column(Float, default=0.0)
    progress_eta_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    progress_phase: Mapped[int] = mapped_column(Integer, default=0)  # vtc.v1.JobPhase
    # Per-title jobs: the Compression report (analysis, every rung's decision, cost) as proto JSON.
    compression: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    # When the relay published this attempt's job.requested, and on which bus session
    # (Bus.session): a dispatch on a session that is gone is redone (dispatch.py).
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    dispatch_session: Mapped[str] = mapped_column(String(128), default="")
    # When metadata last applied an event of the job (progress is the heartbeat): silent_jobs.py.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # What made the job (job.JobTrigger); a later job keeps its outputs in a folder of its own.
    trigger: Mapped[str] = mapped_column(String(16), default="upload")
    retry_of: Mapped[str] = mapped_column(String(64), default="")  # the job a retry retries
    only_outputs: Mapped[list[str]] = mapped_column(JSON, default=list)  # a retry's outputs; empty: all
    profile_document: Mapped[str] = mapped_column(Text, default="")  # a customer's own profile, as sent
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    video: Mapped[VideoRow] = relationship(back_populates="jobs", lazy="raise")
    renditions: Mapped[list[RenditionRow]] = relationship(
        lazy="selectin", order_by="RenditionRow.position", cascade="all, delete-orphan", passive_deletes=True)
    outputs: Mapped[list[OutputRow]] = relationship(
        lazy="selectin", order_by="OutputRow.position", cascade="all, delete-orphan", passive_deletes=True)


class RenditionRow(Base):
    __tablename__ = "renditions"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)  # order in the completion event
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bitrate: Mapped[int] = mapped_column(BigInteger)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    duration_seconds: Mapped[float] = mapped_column(Float)
    storage_key: Mapped[str] = mapped_column(Text)
    container: Mapped[str] = mapped_column(String(32))
    video_codec: Mapped[str] = mapped_column(String(32))
    audio_codec: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(64))
    # The quality report (job.Quality); NULL when it was not measured.
    quality_psnr_db: Mapped[float | None] = mapped_column(Float, nullable=True)
    quality_ssim: Mapped[float | None] = mapped_column(Float, nullable=True)
    quality_xpsnr_db: Mapped[float | None] = mapped_column(Float, nullable=True)
    quality_frames: Mapped[int | None] = mapped_column(Integer, nullable=True)


class OutputRow(Base):
    """One output of a job (job.Output); a video or audio output's rendition facts are its row in
    `renditions` of the same name."""

    __tablename__ = "outputs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)  # the profile's order
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # OutputStatus name
    error: Mapped[str] = mapped_column(Text, default="")
    # [{path, storage_key, content_type, size_bytes}], main file first
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    has_rendition: Mapped[bool] = mapped_column(Boolean, default=False)


class OutboxRow(Base):
    """A message metadata has committed to publish: written in the transaction
    that decided it, deleted once the broker confirmed it (relay.py). Rows with
    a job_id are job requests: the relay releases those a few at a time, fairly
    across tenants (dispatch.py)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_job_requests", "job_id", "tenant_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    routing_key: Mapped[str] = mapped_column(String(255))
    message_type: Mapped[str] = mapped_column(String(255))  # full protobuf name
    message_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    tenant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The W3C traceparent of the work that wrote the row (an upload's RegisterVideo): the relay's
    # publish joins that trace, however much later it happens (services/shared/tracing.py).
    traceparent: Mapped[str | None] = mapped_column(String(64), nullable=True, default=current_traceparent)
