"""Migration 0020 on SQLite and PostgreSQL: every ledger row kept as an email row, the key now per
channel, the sequence and the address index intact."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from digest.domain import Paper, Pick
from digest.store import deliveries as ledger
from digest.store import papers as paper_store
from digest.store.engine import create_db_engine, migrate

NOW = datetime(2026, 11, 29, 6, 0)
DAY = date(2026, 11, 29)


def test_0020_keeps_the_ledger_and_keys_it_per_channel(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        migrate(engine, "0016")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO subscribers (email, keywords, exclude, active, paused, cadence, "
                              "hard_bounces, created_at, updated_at, trending, legacy_links) VALUES "
                              "('ada@example.org', '[\"x\"]', '[]', true, false, 'daily', 0, :t, :t, true, false)"),
                         {"t": NOW})
            sid = conn.execute(text("SELECT id FROM subscribers")).scalar_one()
            conn.execute(text("INSERT INTO deliveries (subscriber_id, digest_date, status, n_picks, attempts, "
                              "ambiguous, created_at, updated_at) VALUES (:s, :d, 'sent', 1, 1, 0, :t, :t)"),
                         {"s": sid, "d": DAY, "t": NOW})
        migrate(engine)
        with engine.begin() as conn:
            (old,) = ledger.deliveries_for_date(conn, DAY, channel=None)
            assert old.channel == "email" and old.status == "sent"
            _, stored = paper_store.upsert_papers(conn, [Paper(canonical_id="arxiv:1", title="T", id=None)], NOW)
            # A second digest date gets its email row and a chat row with the same picks.
            first = ledger.create_delivery(conn, subscriber_id=sid, digest_date=date(2026, 11, 30),
                                           picks=[Pick(stored[0], 0.5)], now=NOW)
            assert first is not None and first.id > old.id
            (chat,) = ledger.add_channels(conn, first, [ledger.hook_channel(7)], NOW)
            assert chat.channel == "hook:7" and [p.paper_id for p in ledger.stored_picks(conn, chat.id)] == [
                stored[0].id]
            assert ledger.add_channels(conn, first, [ledger.hook_channel(7)], NOW) == []  # never twice
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("INSERT INTO deliveries (subscriber_id, digest_date, status, n_picks, attempts, "
                              "ambiguous, created_at, updated_at, channel) VALUES (:s, :d, 'sent', 1, 1, 0, :t, :t, "
                              "'email')"), {"s": sid, "d": DAY, "t": NOW})
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                names = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars())
                assert "ix_subscribers_email_lower" in names
                table = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'deliveries'")).scalar_one()
                assert "AUTOINCREMENT" in table
    finally:
        engine.dispose()
