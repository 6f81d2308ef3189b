"""Tenants: the customers whose videos, keys and tokens are kept apart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.auth_svc.timestamps import to_timestamp
from services.shared.errors import InvalidArgument, NotFound
from services.shared.validation import free_text
from vtc.v1 import auth_pb2

MAX_TENANT_NAME_CHARS = 100


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    created_at: datetime

    def to_proto(self) -> auth_pb2.Tenant:
        return auth_pb2.Tenant(tenant_id=self.tenant_id, name=self.name, created_at=to_timestamp(self.created_at))


def tenant_name(name: str) -> str:
    """A tenant's name as stored: trimmed, present, printable, not too long."""
    if not name.strip():
        raise InvalidArgument("a tenant needs a name")
    return free_text(name, "the tenant name", max_chars=MAX_TENANT_NAME_CHARS)


def tenant_not_found(tenant_id: str) -> NotFound:
    return NotFound(f"tenant {tenant_id!r} not found")
