"""Settings of the process service (env prefix VTC_, see docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.shared.settings import CommonSettings


class Settings(CommonSettings):
    process_work_dir: Path | None = Field(
        None, description="Scratch space for sources and outputs while a job runs; empty: <data_dir>/work.")
    process_concurrency: int = Field(
        1, ge=1, description="Jobs one worker runs at once; one x264 ladder already fills two cores.")
    process_progress_interval_seconds: float = Field(
        0.5, gt=0, description="Least time between two progress events of a job.")
    process_heartbeat_seconds: float = Field(
        30.0, gt=0, description="Longest a running job goes without an event (progress, else a heartbeat); "
                                "keep it well below VTC_METADATA_SILENT_JOB_SECONDS.")
    process_time_limit_factor: float = Field(
        10.0, gt=0, description="A job's wall-time limit per second of source (with at least the minimum below).")
    process_time_limit_min_seconds: float = Field(
        300.0, gt=0, description="Least wall-time limit of a job, whatever its source's duration.")
    process_quality_sample_every: int = Field(
        5, ge=0, description="Quality report: compare every Nth frame of each rendition with its reference; "
                             "1: every frame, 0: no report (cost in docs/transcoding-profiles.md).")

    @property
    def work_dir(self) -> Path:
        return self.process_work_dir or self.data_dir / "work"
