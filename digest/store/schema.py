"""Table definitions used by the queries. The migrations under migrations/ create them."""

from __future__ import annotations

import secrets

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

metadata = MetaData()

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("location", Text, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_fetched_at", DateTime),
    Column("last_status", String(20)),
    Column("last_error", Text),
)

papers = Table(
    "papers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("canonical_id", String(600), nullable=False, unique=True),
    Column("arxiv_id", String(64), index=True),
    Column("version", Integer),
    Column("doi", String(300), index=True),
    Column("title_key", String(600), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False, default=""),
    Column("authors", JSON, nullable=False, default=list),
    Column("url", Text),
    Column("pdf_url", Text),
    Column("categories", JSON, nullable=False, default=list),
    Column("published", DateTime),
    Column("first_announce", String(20)),
    Column("upvotes", Integer),
    Column("source", String(200), nullable=False, default=""),
    Column("first_seen_at", DateTime, nullable=False, index=True),
    Column("updated_at", DateTime, nullable=False),
    # title, abstract and authors are readable text; where the feed gave LaTeX source (arXiv), it is
    # kept here for export. NULL: the text had no markup.
    Column("title_latex", Text),
    Column("abstract_latex", Text),
    Column("authors_latex", JSON),
    Column("comment", Text),  # the arXiv API's comment: where code and data links often are
    sqlite_autoincrement=True,  # ids in links are never handed out again (migration 0014)
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("keywords", JSON, nullable=False),
    Column("exclude", JSON, nullable=False, default=list),
    Column("top_k", Integer),
    Column("timezone", String(64)),  # None: schedule.timezone
    Column("delivery_hour", Integer),  # local hour the digest is due; None: schedule.delivery_hour
    Column("cadence", String(10), nullable=False, default="daily"),  # daily | weekly
    Column("paused", Boolean, nullable=False, default=False),
    Column("sources", JSON),  # source names to pick from; None or []: every source
    # Consecutive permanent refusals of the address; at delivery.max_hard_bounces it is suspended.
    Column("hard_bounces", Integer, nullable=False, default=0),
    Column("suspended_at", DateTime),
    Column("trending", Boolean, nullable=False, default=True),  # the "trending today" block, on or off
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("unsubscribed_at", DateTime),
    # Carried in every signed link to this reader ("k"): a new one ("sign out all my links") kills the
    # old links, and a row that is gone takes its links with it. A row without one accepts no link.
    Column("link_key", String(32), default=lambda: secrets.token_urlsafe(12)),
    # Rows from before link keys: their links mailed without one keep working until they sign out.
    Column("legacy_links", Boolean, nullable=False, default=False),
    # Carried in the private feed's signed address ("f"): a new one ("new feed address") kills the old
    # address only (migration 0022). A row without one has no feed.
    Column("feed_key", String(32), default=lambda: secrets.token_urlsafe(12)),
    # Off: "feed only", the daily run records the digest for the feed and mails nothing.
    Column("email_enabled", Boolean, nullable=False, default=True),
    # Names of authors the reader follows, as written (migration 0023); None or []: none.
    Column("authors", JSON),
    sqlite_autoincrement=True,  # ids in links are never handed out again (migration 0014)
)
# Addresses are looked up ignoring case. Not unique: rows that differ only in case from before that
# rule are kept as they were (migration 0011 reports them).
Index("ix_subscribers_email_lower", func.lower(subscribers.c.email))

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("digest_date", Date, nullable=False),
    # pending -> sending -> sent | failed | temp_failed | unknown; recorded: kept for the feed, never
    # mailed (the reader turned email off; see store/deliveries.py).
    Column("status", String(20), nullable=False),
    Column("message_id", String(300)),
    Column("n_picks", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("location", Text),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    Column("next_attempt_at", DateTime),  # a temp_failed or unknown row is not retried before this
    Column("claimed_by", String(200)),  # host:pid:token of the process holding it in "sending"
    Column("data_started_at", DateTime),  # DATA began on the current attempt: a crash after it is ambiguous
    Column("ambiguous", Integer, nullable=False, default=0),  # attempts that may or may not have arrived
    # "email", or "hook:<channels.id>" for a chat message (migration 0020): one row per channel and date.
    Column("channel", String(40), nullable=False, default="email", server_default="email"),
    UniqueConstraint("subscriber_id", "digest_date", "channel", name="uq_deliveries_subscriber_date_channel"),
    sqlite_autoincrement=True,  # ids in links are never handed out again (migration 0014)
)

