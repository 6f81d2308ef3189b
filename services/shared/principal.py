"""Who is calling: set by the auth interceptor for the duration of one RPC."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from services.shared.errors import PermissionDenied, Unauthenticated

SCOPE_ADMIN = "admin"
SCOPE_SERVICE = "service"
SCOPE_VIDEOS_READ = "videos:read"
SCOPE_VIDEOS_WRITE = "videos:write"
DEFAULT_KEY_SCOPES = (SCOPE_VIDEOS_READ, SCOPE_VIDEOS_WRITE)


@dataclass(frozen=True)
class Principal:
    subject: str  # API key id, or "service:<name>"
    tenant_id: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes or SCOPE_ADMIN in self.scopes

    def require(self, scope: str) -> None:
        if not self.has(scope):
            raise PermissionDenied(f"this token lacks the '{scope}' scope")

    def tenant_for(self, requested_tenant_id: str) -> str:
        """The tenant an operation acts on: a service may act for any tenant it names,
        everyone else only for their own."""
        if requested_tenant_id and SCOPE_SERVICE in self.scopes:
            return requested_tenant_id
        return self.tenant_id


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
