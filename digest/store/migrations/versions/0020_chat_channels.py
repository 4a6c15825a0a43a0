"""Chat channels: a subscriber's webhooks (Slack, Discord, Matrix, generic JSON), and a ledger row per
channel.

The deliveries ledger gains `channel` ("email" for every row there was; "hook:<channels.id>" for a
chat message), and its unique key becomes (subscriber, digest date, channel): one message per
channel and date, with the same states, retries and deadline as email. ON CONFLICT in
digest.store.deliveries names these three columns.

SQLite cannot change a table's unique constraint in place: deliveries is copied (batch mode, every
row kept, AUTOINCREMENT kept as migration 0014 made it), with foreign keys off for the copy
(digest.store.engine.migrate).

Revision ID: 0020
Revises: 0016
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0016"
branch_labels = None
depends_on = None


@contextmanager
def _quiet_reflection() -> Iterator[None]:
    """The copy reflects subscribers (deliveries' foreign key names it), whose index on lower(email)
    SQLAlchemy cannot reflect: a warning about a table that is not copied, kept off the user's screen."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        yield


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("kind", sa.String(20), nullable=False),  # slack | discord | matrix | json
        sa.Column("url", sa.Text, nullable=False),  # a secret: the webhook URL, or the Matrix homeserver
        sa.Column("room_id", sa.String(300)),  # Matrix only: !id:server or #alias:server
        sa.Column("token", sa.Text),  # Matrix only: the access token, a secret
        sa.Column("paused_at", sa.DateTime),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),  # masked
        sa.Column("created_at", sa.DateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    with _quiet_reflection(), op.batch_alter_table("deliveries", recreate="auto",
                                                   table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("channel", sa.String(40), nullable=False, server_default="email"))
        batch.drop_constraint("uq_deliveries_subscriber_date", type_="unique")
        batch.create_unique_constraint("uq_deliveries_subscriber_date_channel",
                                       ["subscriber_id", "digest_date", "channel"])


def downgrade() -> None:
    # Chat rows have no place in a ledger of one row per subscriber and date: they go.
    op.execute("DELETE FROM deliveries WHERE channel <> 'email'")
    with _quiet_reflection(), op.batch_alter_table("deliveries", recreate="auto",
                                                   table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint("uq_deliveries_subscriber_date_channel", type_="unique")
        batch.create_unique_constraint("uq_deliveries_subscriber_date", ["subscriber_id", "digest_date"])
        batch.drop_column("channel")
    op.drop_table("channels")
