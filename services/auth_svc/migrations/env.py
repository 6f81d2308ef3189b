"""Alembic environment of the auth DB, run through services.shared.db.migrate."""

from services.auth_svc.models import Base
from services.shared.db import run_migrations_in_env

run_migrations_in_env(Base.metadata)
