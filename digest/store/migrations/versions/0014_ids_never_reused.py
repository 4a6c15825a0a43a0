"""Ids that a signed link names are never given to another row on SQLite either (AUTOINCREMENT).

Without AUTOINCREMENT SQLite hands the highest id out again once its row is deleted: a subscriber
who deleted their data and the next one to subscribe shared an id, and the first one's old links
(manage, star, one-click unsubscribe, web view) acted on the second. PostgreSQL's sequences never
go back, so there is nothing to do there. The tables are copied into new ones declared with
AUTOINCREMENT (every row, index and constraint kept), the way SQLite documents for changes ALTER
TABLE cannot make, with foreign keys off for the copy (see digest.store.engine.migrate), and the
sequence starts above every id ever used that the tables still show.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The tables whose ids appear in links: subscribers ("s"), deliveries ("d"), papers ("p"). Sign-ups
# carry their own nonce in the confirmation link.
TABLES = ("subscribers", "deliveries", "papers")


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # An index on an expression is not reflected, so the copy would lose it: dropped, made again.
    op.drop_index("ix_subscribers_email_lower", table_name="subscribers")
    for name in TABLES:
        with op.batch_alter_table(name, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    op.create_index("ix_subscribers_email_lower", "subscribers", [sa.text("lower(email)")])


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
