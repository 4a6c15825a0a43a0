"""Delivery preferences per subscriber: the local hour a digest is due, daily or weekly, paused.

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


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("delivery_hour", sa.Integer, nullable=True))
        batch.add_column(sa.Column("cadence", sa.String(10), nullable=False, server_default="daily"))
        batch.add_column(sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("paused")
        batch.drop_column("cadence")
        batch.drop_column("delivery_hour")
