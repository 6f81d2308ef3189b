"""later jobs of a video: re-transcodes and retries, customer profiles

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("trigger", sa.String(16), nullable=False, server_default="upload"))
        jobs.add_column(sa.Column("retry_of", sa.String(64), nullable=False, server_default=""))
        jobs.add_column(sa.Column("only_outputs", sa.JSON(), nullable=False, server_default="[]"))
        jobs.add_column(sa.Column("profile_document", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        for column in ("profile_document", "only_outputs", "retry_of", "trigger"):
            jobs.drop_column(column)
