"""per-title jobs: the compression report (analysis, decisions, cost) and the progress phase

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("progress_phase", sa.Integer(), nullable=False, server_default="0"))
        jobs.add_column(sa.Column("compression", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("compression")
        jobs.drop_column("progress_phase")
