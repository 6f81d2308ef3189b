"""A PostgreSQL database of a test's own on the shared server, dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.engine import URL, make_url

from tests.conftest import require_service

POSTGRES_URL = os.environ.get("VTC_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@contextlib.asynccontextmanager
async def private_postgres_database(prefix: str) -> AsyncIterator[str]:
    """Yields the SQLAlchemy URL of a new, empty database (other suites may share the server);
    it is dropped afterwards whatever the test did."""
    url = await create_private_database(prefix)
    try:
        yield url
    finally:
        await drop_private_database(url)


async def create_private_database(prefix: str) -> str:
    """A new, empty database's SQLAlchemy URL; drop it with drop_private_database. (A sync fixture
    uses these two, each in its own asyncio.run: an async generator left suspended across
    asyncio.run calls is closed by the first loop's shutdown.)"""
    base = make_url(POSTGRES_URL)
    require_service("PostgreSQL", base.host or "127.0.0.1", base.port or 5432)
    name = f"{prefix}_{secrets.token_hex(6)}"
    await _as_admin(base, f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


async def drop_private_database(url: str) -> None:
    await _as_admin(make_url(POSTGRES_URL), f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


async def _as_admin(base: URL, statement: str) -> None:
    admin = await asyncpg.connect(host=base.host, port=base.port, user=base.username,
                                  password=base.password, database=base.database)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()
