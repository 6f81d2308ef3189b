"""VTC_STORAGE_URL picks the store; a b2:// URL without its key fails at start, naming the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.shared.settings import CommonSettings
from services.shared.storage import open_store
from services.shared.storage.b2 import B2Store
from services.shared.storage.local import LocalDirectoryStore


def test_default_is_a_directory_under_the_data_dir(tmp_path: Path) -> None:
    store = open_store(CommonSettings(data_dir=tmp_path))

    assert isinstance(store, LocalDirectoryStore)
    assert (tmp_path / "objects").is_dir()


def test_b2_url_with_key_opens_b2_without_calling_it() -> None:
    settings = CommonSettings(storage_url="b2://vtc-media", b2_key_id="0012ab", b2_application_key="K001secret")

    assert isinstance(open_store(settings), B2Store)


def test_b2_url_without_key_names_the_settings() -> None:
    with pytest.raises(ValueError, match="VTC_B2_KEY_ID and VTC_B2_APPLICATION_KEY"):
        open_store(CommonSettings(storage_url="b2://vtc-media"))


@pytest.mark.parametrize("url", ["b2://", "b2://bucket/some/path", "s3://bucket"])
def test_malformed_storage_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="storage URL"):
        open_store(CommonSettings(storage_url=url, b2_key_id="k", b2_application_key="s"))


def test_the_b2_key_never_shows_in_the_settings_repr() -> None:
    settings = CommonSettings(storage_url="b2://vtc-media", b2_key_id="0012ab", b2_application_key="K001secret")

    assert "K001secret" not in repr(settings)
