"""Where `vtc login` finds the API key: flags, then VTC_API_KEY, then the
bootstrap admin key `make run` writes under the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from vtc.cli.commands.login import resolve_api_key
from vtc.cli.errors import CliError


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("VTC_API_KEY", raising=False)
    monkeypatch.setenv("VTC_DATA_DIR", str(tmp_path / "var"))
    (tmp_path / "var" / "keys").mkdir(parents=True)
    (tmp_path / "var" / "keys" / "admin.key").write_text("vtc_admin_key\n")
    return tmp_path / "var"


def test_the_bootstrap_admin_key_is_the_default(data_dir: Path) -> None:
    assert resolve_api_key(None, None) == "vtc_admin_key"


def test_vtc_api_key_beats_the_default_file(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VTC_API_KEY", "vtc_from_env")
    assert resolve_api_key(None, None) == "vtc_from_env"


def test_flags_beat_everything(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VTC_API_KEY", "vtc_from_env")
    key_file = tmp_path / "tenant.key"
    key_file.write_text("  vtc_from_file \n")
    assert resolve_api_key("vtc_from_flag", None) == "vtc_from_flag"
    assert resolve_api_key(None, key_file) == "vtc_from_file"


def test_without_any_key_the_error_says_where_to_get_one(data_dir: Path) -> None:
    (data_dir / "keys" / "admin.key").unlink()
    with pytest.raises(CliError, match=r"no API key: pass --key or --key-file, set VTC_API_KEY, or run `make run`"):
        resolve_api_key(None, None)


def test_unreadable_or_empty_key_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="cannot read the key file .*missing.key"):
        resolve_api_key(None, tmp_path / "missing.key")
    (tmp_path / "empty.key").write_text("\n")
    with pytest.raises(CliError, match="empty.key is empty"):
        resolve_api_key(None, tmp_path / "empty.key")
