"""The credentials file `vtc login` writes and every other command reads: the
API key (so expired tokens renew without asking), the current token, its expiry
and the server it came from. Readable only by the user (mode 0600)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vtc.cli.errors import CliError, NotLoggedIn

FILE_NAME = "credentials.json"


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """VTC_CONFIG_DIR, else $XDG_CONFIG_HOME/vtc, else ~/.config/vtc."""
    env = os.environ if env is None else env
    if env.get("VTC_CONFIG_DIR"):
        return Path(env["VTC_CONFIG_DIR"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "vtc"


@dataclass(frozen=True)
class Credentials:
    addr: str
    api_key: str
    access_token: str
    expires_at: datetime  # aware, UTC
    tenant_id: str = ""
    scopes: tuple[str, ...] = field(default_factory=tuple)

    def expires_within(self, margin: timedelta, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) + margin >= self.expires_at

    def with_token(self, access_token: str, expires_at: datetime) -> Credentials:
        return replace(self, access_token=access_token, expires_at=expires_at)

    def to_json(self) -> dict:
        data = asdict(self)
        data["expires_at"] = self.expires_at.astimezone(UTC).isoformat()
        data["scopes"] = list(self.scopes)
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> Credentials:
        expires_at = datetime.fromisoformat(str(data["expires_at"]))
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return cls(addr=str(data["addr"]), api_key=str(data["api_key"]), access_token=str(data["access_token"]),
                   expires_at=expires_at, tenant_id=str(data.get("tenant_id", "")),
                   scopes=tuple(str(s) for s in data.get("scopes", ())))


class CredentialStore:
    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or config_dir()) / FILE_NAME

    def load(self) -> Credentials:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            raise NotLoggedIn() from None
        try:
            return Credentials.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as error:
            raise CliError(f"credentials file {self.path} is unreadable ({error}): run `vtc login`") from None

    def save(self, credentials: Credentials) -> None:
        """Writes atomically: a reader sees the old file or the new one, never half of one."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600, so the key is never readable by others, not even briefly.
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".credentials-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(credentials.to_json(), file, indent=2)
                file.write("\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
