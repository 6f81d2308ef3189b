"""The tenant directory: every SQL read and write of tenants and API keys.
Only the hash of a key's text is stored; the text leaves once, in the reply
that created it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.auth_svc.api_keys import (
    ApiKey,
    InvalidApiKey,
    MintedApiKey,
    RevokedApiKey,
    api_key_matches,
    key_id_of,
    mint_api_key,
)
from services.auth_svc.models import ApiKeyRow, TenantRow
from services.auth_svc.tenants import Tenant, tenant_not_found
from services.shared.errors import AlreadyExists, NotFound
from services.shared.ids import new_id


def api_key_not_found(key_id: str) -> NotFound:
    return NotFound(f"API key {key_id!r} not found")


class TenantDirectory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # --- tenants ---------------------------------------------------------------------------------

    async def create_tenant(self, name: str, at: datetime, tenant_id: str | None = None) -> Tenant:
        row = TenantRow(tenant_id=tenant_id or new_id("ten"), name=name, created_at=at)
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError as error:
            raise AlreadyExists(f"a tenant named {name!r} already exists") from error
        return _tenant(row)

    async def ensure_tenant(self, tenant_id: str, name: str, at: datetime) -> Tenant:
        """The tenant with this id, created if missing (bootstrap tenants have fixed ids)."""
        async with self._sessions() as session:
            row = await session.get(TenantRow, tenant_id)
        if row is not None:
            return _tenant(row)
        try:
            return await self.create_tenant(name, at, tenant_id=tenant_id)
        except AlreadyExists:  # another replica created it first, or the name is taken
            async with self._sessions() as session:
                row = await session.get(TenantRow, tenant_id)
            if row is None:
                raise AlreadyExists(f"cannot create tenant {tenant_id!r}: another tenant is named {name!r}") from None
            return _tenant(row)

    async def get_tenant(self, tenant_id: str) -> Tenant:
        async with self._sessions() as session:
            row = await session.get(TenantRow, tenant_id)
        if row is None:
            raise tenant_not_found(tenant_id)
        return _tenant(row)

    # --- API keys --------------------------------------------------------------------------------

    async def create_api_key(self, tenant_id: str, name: str, scopes: Sequence[str],
                             at: datetime) -> tuple[ApiKey, MintedApiKey]:
        """A new key of the tenant; the returned MintedApiKey holds the text, shown once."""
        minted = mint_api_key()
        row = ApiKeyRow(key_id=minted.key_id, tenant_id=tenant_id, name=name, scopes=" ".join(scopes),
                        secret_hash=minted.secret_hash, prefix=minted.prefix, created_at=at)
        async with self._sessions.begin() as session:
            if await session.get(TenantRow, tenant_id) is None:
                raise tenant_not_found(tenant_id)
            session.add(row)
        return _api_key(row), minted

    async def list_api_keys(self, tenant_id: str) -> list[ApiKey]:
        """The tenant's keys, revoked ones included, oldest first."""
        async with self._sessions() as session:
            if await session.get(TenantRow, tenant_id) is None:
                raise tenant_not_found(tenant_id)
            rows = await session.scalars(select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id)
                                         .order_by(ApiKeyRow.created_at, ApiKeyRow.key_id))
            return [_api_key(row) for row in rows]

    async def revoke_api_key(self, tenant_id: str, key_id: str, at: datetime) -> ApiKey:
        """Revokes the key; revoking it again changes nothing (it keeps its first revoked_at)."""
        async with self._sessions.begin() as session:
            row = await session.get(ApiKeyRow, key_id)
            if row is None or row.tenant_id != tenant_id:
                raise api_key_not_found(key_id)
            if row.revoked_at is None:
                row.revoked_at = at
        return _api_key(row)

    async def revocations_since(self, since: datetime) -> list[tuple[str, datetime]]:
        """(key id, revoked_at) of every key revoked at or after `since`, oldest first."""
        async with self._sessions() as session:
            rows = await session.execute(select(ApiKeyRow.key_id, ApiKeyRow.revoked_at)
                                         .where(ApiKeyRow.revoked_at >= since)
                                         .order_by(ApiKeyRow.revoked_at, ApiKeyRow.key_id))
            return [(key_id, revoked_at) for key_id, revoked_at in rows]

    async def authenticate(self, text: str) -> ApiKey:
        """The live key whose text this is. InvalidApiKey for anything that is not
        one (malformed, unknown id, wrong secret: one message, nothing to probe);
        RevokedApiKey for a revoked key, so its holder knows to get a new one."""
        key_id = key_id_of(text)
        async with self._sessions() as session:
            row = await session.get(ApiKeyRow, key_id)
        if row is None or not api_key_matches(text, row.secret_hash):
            raise InvalidApiKey()
        if row.revoked_at is not None:
            raise RevokedApiKey()
        return _api_key(row)


def _tenant(row: TenantRow) -> Tenant:
    return Tenant(tenant_id=row.tenant_id, name=row.name, created_at=row.created_at)


def _api_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(key_id=row.key_id, tenant_id=row.tenant_id, name=row.name, scopes=tuple(row.scopes.split()),
                  prefix=row.prefix, created_at=row.created_at, revoked_at=row.revoked_at)
