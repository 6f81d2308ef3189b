"""Alembic environment of the auth DB. Run through services.shared.db.migrate,
which hands over an open connection and the version table; there is no
alembic.ini and no offline (--sql) mode."""

from __future__ import annotations

from alembic import context

from services.auth_svc.models import Base

if context.is_offline_mode():
    raise RuntimeError("auth migrations run online only, through services.shared.db.migrate")

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=Base.metadata,
    version_table=context.config.attributes["version_table"],
    render_as_batch=True,  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
