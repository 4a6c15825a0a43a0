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
from digest.signing.links import LinkBuilder
from digest.store import deliveries as ledger
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.engine import create_db_engine, migrate
from digest.store.schema import deliveries, events, subscribers
from tests.web.test_web_pages import BASE, NOW, Site
from tests.web.test_web_pages import make_site as make_site  # noqa: F401 (the fixture)
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
        with engine.begin() as conn:  # rows as version 0013 stored them: plain SQL, not today's store code
            for address in ("ada@example.org", "bea@example.org"):
                conn.execute(text("INSERT INTO subscribers (email, keywords, exclude, active, paused, cadence, "
                                  "hard_bounces, trending, created_at, updated_at) VALUES (:a, '[\"x\"]', '[]', "
                                  "true, false, 'daily', 0, true, :t, :t)"), {"a": address, "t": NOW})
            ids = list(conn.execute(text("SELECT id FROM subscribers ORDER BY id")).scalars())
            for sid in ids:
                conn.execute(text("INSERT INTO deliveries (subscriber_id, digest_date, status, n_picks, attempts, "
                                  "ambiguous, created_at, updated_at) VALUES (:s, :d, 'sent', 0, 1, 0, :t, :t)"),
                             {"s": sid, "d": DAY, "t": NOW})
            conn.execute(text("INSERT INTO events (subscriber_id, kind, origin, flagged, created_at) "
                              "VALUES (:s, 'star', 'test', false, :t)"), {"s": ids[1], "t": NOW})
            before = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                      for t in (subscribers, deliveries, events)}
        migrate(engine, "0014")
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
            conn.execute(text("INSERT INTO subscribers (email, keywords, exclude, active, paused, cadence, "
                              "hard_bounces, trending, created_at, updated_at) VALUES ('cy@example.org', '[\"x\"]', "
                              "'[]', true, false, 'daily', 0, true, :t, :t)"), {"t": NOW})
            new_id = conn.execute(text("SELECT max(id) FROM subscribers")).scalar_one()
            assert new_id > max(ids)
        migrate(engine)  # 0015: a link key for every row, and the links mailed without one still work
        with engine.connect() as conn:
            rows = conn.execute(select(subscribers.c.link_key, subscribers.c.legacy_links)).all()
            assert rows and all(key and legacy for key, legacy in rows)
            assert len({key for key, _ in rows}) == len(rows)
    finally:
        engine.dispose()




def test_sign_out_all_my_links_kills_every_old_link_and_the_next_digest_brings_new_ones(web: Site) -> None:
    site, client = web, web.client()
    sid, did, pid = _subscribe_with_a_digest(site, "ada@example.org", "2411.00001")
    with site.app.engine.connect() as conn:
        paper = paper_store.papers_by_ids(conn, [pid])[pid]
    manage = urlsplit(site.links.manage_url(sid)).path
    old = [urlsplit(u).path for u in (site.links.view_url(sid, did), site.links.unsubscribe_url(sid),
                                      site.links.pick_links(sid, paper, did).star_url or "")]
    assert all(client.get(u).status_code == 200 for u in [manage, *old])  # live until the reader says

    def stars() -> int:
        with site.app.engine.connect() as conn:
            query = select(func.count()).select_from(events).where(events.c.kind == "star")
            return int(conn.execute(query).scalar_one())

    starred = stars()
    page = client.get(manage)
    assert "Sign out all my links" in page.text
    r = client.post(manage + "/signout", data=csrf_of(page))
    assert r.status_code == 200 and "Your links are signed out" in r.text
    assert client.get(manage).status_code == 404
    for url in old:
        assert client.get(url).status_code == 404, url
    assert stars() == starred  # the dead star link recorded nothing
    with site.app.engine.connect() as conn:
        assert sub_store.get_subscriber_by_id(conn, sid) is not None  # still subscribed
    fresh = urlsplit(site.links.manage_url(sid)).path  # the next digest's links
    assert client.get(fresh).status_code == 200
    assert client.post(manage + "/signout", data=csrf_of(client.get(fresh))).status_code == 404


def test_migration_0015_keeps_the_links_already_mailed_until_the_reader_signs_out(web: Site) -> None:
    site, client = web, web.client()
    sid, did, _ = _subscribe_with_a_digest(site, "ada@example.org", "2411.00001")
    with site.app.engine.begin() as conn:  # what 0015 makes of a row that was there before it
        conn.execute(subscribers.update().where(subscribers.c.id == sid).values(legacy_links=True))
    mailed_before = site.links.view_url(sid, did)  # with a key: fine either way
    assert client.get(urlsplit(mailed_before).path).status_code == 200
    no_key = LinkBuilder(BASE, site.signer).view_url(sid, did)  # as links were made before 0015
    assert client.get(urlsplit(no_key).path).status_code == 200
    manage = urlsplit(site.links.manage_url(sid)).path
    client.post(manage + "/signout", data=csrf_of(client.get(manage)))
    assert client.get(urlsplit(no_key).path).status_code == 404


def test_a_link_without_a_key_signed_before_the_row_existed_is_refused(web: Site) -> None:
    """On a database where an older version handed a deleted reader's id out again, the deleted
    reader's links (mailed without a key, before the new row existed) must not act on the new one."""
    from datetime import datetime, timedelta

    site, client = web, web.client()
    sid, did, _ = _subscribe_with_a_digest(site, "bea@example.org", "2411.00002")
    no_key = urlsplit(LinkBuilder(BASE, site.signer).view_url(sid, did)).path  # signed now
    with site.app.engine.begin() as conn:  # the row is younger than the link, as after an id came back
        conn.execute(subscribers.update().where(subscribers.c.id == sid)
                     .values(legacy_links=True, created_at=datetime.now() + timedelta(hours=1)))
    assert client.get(no_key).status_code == 404
    with site.app.engine.begin() as conn:  # a row that has no key accepts no link at all
        conn.execute(subscribers.update().where(subscribers.c.id == sid)
                     .values(link_key=None, created_at=datetime(2020, 1, 1)))
    assert client.get(no_key).status_code == 404


def test_moving_to_a_new_address_signs_out_the_old_mailboxs_links_and_the_export_has_no_key(web: Site) -> None:
    site, client = web, web.client()
    sid, did, _ = _subscribe_with_a_digest(site, "ada@example.org", "2411.00001")
    manage = urlsplit(site.links.manage_url(sid)).path
    view = urlsplit(site.links.view_url(sid, did)).path
    export = client.get(manage + "/export").json()
    assert "link_key" not in export["subscriber"] and "legacy_links" not in export["subscriber"]
    page = client.get(manage)
    form = {"email": "ada@newlab.org", "keywords": "sparse attention", "exclude": "", "sources": ["arxiv-cs"],
            "top_k": "5", "delivery_hour": "7", "timezone": "Europe/Berlin", "cadence": "daily", **csrf_of(page)}
    assert client.post(manage, data=form, follow_redirects=False).status_code == 303
    (confirm,) = [m for m in site.confirmations() if m["To"] == "ada@newlab.org"]
    text_body = confirm.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    path = urlsplit(next(w for w in text_body.split() if "/confirm/" in w)).path
    assert client.post(path, data=csrf_of(client.get(path))).status_code == 200
    with site.app.engine.connect() as conn:
        assert sub_store.get_subscriber_by_id(conn, sid).email == "ada@newlab.org"  # type: ignore[union-attr]
    assert client.get(view).status_code == 404 and client.get(manage).status_code == 404
