"""Papers, sources, subscribers, deliveries ledger with its items, impression events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("last_fetched_at", sa.DateTime),
        sa.Column("last_status", sa.String(20)),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "papers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("canonical_id", sa.String(600), nullable=False, unique=True),
        sa.Column("arxiv_id", sa.String(64), index=True),
        sa.Column("version", sa.Integer),
        sa.Column("doi", sa.String(300), index=True),
        sa.Column("title_key", sa.String(600), nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("pdf_url", sa.Text),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("published", sa.DateTime),
        sa.Column("first_announce", sa.String(20)),
        sa.Column("upvotes", sa.Integer),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("first_seen_at", sa.DateTime, nullable=False, index=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("exclude", sa.JSON, nullable=False),
        sa.Column("top_k", sa.Integer),
        sa.Column("timezone", sa.String(64)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("digest_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message_id", sa.String(300)),
        sa.Column("n_picks", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("location", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("sent_at", sa.DateTime),
        sa.UniqueConstraint("subscriber_id", "digest_date", name="uq_deliveries_subscriber_date"),
    )
    op.create_table(
        "delivery_items",
        sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("rank", sa.Integer, primary_key=True),
        sa.Column("paper_id", sa.Integer, sa.ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("matched", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("paper_id", sa.Integer, sa.ForeignKey("papers.id", ondelete="CASCADE")),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("origin", sa.String(100), nullable=False),
        sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="SET NULL")),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_events_subscriber_kind", "events", ["subscriber_id", "kind"])


def downgrade() -> None:
    for table in ("events", "delivery_items", "deliveries", "subscribers", "papers", "sources"):
        op.drop_table(table)
