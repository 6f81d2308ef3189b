"""Settings of the auth service (env prefix VTC_, like every service). Paths
left empty follow data_dir, so one VTC_DATA_DIR moves everything."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from sqlalchemy.engine import make_url

from services.shared.db import sqlite_url
from services.shared.settings import CommonSettings


class Settings(CommonSettings):
    auth_database_url: str = Field(
        "", description="SQLAlchemy async URL of the auth DB (sqlite+aiosqlite:///... or "
                        "postgresql+asyncpg://user@host/db); empty: SQLite at <data_dir>/auth.db.")
    auth_token_ttl_seconds: int = Field(
        900, ge=1, le=86_400, description="Lifetime of the access tokens IssueToken hands out, in seconds.")
    auth_signing_key_dir: Path | None = Field(
        None, description="Directory of the Ed25519 signing keys (PEM, one per file; the newest signs); "
                          "empty: <data_dir>/keys/signing.")

    auth_signing_key_activation_seconds: float = Field(
        40.0, ge=0, description="How long a new signing key is published before it signs, so every service "
                                "has fetched it (keep above token_keys_refresh_seconds); a sole key signs at once.")
    auth_signing_key_poll_seconds: float = Field(
        2.0, gt=0, description="How often the signing key directory is checked for added or deleted keys; "
                               "a change is announced on the bus so every service refetches the key set.")

    auth_issue_token_per_key_per_minute: float = Field(
        60.0, ge=0, description="Tokens IssueToken hands one API key per minute, sustained; 0: no limit.")
    auth_issue_token_key_burst: int = Field(
        20, ge=1, description="Tokens one API key may get at once before the per-minute rate applies.")
    auth_issue_token_per_peer_per_minute: float = Field(
        600.0, ge=0, description="IssueToken attempts (good key or not) per peer address per minute; 0: no limit.")
    auth_issue_token_peer_burst: int = Field(
        100, ge=1, description="IssueToken attempts one peer address may make at once before the rate applies.")

    @property
    def resolved_database_url(self) -> str:
        return self.auth_database_url or sqlite_url(self.data_dir / "auth.db")

    @property
    def resolved_signing_key_dir(self) -> Path:
        return self.auth_signing_key_dir or self.keys_dir / "signing"

    @property
    def sqlite_file(self) -> Path | None:
        """Where the DB lives when it is a SQLite file (its folder must exist)."""
        url = make_url(self.resolved_database_url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)
