"""The credentials file: private to the user, atomic, and clear about what to do when absent."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vtc.cli.credentials import Credentials, CredentialStore, config_dir
from vtc.cli.errors import CliError, NotLoggedIn


def _credentials(expires_in: timedelta = timedelta(minutes=15)) -> Credentials:
    return Credentials(addr="127.0.0.1:50051", api_key="vtc_secret", access_token="jwt.token.here",
                       expires_at=datetime.now(UTC).replace(microsecond=0) + expires_in, tenant_id="ten_a",
                       scopes=("videos:read", "videos:write"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_saved_file_is_readable_only_by_the_user(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "vtc")
    store.save(_credentials())
    assert _mode(store.path) == 0o600
    assert _mode(store.path.parent) == 0o700
    assert [p.name for p in store.path.parent.iterdir()] == ["credentials.json"]  # no temp file left


def test_overwriting_a_too_open_file_makes_it_private(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.path.write_text("{}")
    store.path.chmod(0o644)
    store.save(_credentials())
    assert _mode(store.path) == 0o600


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    saved = _credentials()
    store.save(saved)
    assert store.load() == saved
    on_disk = json.loads(store.path.read_text())
    assert on_disk["api_key"] == "vtc_secret" and on_disk["expires_at"].endswith("+00:00")


def test_missing_file_says_to_log_in(tmp_path: Path) -> None:
    with pytest.raises(NotLoggedIn, match=r"not logged in: run `vtc login`"):
        CredentialStore(tmp_path).load()


def test_corrupt_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.path.write_text("{not json")
    with pytest.raises(CliError, match=r"credentials\.json is unreadable .*run `vtc login`"):
        store.load()


def test_expiry_check_uses_the_margin() -> None:
    now = datetime.now(UTC)
    credentials = _credentials(expires_in=timedelta(seconds=20))
    assert credentials.expires_within(timedelta(seconds=30), now)
    assert not credentials.expires_within(timedelta(seconds=5), now)
    assert _credentials(expires_in=timedelta(seconds=-1)).expires_within(timedelta(0))


def test_config_dir_prefers_vtc_config_dir_then_xdg(tmp_path: Path) -> None:
    assert config_dir({"VTC_CONFIG_DIR": str(tmp_path)}) == tmp_path
    assert config_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "vtc"
    assert config_dir({}) == Path.home() / ".config" / "vtc"
