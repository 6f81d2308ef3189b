"""The access policy, the RPC × role table in docs/auth.md and the proto
contracts agree: every method of every vtc.v1 service has a rule and a row,
and each row says what the rule does. A new RPC without both fails here."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import vtc.v1
from services.shared.access_policy import ACCESS_POLICY, AccessRule, check_access
from services.shared.errors import InvalidArgument, PermissionDenied
from services.shared.principal import Principal, Role

AUTH_DOC = Path(__file__).resolve().parents[2] / "docs" / "auth.md"
NO_TOKEN = "no token"
ALLOWED, REFUSED = "✓", "–"


def rpcs_in_contracts() -> set[str]:
    """Every method of every service in the generated vtc.v1 descriptors, as gRPC names it."""
    names = set()
    for module_info in pkgutil.iter_modules(vtc.v1.__path__):
        if not module_info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"vtc.v1.{module_info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            names.update(f"/{service.full_name}/{method.name}" for method in service.methods)
    return names


def documented_table() -> tuple[list[str], dict[str, dict[str, str]]]:
    """The columns and the rows ({method: {column: cell}}) of the table whose header starts `| RPC |`."""
    lines = AUTH_DOC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| RPC |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        service, method = cells[0].strip("`").split(".")
        rows[f"/vtc.v1.{service}/{method}"] = dict(zip(header[1:], cells[1:], strict=True))
    return header[1:], rows


def expected_row(rule: AccessRule) -> dict[str, str]:
    row = {NO_TOKEN: ALLOWED if rule.public else REFUSED}
    row.update({role.value: ALLOWED if rule.public or role in rule.roles else REFUSED for role in Role})
    return row


def test_the_contracts_have_services_to_walk() -> None:
    assert "/vtc.v1.UploadService/Upload" in rpcs_in_contracts()
    assert len(rpcs_in_contracts()) >= 15


def test_every_rpc_has_a_rule_and_every_rule_an_rpc() -> None:
    rpcs = rpcs_in_contracts()
    assert sorted(rpcs - ACCESS_POLICY.keys()) == [], "add these to services/shared/access_policy.py"
    assert sorted(ACCESS_POLICY.keys() - rpcs) == [], "these rules name no RPC in proto/vtc/v1"


def test_the_table_has_a_column_for_every_role() -> None:
    columns, _ = documented_table()
    assert columns == [NO_TOKEN, *(role.value for role in Role)]


def test_every_rpc_has_a_row_and_every_row_an_rpc() -> None:
    _, rows = documented_table()
    rpcs = rpcs_in_contracts()
    assert sorted(rpcs - rows.keys()) == [], "add these to the RPC × role table in docs/auth.md"
    assert sorted(rows.keys() - rpcs) == [], "these rows of docs/auth.md name no RPC in proto/vtc/v1"


def test_the_table_says_what_the_policy_does() -> None:
    _, rows = documented_table()
    disagreements = {method: (row, expected_row(ACCESS_POLICY[method]))
                     for method, row in rows.items()
                     if method in ACCESS_POLICY and row != expected_row(ACCESS_POLICY[method])}
    assert disagreements == {}, "docs/auth.md row vs services/shared/access_policy.py"


# --- roles count only where they belong ---------------------------------------------------------

def principal(tenant_id: str, *scopes: str) -> Principal:
    return Principal(subject="key_x", tenant_id=tenant_id, scopes=frozenset(scopes))


@pytest.mark.parametrize(("tenant_id", "scopes", "roles"), [
    ("platform", ("operator",), {Role.OPERATOR}),
    ("system", ("service",), {Role.SERVICE}),
    ("ten_a", ("admin", "videos:read"), {Role.ADMIN, Role.VIDEOS_READ}),
    ("ten_a", ("operator", "service", "videos:write"), {Role.VIDEOS_WRITE}),  # minted where they mean nothing
    ("platform", ("admin", "service", "videos:read"), set()),
    ("system", ("operator", "admin"), set()),
    ("ten_a", ("root", ""), set()),
])
def test_a_role_counts_only_in_its_tenant(tenant_id: str, scopes: tuple[str, ...], roles: set[Role]) -> None:
    assert principal(tenant_id, *scopes).roles == roles


def test_a_service_acts_for_the_customer_tenant_it_names_and_others_for_their_own() -> None:
    service = principal("system", "service")
    assert service.tenant_acted_for("ten_a") == "ten_a"
    for bad in ("", "platform", "system"):
        with pytest.raises(InvalidArgument):
            service.tenant_acted_for(bad)
    assert principal("ten_b", "admin").tenant_acted_for("ten_a") == "ten_b"
    assert principal("ten_b", "service").tenant_acted_for("ten_a") == "ten_b"


def test_a_refusal_says_what_the_call_needs_and_what_the_token_has() -> None:
    with pytest.raises(PermissionDenied) as refused:
        check_access("/vtc.v1.MetadataService/DeleteVideo", principal("ten_a", "videos:read"))
    assert refused.value.message == ("DeleteVideo needs the 'admin' or 'videos:write' scope; "
                                     "this token has 'videos:read'")
    with pytest.raises(PermissionDenied) as misplaced:
        check_access("/vtc.v1.AuthService/CreateTenant", principal("ten_a", "operator"))
    assert misplaced.value.message == ("CreateTenant needs the 'operator' scope; this token has no role "
                                       "('operator' counts only in the 'platform' tenant)")


def test_an_rpc_without_a_rule_is_refused_to_everyone() -> None:
    with pytest.raises(PermissionDenied, match="has no access rule"):
        check_access("/vtc.v1.UploadService/Smuggle", principal("platform", "operator"))
