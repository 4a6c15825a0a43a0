"""Delivery that survives faults: retry schedule, claim owner, ambiguous sends, hard bounces.

deliveries: next_attempt_at (a temp_failed row waits until then), claimed_by (the process that
holds a row in "sending"), data_started_at (DATA began on the current attempt: a crash after it is
ambiguous), ambiguous (how many attempts ended without knowing if the relay took the message).
subscribers: hard_bounces (consecutive permanent refusals of the address), suspended_at.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("data_started_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("ambiguous", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("hard_bounces", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("suspended_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("suspended_at")
        batch.drop_column("hard_bounces")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("ambiguous")
        batch.drop_column("data_started_at")
        batch.drop_column("claimed_by")
        batch.drop_column("next_attempt_at")
