"""a rendition's quality report (PSNR, SSIM, XPSNR against the scaled source)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = (("quality_psnr_db", sa.Float()), ("quality_ssim", sa.Float()), ("quality_xpsnr_db", sa.Float()),
            ("quality_frames", sa.Integer()))


def upgrade() -> None:
    with op.batch_alter_table("renditions") as renditions:
        for name, kind in _COLUMNS:
            renditions.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("renditions") as renditions:
        for name, _ in _COLUMNS:
            renditions.drop_column(name)