# A subscriber's chat webhooks (digest/hooks/): url and token are secrets, never shown unmasked.
channels = Table(
    "channels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),  # slack | discord | matrix | json
    Column("url", Text, nullable=False),  # the webhook URL, or the Matrix homeserver
    Column("room_id", String(300)),  # Matrix only: !id:server or #alias:server
    Column("token", Text),  # Matrix only: the access token
    Column("paused_at", DateTime),  # after too many failed digests in a row; resumed by hand
    Column("consecutive_failures", Integer, nullable=False, default=0, server_default="0"),
    Column("last_error", Text),  # masked
    Column("created_at", DateTime, nullable=False),
    sqlite_autoincrement=True,
)

delivery_items = Table(
    "delivery_items",
    metadata,
    Column("delivery_id", Integer, ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True),
    Column("rank", Integer, primary_key=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("score", Float, nullable=False),
    Column("matched", JSON, nullable=False, default=list),
    Column("reason", Text, nullable=False, default=""),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE")),
    # impression (shown in a digest); later: click, star, dislike, unsubscribe.
    Column("kind", String(20), nullable=False),
    Column("origin", String(100), nullable=False, default=""),
    Column("delivery_id", Integer, ForeignKey("deliveries.id", ondelete="SET NULL")),
    Column("flagged", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_events_subscriber_kind", "subscriber_id", "kind"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest_date", Date, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(20), nullable=False),  # running, done, failed
    Column("counts", JSON, nullable=False, default=dict),
    Column("error", Text),
    # The sources that failed in this run's fetch: [{"name": ..., "error": ...}]; NULL: none failed.
    Column("failed_sources", JSON),
)

# One row per lease name ("scheduler"): the `digest serve` process that runs the scheduler.
scheduler_lease = Table(
    "scheduler_lease",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("owner", String(200), nullable=False),  # host:pid:random, one per process
    Column("acquired_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("next_wake_at", DateTime),
    Column("last_wake_at", DateTime),  # when the last wake finished: a hung job shows here
)

feature_stats = Table(
    "feature_stats",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("n_docs", Integer, nullable=False),
    Column("df", LargeBinary, nullable=False),  # compressed npz: hashed feature index -> document count
    Column("updated_at", DateTime, nullable=False),
    # The features.FEATURE_SET the counts were made with: another one means rebuild them all.
    Column("feature_set", Integer, nullable=False, server_default="1"),
)

# Each paper's hashed term counts, made once when it is stored: its vector under any day's idf
# without tokenising its text again (liked and training papers are read back every day).
paper_terms = Table(
    "paper_terms",
    metadata,
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("feature_set", Integer, nullable=False),
    Column("counts", LargeBinary, nullable=False),  # int32 feature indices, then float32 counts
)

subscriber_models = Table(
    "subscriber_models",
    metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("weights", LargeBinary, nullable=False),  # compressed npz of the learned weights
    Column("n_pos", Integer, nullable=False),
    Column("n_neg", Integer, nullable=False),
    Column("last_event_id", Integer, nullable=False),
    Column("trained_at", DateTime, nullable=False),
)

semantic_models = Table(
    "semantic_models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("blob", LargeBinary, nullable=False),
    Column("n_docs", Integer, nullable=False),
    Column("fitted_at", DateTime, nullable=False),
)

# Double opt-in: a sign-up waits here until its confirmation link is used (or it expires).
signups = Table(
    "signups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(254), nullable=False, index=True),
    # The mailbox the per-address limit counts (digest.addresses.mailbox_key: no case, no +tag).
    Column("mailbox", String(254), nullable=False, index=True),
    Column("nonce", String(64), nullable=False),  # in the signed link: a reused id cannot confirm
    Column("preferences", JSON, nullable=False),
    Column("ip", String(64), nullable=False, index=True),
    Column("consent_version", String(40), nullable=False),
    Column("consent_sha256", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False, index=True),
    Column("expires_at", DateTime, nullable=False),
    Column("confirmed_at", DateTime),
)

# Proof of consent: when, from where, to which wording (its text and hash).
consents = Table(
    "consents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("signed_up_at", DateTime, nullable=False),
    Column("signup_ip", String(64), nullable=False),
    Column("confirmed_at", DateTime, nullable=False),
    Column("confirm_ip", String(64), nullable=False),
    Column("wording_version", String(40), nullable=False),
    Column("wording_sha256", String(64), nullable=False),
    Column("wording", Text, nullable=False),
)

# Sentence-encoder vectors (the embed extra): one per paper and model, float16 bytes.
paper_embeddings = Table(
    "paper_embeddings",
    metadata,
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
)

# A keyword's vector, keyed by a hash of its text: embedded once, whoever subscribes with it.
text_embeddings = Table(
    "text_embeddings",
    metadata,
    Column("text_key", String(64), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
)
