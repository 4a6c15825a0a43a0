"""A private Atom feed per subscriber, and "feed only": email on or off.

feed_key is carried in the feed's signed address: a new key ("new feed address" on the manage page)
makes the old address answer 410 while the subscription goes on. Every existing row gets a key; new
rows get one from the store. email_enabled off: the daily run records the digest (status
"recorded", for the feed) and mails nothing. Plain ADD COLUMNs, as 0013 and 0015: a batch copy of
subscribers on SQLite would drop the index on lower(email).

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("feed_key", sa.String(32), nullable=True))
    op.add_column("subscribers", sa.Column("email_enabled", sa.Boolean, nullable=False, server_default=sa.true()))
    conn = op.get_bind()
    table = sa.table("subscribers", sa.column("id", sa.Integer), sa.column("feed_key", sa.String))
    for (sid,) in conn.execute(sa.select(table.c.id)).all():
        conn.execute(sa.update(table).where(table.c.id == sid).values(feed_key=secrets.token_urlsafe(12)))


def downgrade() -> None:
    op.drop_column("subscribers", "email_enabled")
    op.drop_column("subscribers", "feed_key")
