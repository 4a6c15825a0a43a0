"""Issue 15, item 1: a deleted subscriber's links stay dead; no id a link names is handed out again.

On SQLite an integer key without AUTOINCREMENT hands the highest id out again once its row is
gone, so the next subscriber used to inherit the deleted one's id and with it their old links.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, text

from digest.domain import Paper, Pick
from digest.store import deliveries as ledger
from digest.store import events as event_store
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.engine import create_db_engine, migrate
from digest.store.schema import deliveries, events, subscribers
from tests.test_web_pages import NOW, Site
from tests.test_web_pages import make_site as make_site  # noqa: F401 (the fixture)
from tests.web_helpers import csrf_of

DAY = date(2026, 11, 29)


@pytest.fixture
def web(make_site: Any) -> Site:  # noqa: F811 (the fixture imported above)
    return make_site()  # type: ignore[no-any-return]


def _subscribe_with_a_digest(site: Site, address: str, paper_title: str) -> tuple[int, int, int]:
    paper = Paper(canonical_id=f"arxiv:{paper_title}", title=paper_title, url=f"https://arxiv.org/abs/{paper_title}",
                  arxiv_id=paper_title, source="arxiv-cs")
    with site.app.engine.begin() as conn:
        sub, _ = sub_store.upsert_subscriber(conn, email=address, keywords=["sparse attention"], now=NOW)
        _, (stored,) = paper_store.upsert_papers(conn, [paper], NOW)
        d = ledger.create_delivery(conn, subscriber_id=sub.id, digest_date=DAY, picks=[Pick(stored, 0.5)], now=NOW)
        assert d is not None and stored.id is not None
    return sub.id, d.id, stored.id


def test_a_deleted_readers_old_links_never_reach_the_next_reader(web: Site) -> None:
    site = web
    client = site.client()
    a_sid, a_did, a_pid = _subscribe_with_a_digest(site, "ada@example.org", "2411.00001")
    with site.app.engine.connect() as conn:
        a_paper = paper_store.papers_by_ids(conn, [a_pid])[a_pid]
    old = {
        "manage": urlsplit(site.links.manage_url(a_sid)).path,
        "view": urlsplit(site.links.view_url(a_sid, a_did)).path,
        "unsubscribe": urlsplit(site.links.unsubscribe_url(a_sid)).path,
    }
    picks = site.links.pick_links(a_sid, a_paper, a_did)
    old["star"] = urlsplit(picks.star_url or "").path
    old["less"] = urlsplit(picks.dislike_url or "").path

    # Ada deletes her data on the manage page; Bea subscribes and gets a digest.
    page = client.get(old["manage"] + "/delete")
    assert client.post(old["manage"] + "/delete", data=csrf_of(page)).status_code == 200
    b_sid, b_did, _ = _subscribe_with_a_digest(site, "bea@example.org", "2411.00002")
    assert b_sid != a_sid and b_did != a_did  # never handed out again, on both databases

    assert client.get(old["manage"]).status_code == 404
    assert client.get(old["manage"] + "/export").status_code == 404
    assert client.get(old["view"]).status_code == 404
    assert client.get(old["star"]).status_code >= 400
    assert client.get(old["less"]).status_code >= 400
    r = client.post(old["unsubscribe"], content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code >= 400 or "not" in r.text.lower()
    with site.app.engine.connect() as conn:
        bea = sub_store.get_subscriber_by_id(conn, b_sid)
        assert bea is not None and bea.active and bea.email == "bea@example.org"
        assert conn.execute(select(func.count()).select_from(events)
                            .where(events.c.kind.in_(["star", "dislike"]))).scalar_one() == 0


def test_migration_0014_keeps_every_row_and_never_hands_an_id_out_again(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        migrate(engine, "0013")
        with engine.begin() as conn:
            for address in ("ada@example.org", "bea@example.org"):
                sub_store.upsert_subscriber(conn, email=address, keywords=["x"], now=NOW)
            _, stored = paper_store.upsert_papers(conn, [Paper(canonical_id="arxiv:1", title="One", arxiv_id="1")], NOW)
            ids = [s.id for s in sub_store.list_subscribers(conn)]
            for sid in ids:
                ledger.create_delivery(conn, subscriber_id=sid, digest_date=DAY, picks=[Pick(stored[0], 0.5)], now=NOW)
            event_store.set_opinion(conn, subscriber_id=ids[1], paper_id=stored[0].id or 0, kind="star",
                                    origin="test", now=NOW)
            before = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                      for t in (subscribers, deliveries, events)}
        migrate(engine)
        with engine.begin() as conn:
            after = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                     for t in (subscribers, deliveries, events)}
            assert after == before  # a copy with foreign keys on would have cascaded them away
            if engine.dialect.name == "sqlite":
                ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'subscribers'")).scalar_one()
                assert "AUTOINCREMENT" in ddl
                index = conn.execute(text("SELECT name FROM sqlite_master WHERE name = 'ix_subscribers_email_lower'"))
                assert index.scalar() is not None
                assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            # The newest reader leaves; the next one gets a new id, and the cascade still works.
            conn.execute(subscribers.delete().where(subscribers.c.id == max(ids)))
            assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == before["deliveries"] - 1
            new, _ = sub_store.upsert_subscriber(conn, email="cy@example.org", keywords=["x"], now=NOW)
            assert new.id > max(ids)
    finally:
        engine.dispose()


