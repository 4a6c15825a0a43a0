"""Full-text search over the stored papers (digest.store.search), on a real SQLite file and a real
PostgreSQL database, with a real arXiv day (1,504 papers) stored through the store's own upsert."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, text, update

from digest.domain import Paper
from digest.ingest.sources import parse_feed
from digest.store import papers as paper_store
from digest.store.engine import create_db_engine, migrate, open_engine
from digest.store.schema import papers
from digest.store.search import MAX_WORDS, query_words, search_papers

FEED = Path(__file__).parent.parent / "fixtures" / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"
NOW = datetime(2026, 12, 5, 6, 0)
DAY = parse_feed(FEED.read_bytes(), source_name="arxiv").papers


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = open_engine(db_url)
    with eng.begin() as conn:
        paper_store.upsert_papers(conn, DAY, NOW)
    yield eng
    eng.dispose()


def _titles(engine: Engine, q: str, **kw: int) -> list[str]:
    with engine.connect() as conn:
        return [p.title for p in search_papers(conn, q, **kw).papers]


def test_every_word_must_match_and_titles_rank_first(engine: Engine) -> None:
    got = _titles(engine, "superconducting quantum processor")
    assert got, "a phrase of the day's titles finds papers"
    assert got[0] == ("Demonstrating a universal logical gate set in error-detecting surface codes on a "
                      "superconducting quantum processor")
    for title in got:  # each paper holds all three words somewhere; stemming finds "processors"
        with engine.connect() as conn:
            paper = next(p for p in search_papers(conn, "superconducting quantum processor", limit=100).papers
                         if p.title == title)
        body = (paper.title + " " + paper.abstract).lower()
        assert "superconduct" in body and "quantum" in body and "processor" in body


def test_authors_are_found_with_or_without_their_accents(engine: Engine) -> None:
    with engine.connect() as conn:
        plain = search_papers(conn, "Zygierewicz").papers
        accented = search_papers(conn, "Żygierewicz").papers
    assert plain and [p.id for p in plain] == [p.id for p in accented]
    assert all(any("Żygierewicz" in a for a in p.authors) for p in plain)


def test_an_arxiv_id_finds_its_paper_first(engine: Engine) -> None:
    target = next(p for p in DAY if p.arxiv_id)
    for q in (target.arxiv_id, f"arXiv:{target.arxiv_id}v3", f"  {target.arxiv_id} "):
        assert q is not None
        assert _titles(engine, q)[0] == target.title


HOSTILE = ['"', 'title:quantum', "quantum OR", "NEAR(a b)", "*", "-quantum", "quantum AND NOT", "a:b:c",
           "'; DROP TABLE papers; --", "\x00quantum", "𝔮uantum", "(" * 300, "quantum " * 2000, "", "   ", "_"]


def test_any_string_answers_with_papers_or_none(engine: Engine) -> None:
    with engine.connect() as conn:
        for q in HOSTILE:
            page = search_papers(conn, q)
            assert isinstance(page.papers, list), q
        assert conn.execute(text("SELECT count(*) FROM papers")).scalar_one() == len(DAY)  # nothing harmed
        assert search_papers(conn, "quantum " * 2000).papers == search_papers(conn, "quantum").papers


def test_query_words_are_bounded_plain_words() -> None:
    assert query_words('Graph "neural" networks: title:GNN OR *') == ["graph", "neural", "networks", "title",
                                                                       "gnn", "or"]
    assert len(query_words("word " * 1000)) == MAX_WORDS


def test_pages_are_disjoint_and_say_when_more_follow(engine: Engine) -> None:
    with engine.connect() as conn:
        whole = search_papers(conn, "learning", limit=100).papers
        assert len(whole) > 30
        first = search_papers(conn, "learning", limit=10)
        second = search_papers(conn, "learning", limit=10, offset=10)
        last = search_papers(conn, "learning", limit=100, offset=len(whole) - 5)
    assert first.has_more and second.has_more
    assert [p.id for p in first.papers + second.papers] == [p.id for p in whole[:20]]
    ids = [p.id for p in search_papers_all(engine, "learning")]
    assert len(ids) == len(set(ids))
    assert len(last.papers) <= 5 or last.has_more


def search_papers_all(engine: Engine, q: str) -> list[Paper]:
    out: list[Paper] = []
    with engine.connect() as conn:
        while True:
            page = search_papers(conn, q, limit=100, offset=len(out))
            out += page.papers
            if not page.has_more:
                return out


def test_the_index_follows_changes_and_removals(engine: Engine) -> None:
    with engine.begin() as conn:
        pid = conn.execute(text("SELECT id FROM papers ORDER BY id LIMIT 1")).scalar_one()
        conn.execute(update(papers).where(papers.c.id == pid).values(title="Zanzibar cartography of moss"))
    with engine.connect() as conn:
        assert [p.id for p in search_papers(conn, "zanzibar moss").papers] == [pid]
    with engine.begin() as conn:
        conn.execute(update(papers).where(papers.c.id == pid).values(title="Plain title"))
    assert _titles(engine, "zanzibar") == []
    with engine.begin() as conn:
        conn.execute(delete(papers).where(papers.c.id == pid))
    with engine.connect() as conn:
        assert pid not in [p.id for p in search_papers(conn, "plain title", limit=100).papers]


def test_papers_stored_before_the_index_are_found_after_the_upgrade(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate(engine, "0015")
    with engine.begin() as conn:  # the columns of that day (today's upsert writes later ones too)
        for p in DAY[:50]:
            conn.execute(insert(papers).values(
                canonical_id=p.canonical_id, arxiv_id=p.arxiv_id, title_key=p.title.lower(), title=p.title,
                abstract=p.abstract, authors=list(p.authors), categories=list(p.categories), source="arxiv",
                first_seen_at=NOW, updated_at=NOW))
    migrate(engine)
    target = DAY[7]
    with engine.connect() as conn:
        assert target.title in [p.title for p in search_papers(conn, target.title, limit=5).papers]
    engine.dispose()
