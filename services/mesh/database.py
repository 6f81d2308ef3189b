"""Creates the mesh's PostgreSQL database when it does not exist yet."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import make_url


async def ensure_database(url: str) -> bool:
    """Creates the database `url` names if missing (connecting to the server's
    `postgres` database to do it); returns whether it created it."""
    target = make_url(url)
    if not target.drivername.startswith("postgresql"):
        return False
    name = target.database or ""
    admin = await asyncpg.connect(host=target.host, port=target.port, user=target.username,
                                  password=target.password, database="postgres")
    try:
        if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await admin.execute(f'CREATE DATABASE "{name.replace(chr(34), "")}"')
        return True
    finally:
        await admin.close()
