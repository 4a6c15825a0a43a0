"""Stored term counts per paper, and the feature set the document frequencies were counted with.

Papers stored before this revision have no counts: the daily run fills them in (see
digest.store.terms.backfill), so nothing needs recounting here.

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
    with op.batch_alter_table("feature_stats") as batch:
        batch.add_column(sa.Column("feature_set", sa.Integer, nullable=False, server_default="1"))
    op.create_table(
        "paper_terms",
        sa.Column("paper_id", sa.Integer, sa.ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("feature_set", sa.Integer, nullable=False),
        sa.Column("counts", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("paper_terms")
    with op.batch_alter_table("feature_stats") as batch:
        batch.drop_column("feature_set")
