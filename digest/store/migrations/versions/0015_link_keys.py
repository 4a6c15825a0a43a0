"""A key per subscriber inside every signed link, so that links die with the row or on request.

Every existing row gets a key, and keeps accepting the links it was mailed without one
(legacy_links) until the reader signs out all their links. Plain ADD COLUMNs: a batch copy of
subscribers on SQLite would drop the index on lower(email).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("link_key", sa.String(32), nullable=True))
    op.add_column("subscribers", sa.Column("legacy_links", sa.Boolean, nullable=False, server_default=sa.false()))
    conn = op.get_bind()
    table = sa.table("subscribers", sa.column("id", sa.Integer), sa.column("link_key", sa.String),
                     sa.column("legacy_links", sa.Boolean))
    for (sid,) in conn.execute(sa.select(table.c.id)).all():
        conn.execute(sa.update(table).where(table.c.id == sid)
                     .values(link_key=secrets.token_urlsafe(12), legacy_links=True))


def downgrade() -> None:
    op.drop_column("subscribers", "legacy_links")
    op.drop_column("subscribers", "link_key")
