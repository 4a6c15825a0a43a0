"""A reader may turn the "trending today" block off (the manage page, `digest subscribe --no-trending`).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


# A plain ADD / DROP COLUMN, not a batch copy of the table: SQLite's copy would drop the index on
# lower(email), which SQLAlchemy cannot reflect (SQLite has DROP COLUMN since 3.35).
def upgrade() -> None:
    op.add_column("subscribers", sa.Column("trending", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    op.drop_column("subscribers", "trending")
