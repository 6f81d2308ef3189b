"""API key text and the rules for handing out keys: what a key looks like,
what is stored of it, who may manage which tenant's keys and grant which scopes."""

from __future__ import annotations

import re

import pytest

from services.auth_svc.access import check_may_revoke, grantable_scopes, managed_tenant
from services.auth_svc.api_keys import InvalidApiKey, api_key_matches, hash_api_key, key_id_of, mint_api_key
from services.auth_svc.tenants import tenant_not_found
from services.shared.errors import InvalidArgument, NotFound, PermissionDenied
from services.shared.principal import Principal

ADMIN = Principal(subject="key_admin", tenant_id="default", scopes=frozenset({"admin", "videos:read", "videos:write"}))
WRITER = Principal(subject="key_writer", tenant_id="ten_a", scopes=frozenset({"videos:read", "videos:write"}))
READER = Principal(subject="key_reader", tenant_id="ten_a", scopes=frozenset({"videos:read"}))
SERVICE = Principal(subject="key_service", tenant_id="system", scopes=frozenset({"service"}))


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


def test_a_caller_manages_their_own_tenant_and_an_admin_any() -> None:
    assert managed_tenant(WRITER, "") == "ten_a"
    assert managed_tenant(WRITER, "ten_a") == "ten_a"
    assert managed_tenant(ADMIN, "ten_b") == "ten_b"
    assert managed_tenant(ADMIN, "") == "default"
    # A service may act for tenants on other services, but not mint their keys.
    with pytest.raises(NotFound, match="tenant 'ten_a' not found"):
        managed_tenant(SERVICE, "ten_a")


def test_another_tenant_reads_exactly_like_a_missing_one() -> None:
    with pytest.raises(NotFound) as other:
        managed_tenant(WRITER, "ten_b")
    # The same words the directory uses for a tenant id that does not exist.
    assert str(other.value) == str(tenant_not_found("ten_b"))


def test_new_keys_default_to_read_and_write() -> None:
    assert grantable_scopes(WRITER, []) == ("videos:read", "videos:write")
    assert grantable_scopes(WRITER, ["", " "]) == ("videos:read", "videos:write")


def test_scopes_come_back_deduplicated_in_a_stable_order() -> None:
    assert grantable_scopes(ADMIN, ["videos:write", "admin", "videos:write"]) == ("admin", "videos:write")


def test_a_key_cannot_get_more_than_its_creator_holds() -> None:
    assert grantable_scopes(READER, ["videos:read"]) == ("videos:read",)
    with pytest.raises(PermissionDenied, match="lacks the 'videos:write' scope"):
        grantable_scopes(READER, ["videos:read", "videos:write"])
    with pytest.raises(PermissionDenied, match="lacks the 'videos:write' scope"):
        grantable_scopes(READER, [])  # the default includes write


@pytest.mark.parametrize("scope", ["admin", "service"])
def test_only_an_admin_grants_admin_or_service(scope: str) -> None:
    assert grantable_scopes(ADMIN, [scope]) == (scope,)
    with pytest.raises(PermissionDenied, match=f"only an admin may grant the '{scope}' scope"):
        grantable_scopes(WRITER, [scope])
    with pytest.raises(PermissionDenied):
        grantable_scopes(SERVICE, [scope])


def test_unknown_scopes_are_named_with_the_known_ones() -> None:
    with pytest.raises(InvalidArgument, match="unknown scope 'videos:delete'; known scopes: admin, service"):
        grantable_scopes(ADMIN, ["videos:delete"])


def test_a_key_is_revoked_only_by_someone_holding_all_its_scopes() -> None:
    check_may_revoke(WRITER, ("videos:read",))
    check_may_revoke(ADMIN, ("admin", "videos:read"))
    with pytest.raises(PermissionDenied, match="this key holds the 'admin' scope"):
        check_may_revoke(WRITER, ("admin", "videos:read"))
    with pytest.raises(PermissionDenied, match="'videos:write'"):
        check_may_revoke(READER, ("videos:read", "videos:write"))
