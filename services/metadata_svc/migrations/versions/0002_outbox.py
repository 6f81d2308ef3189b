"""the outbox, and where each job was dispatched

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("message_type", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("job_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_outbox_job_requests", "outbox", ["job_id", "tenant_id", "id"])
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
        jobs.add_column(sa.Column("dispatch_session", sa.String(128), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("dispatch_session")
        jobs.drop_column("dispatched_at")
    op.drop_index("ix_outbox_job_requests", table_name="outbox")
    op.drop_table("outbox")
