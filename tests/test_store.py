"""The store on a real SQLite file and a real PostgreSQL database: migrations, dedup, ledger."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from digest.domain import Paper, Pick
from digest.errors import StoreError
from digest.store import deliveries as ledger
from digest.store import events as event_store
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.engine import create_db_engine, current_revision, head_revision, migrate, open_engine
from digest.store.schema import papers

NOW = datetime(2026, 11, 29, 6, 0)


def _paper(n: int, **kw: object) -> Paper:
    base = dict(
        canonical_id=f"arxiv:2411.{n:05d}",
        title=f"Paper number {n}",
        abstract=f"Abstract {n}",
        authors=("A. Author",),
        arxiv_id=f"2411.{n:05d}",
        version=1,
        url=f"https://arxiv.org/abs/2411.{n:05d}",
        announce_type="new",
        source="test",
    )
    base.update(kw)
    return Paper(**base)  # type: ignore[arg-type]


def test_upgrade_keeps_data(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as conn:
        # Plain SQL: the table object knows columns that revision 0001 does not have yet.
        conn.execute(text("INSERT INTO subscribers (email, keywords, exclude, active, created_at, updated_at) "
                          "VALUES ('a@example.org', '[\"x\"]', '[]', true, :now, :now)"), {"now": NOW})
        paper_store.upsert_papers(conn, [_paper(1), _paper(2)], NOW)
    engine.dispose()
    engine = open_engine(db_url)  # brings it to head
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 2
        sub = sub_store.get_subscriber(conn, "a@example.org")
        assert sub is not None and sub.keywords == ("x",) and sub.cadence == "daily" and not sub.paused
    engine.dispose()


def test_dedup_across_sources_and_versions(db_url: str) -> None:
    engine = open_engine(db_url)
    with engine.begin() as conn:
        counts, fresh = paper_store.upsert_papers(conn, [_paper(1), _paper(2), _paper(2, version=2)], NOW,
                                                  arxiv_authority=True)
        assert (counts.new, counts.updated, counts.duplicate) == (2, 0, 0)
        assert len(fresh) == 2
        # Same day again, then a new version, then the same paper found by DOI in a journal feed.
        counts, _ = paper_store.upsert_papers(conn, [_paper(1)], NOW, arxiv_authority=True)
        assert (counts.new, counts.duplicate) == (0, 1)
        counts, _ = paper_store.upsert_papers(
            conn, [_paper(1, version=3, title="Paper number 1, revised", announce_type="replace",
                          doi="10.1000/x1")], NOW + timedelta(days=1), arxiv_authority=True)
        assert counts.updated == 1
        counts, _ = paper_store.upsert_papers(
            conn, [Paper(canonical_id="doi:10.1000/x1", title="Paper number 1 revised", doi="10.1000/x1",
                         source="journal")], NOW + timedelta(days=2))
        assert (counts.new, counts.duplicate) == (0, 1)
        row = conn.execute(select(papers).where(papers.c.arxiv_id == "2411.00001")).one()
    assert row.version == 3 and row.title == "Paper number 1, revised"
    assert row.first_seen_at == NOW  # an update never makes a paper new again
    assert row.first_announce == "new"
    engine.dispose()


def test_only_arxiv_changes_the_text_of_an_arxiv_paper(db_url: str) -> None:
    engine = open_engine(db_url)
    phish = _paper(1, version=9, title="Your account is locked: verify at evil.example", abstract="Click here",
                   doi="10.1000/evil", source="journal")
    with engine.begin() as conn:
        paper_store.upsert_papers(conn, [_paper(1)], NOW, arxiv_authority=True)
        counts, _ = paper_store.upsert_papers(conn, [phish], NOW)  # a later version, from another feed
        row = conn.execute(select(papers).where(papers.c.arxiv_id == "2411.00001")).one()
        assert (counts.updated, counts.duplicate) == (0, 1)
        assert (row.title, row.abstract, row.version, row.doi) == ("Paper number 1", "Abstract 1", 1, None)
        # The reverse order: first seen in another feed, then arXiv's own listing takes the text over.
        counts, _ = paper_store.upsert_papers(conn, [_paper(2, version=9, title="Phish", abstract="")], NOW)
        assert counts.new == 1
        counts, _ = paper_store.upsert_papers(conn, [_paper(2)], NOW, arxiv_authority=True)
        row = conn.execute(select(papers).where(papers.c.arxiv_id == "2411.00002")).one()
    assert counts.updated == 1
    assert (row.title, row.abstract, row.version) == ("Paper number 2", "Abstract 2", 1)
    engine.dispose()


def test_title_dedup_for_papers_without_ids(db_url: str) -> None:
    engine = open_engine(db_url)
    a = Paper(canonical_id="title:a study of moths", title="A Study of Moths", source="j1")
    b = Paper(canonical_id="title:a study of moths", title="A study of moths.", source="j2")
    with engine.begin() as conn:
        c1, _ = paper_store.upsert_papers(conn, [a], NOW)
        c2, _ = paper_store.upsert_papers(conn, [b], NOW)
    assert (c1.new, c2.new, c2.duplicate) == (1, 0, 1)
    engine.dispose()


def test_candidates_window_and_replacements(db_url: str) -> None:
    engine = open_engine(db_url)
    with engine.begin() as conn:
        paper_store.upsert_papers(conn, [_paper(1)], NOW - timedelta(days=10))
        paper_store.upsert_papers(conn, [_paper(2), _paper(3, announce_type="replace"),
                                         _paper(4, announce_type="cross")], NOW)
        got = paper_store.candidate_papers(conn, since=NOW - timedelta(days=3), until=NOW + timedelta(hours=1))
        with_repl = paper_store.candidate_papers(conn, since=NOW - timedelta(days=3), until=NOW + timedelta(hours=1),
                                                 include_replacements=True)
    assert [p.arxiv_id for p in got] == ["2411.00002", "2411.00004"]
    assert {p.arxiv_id for p in with_repl} == {"2411.00002", "2411.00003", "2411.00004"}
    engine.dispose()


def test_ledger_records_many_digests_at_once_and_skips_rows_made_by_another_run(db_url: str) -> None:
    engine = open_engine(db_url)
    with engine.begin() as conn:
        subs = [sub_store.upsert_subscriber(conn, email=f"m{i}@example.org", keywords=["x"], now=NOW)[0]
                for i in range(3)]
        _, fresh = paper_store.upsert_papers(conn, [_paper(1), _paper(2), _paper(3)], NOW)
    picks = [Pick(paper=p, score=0.5, matched=("x",), reason="Matches: x") for p in fresh]
    day = date(2026, 11, 29)
    with engine.begin() as conn:  # another run recorded the second subscriber's digest first
        first = ledger.create_delivery(conn, subscriber_id=subs[1].id, digest_date=day, picks=picks[:1], now=NOW)
    assert first is not None
    plans = [ledger.Planned(subs[0].id, picks[:2]), ledger.Planned(subs[1].id, picks),
             ledger.Planned(subs[2].id, picks[2:], trending=picks[:1])]
    with engine.begin() as conn:
        rows = ledger.create_deliveries(conn, plans, digest_date=day, now=NOW)
    assert set(rows) == {subs[0].id, subs[2].id}
    assert rows[subs[0].id].status == "pending" and rows[subs[0].id].n_picks == 2
    with engine.connect() as conn:
        assert [i.paper_id for i in ledger.stored_picks(conn, rows[subs[0].id].id)] == [fresh[0].id, fresh[1].id]
        third = ledger.stored_picks(conn, rows[subs[2].id].id)
        assert [(i.rank, i.paper_id) for i in third] == [(0, fresh[2].id), (ledger.TRENDING_RANK_BASE, fresh[0].id)]
        # The other run's row keeps its one pick; this run's three are not added to it.
        assert [i.paper_id for i in ledger.stored_picks(conn, first.id)] == [fresh[0].id]
        shown = {(lab.subscriber_id, lab.paper_id) for lab in event_store.impressions_for(conn, [s.id for s in subs])}
    assert shown == {(subs[0].id, fresh[0].id), (subs[0].id, fresh[1].id), (subs[1].id, fresh[0].id),
                     (subs[2].id, fresh[2].id), (subs[2].id, fresh[0].id)}
    engine.dispose()


def test_ledger_unique_per_subscriber_and_date(db_url: str) -> None:
    engine = open_engine(db_url)
    with engine.begin() as conn:
        sub, _ = sub_store.upsert_subscriber(conn, email="a@example.org", keywords=["x"], now=NOW)
        _, fresh = paper_store.upsert_papers(conn, [_paper(1), _paper(2)], NOW)
    picks = [Pick(paper=p, score=0.5, matched=("x",), reason="Matches: x") for p in fresh]
    day = date(2026, 11, 29)
    with engine.begin() as conn:
        row = ledger.create_delivery(conn, subscriber_id=sub.id, digest_date=day, picks=picks, now=NOW)
    assert row is not None and row.status == "pending" and row.n_picks == 2
    with engine.begin() as conn:
        assert ledger.create_delivery(conn, subscriber_id=sub.id, digest_date=day, picks=picks, now=NOW) is None
        shown = {lab.paper_id for lab in event_store.impressions_for(conn, [sub.id])}
        assert shown == {p.id for p in fresh}
    with engine.begin() as conn:
        assert ledger.claim(conn, row.id, NOW)
        assert not ledger.claim(conn, row.id, NOW)  # a second run cannot take it
        # ...unless the run that took it died long ago: then it is taken over first.
        held = ledger.get_by_id(conn, row.id)
        assert held is not None and ledger.triage(held, NOW, timedelta(days=1)) == "in_progress"
        later = NOW + ledger.STALE_SENDING + timedelta(seconds=1)
        assert ledger.triage(held, later, timedelta(days=1)) == "abandoned"
        assert ledger.take_over(conn, held, later) and not ledger.take_over(conn, held, later)
        assert ledger.claim(conn, row.id, later)
        ledger.finish(conn, row.id, status="sent", now=NOW, location="/x.eml")
        assert not ledger.claim(conn, row.id, NOW + timedelta(days=1))
    with engine.connect() as conn:
        stored = ledger.stored_picks(conn, row.id)
    assert [s.paper_id for s in stored] == [p.id for p in fresh]
    engine.dispose()


def test_unreachable_database_is_one_line_with_password_masked() -> None:
    with pytest.raises(StoreError) as err:
        open_engine("postgresql+psycopg://digest:s3cret@127.0.0.1:1/none")
    msg = str(err.value)
    assert "s3cret" not in msg and "127.0.0.1:1" in msg and "\n" not in msg
    with pytest.raises(StoreError, match="not a database URL"):
        open_engine("not a url at all")
