"""A PostgreSQL database of a test's own on the shared server, dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.engine import make_url

from tests.conftest import require_service

POSTGRES_URL = os.environ.get("VTC_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@contextlib.asynccontextmanager
async def private_postgres_database(prefix: str) -> AsyncIterator[str]:
    """Yields the SQLAlchemy URL of a new, empty database (other suites may share the server)."""
    base = make_url(POSTGRES_URL)
    require_service("PostgreSQL", base.host or "127.0.0.1", base.port or 5432)
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(host=base.host, port=base.port, user=base.username,
                                  password=base.password, database=base.database)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
