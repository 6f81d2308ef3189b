"""Upload service settings (environment variables prefixed VTC_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.shared.settings import CommonSettings

MIB = 1024 * 1024
GIB = 1024 * MIB


class Settings(CommonSettings):
    upload_tmp_dir: Path | None = Field(
        None, description="Where uploads are spooled while they arrive and are checked; empty: <data_dir>/tmp/uploads.")
    upload_max_bytes: int = Field(20 * GIB, gt=0, description="Largest source file accepted, in bytes.")
    upload_chunk_max_bytes: int = Field(MIB, gt=0, description="Largest chunk one upload message may carry, in bytes.")
    upload_idle_timeout_seconds: float = Field(
        60.0, gt=0, description="An upload that sends nothing for this long ends with DEADLINE_EXCEEDED.")
    upload_max_concurrent_per_tenant: int = Field(
        16, gt=0, description="Uploads one tenant may have in progress at once on one upload server; "
        "more are refused with RESOURCE_EXHAUSTED.")
    upload_direct_io: bool = Field(
        True, description="Write uploads to the spool with O_DIRECT, past the page cache (less CPU per byte, and a "
        "large upload does not evict the cache); false: through the page cache, which absorbs bursts on a disk "
        "slower than the network. File systems without O_DIRECT get the page cache either way.")
    upload_profiles_cache_seconds: float = Field(
        30.0, ge=0, description="How long the profile list fetched from the process service is reused.")

    @property
    def upload_spool_dir(self) -> Path:
        return self.upload_tmp_dir or self.data_dir / "tmp" / "uploads"
