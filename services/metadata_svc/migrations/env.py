"""Alembic environment of the metadata DB, run through services.shared.db.migrate."""

from services.metadata_svc.models import Base
from services.shared.db import run_migrations_in_env

run_migrations_in_env(Base.metadata)
