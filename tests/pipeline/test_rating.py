"""The papers a new reader rates (digest.pipeline.rating), on a real arXiv day in a real SQLite file."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from digest.domain import Subscriber
from digest.ingest.sources import parse_feed
from digest.pipeline.plan import feature_space
from digest.pipeline.rating import EDGE_COUNT, RATE_COUNT, TOO_CLOSE, papers_to_rate
from digest.store import events as event_store
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.engine import open_engine
from digest.training import terms as term_store

FEED = Path(__file__).parent.parent / "fixtures" / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"
NOW = datetime(2026, 12, 5, 6, 0)


def _reader(tmp_path: Path, keywords: list[str]) -> tuple[object, Subscriber]:
    engine = open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    with engine.begin() as conn:
        _, fresh = paper_store.upsert_papers(conn, parse_feed(FEED.read_bytes(), source_name="arxiv").papers, NOW)
        term_store.add_papers(conn, fresh, NOW)
        sub, _ = sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=keywords, now=NOW)
    return engine, sub


def test_a_dozen_best_matches_first_kept_apart_then_a_few_from_the_edge(tmp_path: Path) -> None:
    engine, sub = _reader(tmp_path, ["large language models", "reasoning"])
    chosen = papers_to_rate(engine, sub, NOW)  # type: ignore[arg-type]
    assert len(chosen) == RATE_COUNT and len({p.id for p in chosen}) == RATE_COUNT
    best = chosen[: RATE_COUNT - EDGE_COUNT]
    on_topic = [p for p in best if any(k in (p.title + " " + p.abstract).lower() for k in ("language model",
                                                                                           "reasoning"))]
    assert on_topic == best  # the best matches hold the reader's keywords
    space = feature_space(engine, chosen)  # type: ignore[arg-type]
    vectors = space.paper_vectors(chosen)
    closeness = (vectors @ vectors.T).toarray()
    for i in range(len(chosen)):
        closeness[i, i] = 0.0
    assert closeness.max() <= TOO_CLOSE + 1e-6  # no two of them one sub-topic


def test_papers_already_rated_or_too_old_are_not_asked(tmp_path: Path) -> None:
    engine, sub = _reader(tmp_path, ["large language models"])
    first = papers_to_rate(engine, sub, NOW)  # type: ignore[arg-type]
    with engine.begin() as conn:  # type: ignore[attr-defined]
        for p in first[:3]:
            event_store.set_opinion(conn, subscriber_id=sub.id, paper_id=p.id or 0, kind="star", origin="test",
                                    now=NOW)
    again = papers_to_rate(engine, sub, NOW)  # type: ignore[arg-type]
    assert not {p.id for p in first[:3]} & {p.id for p in again}
    assert papers_to_rate(engine, sub, NOW + timedelta(days=8)) == []  # type: ignore[arg-type]  # a week on
