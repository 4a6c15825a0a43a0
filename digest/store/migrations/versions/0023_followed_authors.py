"""Authors a subscriber follows: their new papers are always in the digest.

A JSON list of names as the reader wrote them ("Yann LeCun", "Welling, M."); matched at ranking
time (digest.author_names), so a better matcher needs no data migration. A plain ADD COLUMN, as
0022: a batch copy of subscribers on SQLite would drop the index on lower(email).

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("authors", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("subscribers", "authors")
