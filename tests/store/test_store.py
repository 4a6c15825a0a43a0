"""The store on a real SQLite file and a real PostgreSQL database: migrations, dedup, ledger."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import func, select, text

from digest.domain import Paper, Pick
from digest.errors import StoreError
from digest.identity import normalise_title
from digest.store import deliveries as ledger
from digest.store import events as event_store
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.engine import _alembic_config, create_db_engine, current_revision, head_revision, migrate, open_engine
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
        for n in (1, 2):
            conn.execute(text("INSERT INTO papers (canonical_id, arxiv_id, title_key, title, abstract, authors, "
                              "categories, source, first_seen_at, updated_at) VALUES (:cid, :aid, :key, :title, '', "
                              "'[]', '[]', 'test', :now, :now)"),
                         {"cid": f"arxiv:2411.{n:05d}", "aid": f"2411.{n:05d}", "key": f"paper {n}",
                          "title": f"Paper {n}", "now": NOW})
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


# ---- migration 0011: addresses normalised, compared ignoring case --------------------------------
_OLD_SUBSCRIBERS = {  # as stored before 0011 -> expected after
    "Ada@Example.org": "Ada@Example.org",  # these two are one mailbox: reported, both left as they were
    "ada@example.org": "ada@example.org",
    "bob@Example.ORG": "bob@example.org",  # the domain lowercased, the local part as typed
    "carol@b\u00fccher.example": "carol@xn--bcher-kva.example",  # IDNA for sending
    "dave@xn--bcher-kva.example": "dave@xn--bcher-kva.example",  # these two too: reported, left
    "Dave@B\u00dcCHER.example": "Dave@B\u00dcCHER.example",
    "a(comment)@example.org": "a(comment)@example.org",  # refused by the rule: reported, left
    "eve@lab": "eve@lab",
}


def test_migration_0011_normalises_stored_addresses_and_reports_what_it_leaves(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_db_engine(db_url)
    try:
        migrate(engine, "0009")
        with engine.begin() as conn:
            for email in _OLD_SUBSCRIBERS:
                conn.execute(text("INSERT INTO subscribers (email, keywords, exclude, active, paused, cadence, "
                                  "hard_bounces, created_at, updated_at) VALUES (:e, '[\"x\"]', '[]', true, false, "
                                  "'daily', 0, :t, :t)"), {"e": email, "t": NOW})
            for email in ("Victim+x@Example.ORG", "victim(1)@example.org"):
                conn.execute(text("INSERT INTO signups (email, nonce, preferences, ip, consent_version, "
                                  "consent_sha256, created_at, expires_at) VALUES (:e, 'n', '{}', '127.0.0.1', "
                                  "'1', 'h', :t, :t)"), {"e": email, "t": NOW})
        with caplog.at_level("WARNING", logger="digest.store.migrations"):
            migrate(engine)
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT email FROM subscribers ORDER BY id")).scalars().all()
            signed = conn.execute(text("SELECT email, mailbox FROM signups ORDER BY id")).all()
            assert stored == list(_OLD_SUBSCRIBERS.values())
            assert [tuple(r) for r in signed] == [("Victim+x@example.org", "victim@example.org"),
                                                 ("victim(1)@example.org", "victim(1)@example.org")]
            # Found whatever the case typed; of two that differ only in case, the older.
            bob = sub_store.get_subscriber(conn, "BOB@EXAMPLE.ORG")
            assert bob is not None and bob.email == "bob@example.org"
            ada = sub_store.get_subscriber(conn, "ADA@example.org")
            assert ada is not None and ada.email == "Ada@Example.org"
        report = " ".join(r.getMessage() for r in caplog.records if r.name == "digest.store.migrations")
        assert "not merged" in report
        assert "'Ada@Example.org' (subscriber 1) and 'ada@example.org' (subscriber 2)" in report
        assert "'dave@xn--bcher-kva.example' (subscriber 5) and 'Dave@B\u00dcCHER.example' (subscriber 6)" in report
        assert "not valid" in report and "'a(comment)@example.org' (subscriber 7)" in report and "'eve@lab'" in report
        assert "bob@" not in report and "carol@" not in report
    finally:
        engine.dispose()


def test_migration_0011_goes_down_again(db_url: str) -> None:
    from alembic import command as alembic_command
    from sqlalchemy import inspect

    from digest.store.engine import _alembic_config

    engine = create_db_engine(db_url)
    try:
        migrate(engine)
        cfg = _alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            alembic_command.downgrade(cfg, "0009")
        assert "mailbox" not in {c["name"] for c in inspect(engine).get_columns("signups")}
        migrate(engine)
        assert "mailbox" in {c["name"] for c in inspect(engine).get_columns("signups")}
    finally:
        engine.dispose()


def test_migration_0012_makes_stored_latex_readable_and_keeps_the_source(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate(engine, "0009")
    insert = text("INSERT INTO papers (canonical_id, arxiv_id, title_key, title, abstract, authors, categories, "
                  "source, first_seen_at, updated_at) VALUES (:cid, :aid, :key, :title, :abstract, :authors, '[]', "
                  "'arxiv', :now, :now)")
    with engine.begin() as conn:
        conn.execute(insert, {"cid": "arxiv:2411.00001", "aid": "2411.00001", "key": "x", "now": NOW,
                              "title": r"Superconductivity in Pb$_{0.64}$Sn$_{0.36}$Te",
                              "abstract": r"We improve $T_c$ by 12% over G\"unther's $\alpha$-method.",
                              "authors": json.dumps([r"Pietro Li\`o", "Ada Lovelace"])})
        conn.execute(insert, {"cid": "arxiv:2411.00002", "aid": "2411.00002", "key": "plain title", "now": NOW,
                              "title": "Plain title", "abstract": "Nothing to convert, 100% plain.",
                              "authors": json.dumps(["Grace Hopper"])})
        pid = conn.execute(text("SELECT id FROM papers WHERE arxiv_id = '2411.00001'")).scalar_one()
        conn.execute(text("INSERT INTO paper_terms (paper_id, feature_set, counts) VALUES (:p, 1, :c)"),
                     {"p": pid, "c": b"old"})
    migrate(engine)
    with engine.connect() as conn:
        rows = {r.arxiv_id: r for r in conn.execute(select(papers))}
        terms = conn.execute(text("SELECT count(*) FROM paper_terms")).scalar_one()
    latex, plain = rows["2411.00001"], rows["2411.00002"]
    assert latex.title == "Superconductivity in Pb0.64Sn0.36Te"
    assert latex.abstract == "We improve T_c by 12% over Günther's α-method."
    assert latex.authors == ["Pietro Liò", "Ada Lovelace"]
    assert latex.title_latex == r"Superconductivity in Pb$_{0.64}$Sn$_{0.36}$Te"  # the source, for export
    assert latex.authors_latex == [r"Pietro Li\`o", "Ada Lovelace"]
    assert latex.title_key == normalise_title("Superconductivity in Pb0.64Sn0.36Te")  # dedup by title still finds it
    assert terms == 0  # counted from the old text: made again at the next run
    assert (plain.title, plain.title_latex, plain.abstract_latex, plain.authors_latex) == (
        "Plain title", None, None, None)
    with engine.begin() as conn:  # and back: the source text returns to its place
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0009")
    with engine.connect() as conn:
        back = conn.execute(text("SELECT title, authors FROM papers WHERE arxiv_id = '2411.00001'")).one()
    assert back.title == r"Superconductivity in Pb$_{0.64}$Sn$_{0.36}$Te"
    engine.dispose()


def test_export_keeps_the_latex_source_beside_the_readable_title(sqlite_url: str) -> None:
    from digest.ingest.latex import readable_paper
    from digest.store import learning
    from digest.store.personal_data import export_subscriber

    engine = open_engine(sqlite_url)
    with engine.begin() as conn:
        sub, _ = sub_store.upsert_subscriber(conn, email="a@example.org", keywords=["x"], now=NOW)
        paper = readable_paper(_paper(1, title=r"Phases of Pb$_{0.64}$Sn$_{0.36}$Te"))
        _, (stored,) = paper_store.upsert_papers(conn, [paper], NOW)
        learning.add_stars(conn, sub.id, [stored.id], "import", NOW)
        data = export_subscriber(conn, sub.id)
    engine.dispose()
    assert data is not None
    (star,) = [e for e in data["events"] if e["kind"] == "star"]
    assert star["title"] == "Phases of Pb0.64Sn0.36Te"
    assert star["title_latex"] == r"Phases of Pb$_{0.64}$Sn$_{0.36}$Te"


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    from digest.store.engine import _head_from_files

    assert _head_from_files() == head_revision()


def test_migration_0013_keeps_every_reader_on_the_trending_block_and_the_address_index(db_url: str) -> None:
    from sqlalchemy import inspect

    engine = create_db_engine(db_url)
    try:
        migrate(engine, "0012")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO subscribers (email, keywords, exclude, active, paused, cadence, "
                              "hard_bounces, created_at, updated_at) VALUES ('ada@example.org', '[\"x\"]', '[]', "
                              "true, false, 'daily', 0, :t, :t)"), {"t": NOW})
        migrate(engine)
        with engine.begin() as conn:
            sub = sub_store.get_subscriber(conn, "ADA@example.org")
            assert sub is not None and sub.trending is True
            sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=None, trending=False, now=NOW)
            again = sub_store.get_subscriber(conn, "ada@example.org")
            assert again is not None and again.trending is False and again.keywords == ("x",)
        with engine.connect() as conn:
            names = {i["name"] for i in inspect(conn).get_indexes("subscribers")}
            if engine.dialect.name == "sqlite":  # SQLAlchemy does not reflect expression indexes there
                names |= set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars())
        assert "ix_subscribers_email_lower" in names
    finally:
        engine.dispose()


def test_migration_0023_adds_followed_authors_and_goes_down_keeping_the_subscriber(db_url: str) -> None:
    from sqlalchemy import inspect

    engine = create_db_engine(db_url)
    try:
        migrate(engine, "0022")
        with engine.begin() as conn:  # a subscriber from before: follows no one
            conn.execute(text("INSERT INTO subscribers (email, keywords, exclude, cadence, paused, hard_bounces, "
                              "trending, active, legacy_links, email_enabled, created_at, updated_at) VALUES "
                              "('ada@example.org', '[\"graphs\"]', '[]', 'daily', false, 0, true, true, false, true, "
                              "'2026-12-01', '2026-12-01')"))
        migrate(engine)
        with engine.begin() as conn:
            sub = sub_store.get_subscriber(conn, "ada@example.org")
            assert sub is not None and sub.authors == () and sub.keywords == ("graphs",)
            sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=None, authors=["Max Welling"],
                                        now=datetime(2026, 12, 5))
            assert sub_store.get_subscriber(conn, "ada@example.org").authors == ("Max Welling",)  # type: ignore[union-attr]
        with engine.begin() as conn:
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0022")
        assert "authors" not in {c["name"] for c in inspect(engine).get_columns("subscribers")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT keywords FROM subscribers")).scalar() is not None
    finally:
        engine.dispose()
