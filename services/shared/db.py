"""SQL engines and Alembic migrations, for SQLite (embedded) and PostgreSQL.

Each service that owns tables keeps an Alembic script directory of its own
(`<service>/migrations/`) with its own version table, and calls
`migrate(engine, script_dir, version_table)` at start. Its env.py takes the
connection from `config.attributes["connection"]` (see metadata_svc/migrations/env.py).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from services.shared.private_files import ensure_private_file


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.resolve()}"


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        database = engine.url.database
        if database and database != ":memory:":
            path = Path(database)

            @event.listens_for(engine.sync_engine, "do_connect")
            def _private_file(*_args):  # type: ignore[no-untyped-def]
                # Created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
                ensure_private_file(path)


        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True)


def migration_lock_key(version_table: str) -> int:
    """The PostgreSQL advisory lock of one service's migrations (a signed 64-bit key)."""
    digest = hashlib.sha256(f"vtc.migrations.{version_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def migrate(engine: AsyncEngine, script_dir: Path, version_table: str) -> None:
    """Brings the schema to the newest revision in script_dir. On PostgreSQL the
    migration holds an advisory lock until it commits, so replicas starting
    together on an empty database take turns: the first migrates, the others
    then find the schema current. (SQLite serialises writers by itself.)"""

    def upgrade(connection) -> None:  # type: ignore[no-untyped-def]
        config = Config()
        config.set_main_option("script_location", str(script_dir))
        config.attributes["connection"] = connection
        config.attributes["version_table"] = version_table
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": migration_lock_key(version_table)})
        await connection.run_sync(upgrade)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite and PostgreSQL alike. SQLite has
    no time zones, so there the value is stored as naive UTC (fixed-width text,
    so it still sorts)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store UTC instants only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def run_migrations_in_env(target_metadata: MetaData) -> None:
    """The body of a service's Alembic env.py: migrate on the connection that
    `migrate` handed over (there is no alembic.ini and no offline --sql mode)."""
    from alembic import context

    if context.is_offline_mode():
        raise RuntimeError("migrations run online only, through services.shared.db.migrate")
    context.configure(
        connection=context.config.attributes["connection"],
        target_metadata=target_metadata,
        version_table=context.config.attributes["version_table"],
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
