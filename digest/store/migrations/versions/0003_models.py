"""Learning state: document frequencies of the hashed features, per-subscriber models, the latent
semantic model.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_stats",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n_docs", sa.Integer, nullable=False),
        sa.Column("df", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "subscriber_models",
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("weights", sa.LargeBinary, nullable=False),
        sa.Column("n_pos", sa.Integer, nullable=False),
        sa.Column("n_neg", sa.Integer, nullable=False),
        sa.Column("last_event_id", sa.Integer, nullable=False),
        sa.Column("trained_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "semantic_models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("blob", sa.LargeBinary, nullable=False),
        sa.Column("n_docs", sa.Integer, nullable=False),
        sa.Column("fitted_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("semantic_models", "subscriber_models", "feature_stats"):
        op.drop_table(table)
