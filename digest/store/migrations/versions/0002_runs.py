"""A record of every daily run, for `digest status` and the health check.

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
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("digest_date", sa.Date, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("runs")
