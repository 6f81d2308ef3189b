"""The shared checks of what clients send: ids, free text, names (services/shared/ids.py, validation.py)."""

from __future__ import annotations

import re

import pytest

from services.shared.errors import InvalidArgument
from services.shared.ids import is_id, new_id, require_id, require_tenant_id
from services.shared.validation import (
    MAX_FILENAME_CHARS,
    MAX_TITLE_CHARS,
    bounded_list,
    file_name,
    free_text,
    sha256_hex,
    slug,
)


def test_every_new_id_passes_its_own_check() -> None:
    for prefix in ("vid", "job", "key", "ten", "evt"):
        made = new_id(prefix)
        assert require_id(made, prefix, "x") == made
        assert not is_id(made, "zzz" if prefix != "zzz" else "vid")


@pytest.mark.parametrize("value", [
    "../../x", "vid_../../../etc", "vid_0123456789abcdef012", "vid_0123456789abcdef01234",
    "vid_0123456789ABCDEF0123", "vid_0123456789abcdef012/", "job_0123456789abcdef0123",
    "vid_0123456789abcdef0123\x00", " vid_0123456789abcdef0123", "vid_0123456789abcdef0123/..",
])
def test_an_id_of_another_shape_is_refused_with_its_field(value: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^video_id .* is not a valid id: expected vid_ followed by 20 hex"):
        require_id(value, "vid", "video_id")


def test_a_missing_id_is_required_not_malformed() -> None:
    with pytest.raises(InvalidArgument, match="^job_id is required$"):
        require_id("", "job", "job_id")


def test_a_huge_id_is_not_echoed_back_whole() -> None:
    with pytest.raises(InvalidArgument) as raised:
        require_id("x" * 1_000_000, "vid", "video_id")
    assert len(raised.value.message) < 200


@pytest.mark.parametrize("tenant", ["default", "system", "ten_0123456789abcdef0123", "ten_a"])
def test_tenant_ids_of_bootstrap_and_new_tenants_pass(tenant: str) -> None:
    assert require_tenant_id(tenant) == tenant


@pytest.mark.parametrize("tenant", ["..", "../other", "a/b", "Default", "ten a", "x" * 65, "-x", "\x1b"])
def test_a_tenant_id_that_could_leave_its_folder_is_refused(tenant: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a valid tenant id"):
        require_tenant_id(tenant)


@pytest.mark.parametrize("text, char", [
    ("clip\x00.mov", "U+0000"), ("a\x1b[2Jb", "U+001B"), ("line\nbreak", "U+000A"), ("tab\there", "U+0009"),
    ("c1 \x9b31m", "U+009B"), ("gpj\u202eexe", "U+202E"), ("para\u2029", "U+2029"), ("del\x7f", "U+007F"),
])
def test_free_text_with_a_control_character_is_refused_naming_it(text: str, char: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(f"title contains a control character ({char} at position")):
        free_text(text, "title", max_chars=100)


def test_free_text_is_trimmed_and_may_be_any_printable_script() -> None:
    assert free_text("  Été à Zürich — 東京 🎬  ", "title", max_chars=100) == "Été à Zürich — 東京 🎬"


def test_free_text_over_its_length_names_both_numbers() -> None:
    assert free_text("x" * MAX_TITLE_CHARS, "title", max_chars=MAX_TITLE_CHARS)
    with pytest.raises(InvalidArgument, match=f"^title is {MAX_TITLE_CHARS + 1} characters long; at most "
                                              f"{MAX_TITLE_CHARS} are allowed$"):
        free_text("x" * (MAX_TITLE_CHARS + 1), "title", max_chars=MAX_TITLE_CHARS)
    with pytest.raises(InvalidArgument, match="6000000 characters long"):
        free_text("x" * 6_000_000, "title", max_chars=MAX_TITLE_CHARS)


def test_file_name_keeps_the_base_name_only() -> None:
    assert file_name("C:\\Users\\me\\clip.mov") == "clip.mov"
    assert file_name("/home/me/../clip.mov") == "clip.mov"
    with pytest.raises(InvalidArgument, match="required"):
        file_name("/home/me/..")
    with pytest.raises(InvalidArgument, match=f"at most {MAX_FILENAME_CHARS}"):
        file_name("x" * 300 + ".mov")
    with pytest.raises(InvalidArgument, match="control character"):
        file_name("folder\x00/clip.mov")  # refused even where the folder part would be dropped


@pytest.mark.parametrize("name", ["default", "720p", "web-low_2"])
def test_slugs(name: str) -> None:
    assert slug(name, "profile") == name


@pytest.mark.parametrize("name", ["../x", "720P", "a b", "x" * 65, "", "_x"])
def test_names_that_become_key_parts_must_be_slugs(name: str) -> None:
    with pytest.raises(InvalidArgument, match="profile"):
        slug(name, "profile")


def test_sha256_and_lists() -> None:
    assert sha256_hex(" " + "AB" * 32, "sha256") == "ab" * 32
    assert sha256_hex("", "sha256") == ""
    with pytest.raises(InvalidArgument, match="64 hex digits"):
        sha256_hex("abc", "sha256")
    assert bounded_list(["videos:read"], "scopes", max_items=2, max_chars=20) == ["videos:read"]
    with pytest.raises(InvalidArgument, match="scopes has 3 entries; at most 2"):
        bounded_list(["a", "b", "c"], "scopes", max_items=2, max_chars=20)
