"""Web sign-up: pending double opt-in sign-ups, consent records, a per-subscriber source filter.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        # None or []: every source.
        batch.add_column(sa.Column("sources", sa.JSON, nullable=True))
    op.create_table(
        "signups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, index=True),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("preferences", sa.JSON, nullable=False),
        sa.Column("ip", sa.String(64), nullable=False, index=True),
        sa.Column("consent_version", sa.String(40), nullable=False),
        sa.Column("consent_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, index=True),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("confirmed_at", sa.DateTime),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("signed_up_at", sa.DateTime, nullable=False),
        sa.Column("signup_ip", sa.String(64), nullable=False),
        sa.Column("confirmed_at", sa.DateTime, nullable=False),
        sa.Column("confirm_ip", sa.String(64), nullable=False),
        sa.Column("wording_version", sa.String(40), nullable=False),
        sa.Column("wording_sha256", sa.String(64), nullable=False),
        sa.Column("wording", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consents")
    op.drop_table("signups")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("sources")
