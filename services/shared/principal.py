"""Who is calling: set by the auth interceptor for the duration of one RPC.

A token's scopes name roles (services/shared/access_policy.py says which role
may call which RPC). A role counts only in the tenant where it belongs, so a
key that carries it anywhere else (however it came to exist) is worth nothing:

  operator      the platform tenant only: tenants, and the keys of any tenant
  service       the system tenant only: a vtc service acting for the tenant it names
  admin         a customer tenant: that tenant's keys and videos
  videos:write  a customer tenant: upload and delete its videos
  videos:read   a customer tenant: read its videos
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from enum import StrEnum

from services.shared.errors import InvalidArgument, Unauthenticated

# Fixed ids of the tenants the bootstrap creates for the platform itself; customer
# tenant ids are generated (`ten_<hex>`), so no customer can ever hold one of these.
PLATFORM_TENANT_ID = "platform"
SYSTEM_TENANT_ID = "system"
PLATFORM_TENANTS = frozenset({PLATFORM_TENANT_ID, SYSTEM_TENANT_ID})


class Role(StrEnum):
    """What a token may do, as its `scope` claim and an API key's scopes spell it."""

    VIDEOS_READ = "videos:read"
    VIDEOS_WRITE = "videos:write"
    ADMIN = "admin"
    OPERATOR = "operator"
    SERVICE = "service"


TENANT_ROLES = frozenset({Role.ADMIN, Role.VIDEOS_WRITE, Role.VIDEOS_READ})
DEFAULT_KEY_ROLES = (Role.VIDEOS_READ, Role.VIDEOS_WRITE)
# The one tenant where each platform role counts; tenant roles count in any customer tenant.
PLATFORM_ROLE_TENANT = {Role.OPERATOR: PLATFORM_TENANT_ID, Role.SERVICE: SYSTEM_TENANT_ID}


def role_counts_in(role: Role, tenant_id: str) -> bool:
    home = PLATFORM_ROLE_TENANT.get(role)
    return tenant_id == home if home else tenant_id not in PLATFORM_TENANTS


def roles_held_in(tenant_id: str, scopes: frozenset[str]) -> frozenset[Role]:
    """The roles `scopes` grant to a token of `tenant_id`."""
    return frozenset(role for role in Role if role.value in scopes and role_counts_in(role, tenant_id))


@dataclass(frozen=True)
class Principal:
    subject: str  # API key id
    tenant_id: str
    scopes: frozenset[str]

    @property
    def roles(self) -> frozenset[Role]:
        return roles_held_in(self.tenant_id, self.scopes)

    def holds(self, role: Role) -> bool:
        return role in self.roles

    def tenant_acted_for(self, named_tenant_id: str) -> str:
        """The customer tenant an internal call acts for: a service names it in the
        request; anyone else acts for their own tenant, whatever they name."""
        if not self.holds(Role.SERVICE):
            return self.tenant_id
        if not named_tenant_id:
            raise InvalidArgument("a service must name the tenant it acts for (tenant_id)")
        if named_tenant_id in PLATFORM_TENANTS:
            raise InvalidArgument(f"tenant {named_tenant_id!r} is the platform's own: it holds no videos")
        return named_tenant_id


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current_principal() -> Principal:
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("this call needs a bearer token")
    return principal


def set_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def reset_principal(token: contextvars.Token[Principal | None]) -> None:
    _current.reset(token)
