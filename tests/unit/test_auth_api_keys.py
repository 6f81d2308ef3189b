"""API key text and the rules for handing out keys: what a key looks like,
what is stored of it, whose keys a caller manages and which scopes the API grants."""

from __future__ import annotations

import re

import pytest

from services.auth_svc.access import grantable_scopes, managed_tenant
from services.auth_svc.api_keys import InvalidApiKey, api_key_matches, hash_api_key, key_id_of, mint_api_key
from services.auth_svc.tenants import tenant_not_found
from services.shared.errors import InvalidArgument, NotFound, PermissionDenied
from services.shared.principal import Principal

OPERATOR = Principal(subject="key_operator", tenant_id="platform", scopes=frozenset({"operator"}))
ADMIN = Principal(subject="key_admin", tenant_id="ten_a", scopes=frozenset({"admin"}))
WRITER = Principal(subject="key_writer", tenant_id="ten_a", scopes=frozenset({"videos:read", "videos:write"}))
SERVICE = Principal(subject="key_service", tenant_id="system", scopes=frozenset({"service"}))
ROGUE_OPERATOR = Principal(subject="key_rogue", tenant_id="ten_a", scopes=frozenset({"operator"}))


def test_minted_key_text_names_its_id_and_carries_256_random_bits() -> None:
    minted = mint_api_key()

    match = re.fullmatch(r"vtc_(key_[0-9a-f]{20})_([0-9a-f]{64})", minted.text)
    assert match is not None, minted.text
    assert match.group(1) == minted.key_id == key_id_of(minted.text)
    # The listing shows enough to recognise the key, and only 16 of its 256 secret bits.
    assert minted.prefix == f"vtc_{minted.key_id}_{match.group(2)[:4]}"
    assert minted.secret_hash == hash_api_key(minted.text) and match.group(2) not in minted.secret_hash
    assert mint_api_key().text != minted.text


def test_only_the_exact_text_matches_the_stored_hash() -> None:
    minted = mint_api_key()
    other = mint_api_key()

    assert api_key_matches(minted.text, minted.secret_hash)
    assert api_key_matches(f"  {minted.text}\n", minted.secret_hash)  # pasted from a file
    assert not api_key_matches(other.text, minted.secret_hash)
    tampered = minted.text[:-1] + ("0" if minted.text[-1] != "0" else "1")
    assert not api_key_matches(tampered, minted.secret_hash)


@pytest.mark.parametrize("text", ["", "vtc_", "not-a-key", "vtc_key_123_abc", "Bearer vtc_key_x_y",
                                  "vtc_key_0123456789abcdef0123_" + "g" * 64])
def test_text_not_shaped_like_a_key_is_an_invalid_key(text: str) -> None:
    with pytest.raises(InvalidApiKey, match="invalid API key"):
        key_id_of(text)


def test_a_tenant_admin_manages_its_own_tenant_and_the_operator_any() -> None:
    assert managed_tenant(ADMIN, "") == "ten_a"
    assert managed_tenant(ADMIN, "ten_a") == "ten_a"
    assert managed_tenant(OPERATOR, "ten_b") == "ten_b"
    assert managed_tenant(OPERATOR, "") == "platform"
    with pytest.raises(NotFound, match="tenant 'ten_b' not found"):
        managed_tenant(ADMIN, "ten_b")


@pytest.mark.parametrize("caller", [WRITER, SERVICE, ROGUE_OPERATOR], ids=["writer", "service", "rogue operator"])
def test_everyone_else_manages_no_keys(caller: Principal) -> None:
    with pytest.raises(PermissionDenied, match="managing API keys needs the 'admin' scope"):
        managed_tenant(caller, "")


def test_another_tenant_reads_exactly_like_a_missing_one() -> None:
    with pytest.raises(NotFound) as other:
        managed_tenant(ADMIN, "ten_b")
    # The same words the directory uses for a tenant id that does not exist.
    assert str(other.value) == str(tenant_not_found("ten_b"))


def test_new_keys_default_to_read_and_write() -> None:
    assert grantable_scopes("ten_a", []) == ("videos:read", "videos:write")
    assert grantable_scopes("ten_a", ["", " "]) == ("videos:read", "videos:write")


def test_scopes_come_back_deduplicated_in_a_stable_order() -> None:
    assert grantable_scopes("ten_a", ["videos:write", "admin", "videos:write"]) == ("admin", "videos:write")


@pytest.mark.parametrize("scope", ["operator", "service"])
def test_platform_scopes_are_never_handed_out_through_the_api(scope: str) -> None:
    with pytest.raises(PermissionDenied, match=f"the '{scope}' scope is given only by the bootstrap; "
                                               "API keys may hold admin, videos:read, videos:write"):
        grantable_scopes("ten_a", ["videos:read", scope])


@pytest.mark.parametrize("tenant_id", ["platform", "system"])
def test_the_platform_tenants_get_no_api_keys(tenant_id: str) -> None:
    with pytest.raises(PermissionDenied, match=f"tenant '{tenant_id}' holds only the identities the bootstrap"):
        grantable_scopes(tenant_id, ["videos:read"])


def test_unknown_scopes_are_named_with_the_known_ones() -> None:
    with pytest.raises(InvalidArgument, match="unknown scope 'videos:delete'; known scopes: admin, operator, service, "
                                              "videos:read, videos:write"):
        grantable_scopes("ten_a", ["videos:delete"])
