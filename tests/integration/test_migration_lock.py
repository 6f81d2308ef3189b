"""Replicas starting together on an empty PostgreSQL database: their migrations
take turns under an advisory lock, so none of them fails."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from services.metadata_svc.server import VERSION_TABLE
from services.shared.db import create_engine
from tests.databases import private_postgres_database

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[2]
REPLICAS = 4
# What a metadata replica does first at start, in a process of its own; all
# of them connected and waiting for the same instant, as replicas started together.
MIGRATE = """
import asyncio, sys, time
from sqlalchemy import text
from services.metadata_svc.server import MIGRATIONS, VERSION_TABLE
from services.shared.db import create_engine, migrate

async def main():
    engine = create_engine(sys.argv[1])
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    await asyncio.sleep(float(sys.argv[2]) - time.time())
    await migrate(engine, MIGRATIONS, VERSION_TABLE)

asyncio.run(main())
"""


async def migrate_in_a_process(url: str, at: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", MIGRATE, url, str(at), cwd=REPO,
                                                   stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, err.decode()[-2000:]


async def test_four_replicas_migrating_an_empty_database_at_once_all_succeed() -> None:
    async with private_postgres_database("vtc_migrate") as url:
        at = time.time() + 8  # time enough for every process to import and connect
        results = await asyncio.gather(*(migrate_in_a_process(url, at) for _ in range(REPLICAS)))
        failures = [err for code, err in results if code != 0]
        print(f"\n{REPLICAS - len(failures)}/{REPLICAS} replicas migrated the same empty database at once")
        assert not failures, failures[0]
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                versions = (await connection.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}"))).scalar()
        finally:
            await engine.dispose()
        assert versions == 1
