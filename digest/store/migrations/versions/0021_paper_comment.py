"""Papers keep the arXiv API's comment ("12 pages; code at https://github.com/..."): the "Code" and
"Data" buttons look there as well as in the abstract (digest.code_links).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


# A plain ADD / DROP COLUMN (as 0013): nullable, so no table copy on SQLite.
def upgrade() -> None:
    op.add_column("papers", sa.Column("comment", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("papers", "comment")
