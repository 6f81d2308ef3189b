"""Who may manage which tenant's keys, and which scopes they may hand out.

A caller manages the keys of their own tenant; an admin those of any tenant.
Another tenant's id reads as "not found", exactly like an id that does not
exist, so ids reveal nothing across tenants. A new key never gets more than
its creator holds, only an admin may mint admin or service keys, and a key
may be revoked only by someone holding all of its scopes.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.auth_svc.tenants import tenant_not_found
from services.shared.errors import InvalidArgument, PermissionDenied
from services.shared.principal import (
    DEFAULT_KEY_SCOPES,
    SCOPE_ADMIN,
    SCOPE_SERVICE,
    SCOPE_VIDEOS_READ,
    SCOPE_VIDEOS_WRITE,
    Principal,
)

# In the order keys and tokens list them.
KNOWN_SCOPES = (SCOPE_ADMIN, SCOPE_SERVICE, SCOPE_VIDEOS_READ, SCOPE_VIDEOS_WRITE)
ADMIN_ONLY_SCOPES = frozenset({SCOPE_ADMIN, SCOPE_SERVICE})


def is_admin(principal: Principal) -> bool:
    return SCOPE_ADMIN in principal.scopes


def managed_tenant(principal: Principal, requested_tenant_id: str) -> str:
    """The tenant whose keys this call manages (empty request: the caller's own)."""
    if is_admin(principal):
        return requested_tenant_id or principal.tenant_id
    if requested_tenant_id and requested_tenant_id != principal.tenant_id:
        raise tenant_not_found(requested_tenant_id)
    return principal.tenant_id


def grantable_scopes(principal: Principal, requested: Iterable[str]) -> tuple[str, ...]:
    """The scopes of a new key: the requested ones (default: videos:read
    videos:write), once the creator is known to be allowed to grant each."""
    wanted = {scope.strip() for scope in requested if scope.strip()} or set(DEFAULT_KEY_SCOPES)
    unknown = sorted(wanted.difference(KNOWN_SCOPES))
    if unknown:
        raise InvalidArgument(f"unknown scope {unknown[0]!r}; known scopes: {', '.join(KNOWN_SCOPES)}")
    for scope in sorted(wanted):
        if scope in ADMIN_ONLY_SCOPES and not is_admin(principal):
            raise PermissionDenied(f"only an admin may grant the '{scope}' scope")
        if not principal.has(scope):
            raise PermissionDenied(f"a key cannot have more than its creator: this token lacks the '{scope}' scope")
    return tuple(scope for scope in KNOWN_SCOPES if scope in wanted)


def check_may_revoke(principal: Principal, key_scopes: Iterable[str]) -> None:
    """A caller may revoke only keys that hold no more than they do, so a tenant's
    read-only key cannot lock out its admin."""
    for scope in key_scopes:
        if (scope in ADMIN_ONLY_SCOPES and not is_admin(principal)) or not principal.has(scope):
            raise PermissionDenied(f"this key holds the '{scope}' scope, which this token lacks")
