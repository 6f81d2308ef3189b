"""Whose keys a caller manages, and which scopes a key made through the API may hold.

Who may call the key RPCs at all (the operator, a tenant admin) is the access
policy's job (services/shared/access_policy.py); this module keeps each of
them in its own lane:

- The operator manages the keys of any tenant it names; a tenant admin those
  of its own tenant only. Another tenant's id reads as "not found", exactly
  like an id that does not exist, so ids reveal nothing across tenants.
- Keys made through the API hold tenant scopes only (admin, videos:read,
  videos:write) and live in customer tenants: operator and service identities
  are made by the bootstrap alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.auth_svc.tenants import tenant_not_found
from services.shared.errors import InvalidArgument, PermissionDenied
from services.shared.principal import DEFAULT_KEY_ROLES, PLATFORM_TENANTS, TENANT_ROLES, Principal, Role

# In the order keys and tokens list them.
KNOWN_SCOPES = tuple(sorted(role.value for role in Role))
GRANTABLE_SCOPES = tuple(scope for scope in KNOWN_SCOPES if scope in TENANT_ROLES)


def managed_tenant(principal: Principal, requested_tenant_id: str) -> str:
    """The tenant whose keys this call manages (empty request: the caller's own)."""
    if principal.holds(Role.OPERATOR):
        return requested_tenant_id or principal.tenant_id
    if not principal.holds(Role.ADMIN):
        raise PermissionDenied("managing API keys needs the 'admin' scope")
    if requested_tenant_id and requested_tenant_id != principal.tenant_id:
        raise tenant_not_found(requested_tenant_id)
    return principal.tenant_id


def grantable_scopes(tenant_id: str, requested: Iterable[str]) -> tuple[str, ...]:
    """The scopes of a new key of `tenant_id` (a tenant managed_tenant allowed):
    the requested ones (default: videos:read videos:write), once each is known
    to be one the API hands out."""
    if tenant_id in PLATFORM_TENANTS:
        raise PermissionDenied(f"tenant {tenant_id!r} holds only the identities the bootstrap made; "
                               "API keys are made in customer tenants")
    wanted = {scope.strip() for scope in requested if scope.strip()} or {role.value for role in DEFAULT_KEY_ROLES}
    unknown = sorted(wanted.difference(KNOWN_SCOPES))
    if unknown:
        raise InvalidArgument(f"unknown scope {unknown[0]!r}; known scopes: {', '.join(KNOWN_SCOPES)}")
    refused = sorted(wanted.difference(GRANTABLE_SCOPES))
    if refused:
        raise PermissionDenied(f"the '{refused[0]}' scope is given only by the bootstrap; "
                               f"API keys may hold {', '.join(GRANTABLE_SCOPES)}")
    return tuple(scope for scope in KNOWN_SCOPES if scope in wanted)
