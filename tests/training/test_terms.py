"""Stored term counts: the vectors they give, kept in step with the text, rebuilt with a new feature set.

On a real SQLite file and a real PostgreSQL database (db_url).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text, update

from digest.domain import Paper
from digest.rank import features
from digest.rank.learner import LinearModel
from digest.store import learning
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store import terms as term_rows
from digest.store.engine import create_db_engine, migrate, open_engine
from digest.store.schema import feature_stats, paper_terms, papers, subscriber_models
from digest.training import terms

NOW = datetime(2026, 11, 29, 6, 0)


def _paper(n: int, **kw: Any) -> Paper:
    base: dict[str, Any] = dict(canonical_id=f"arxiv:2411.{n:05d}", arxiv_id=f"2411.{n:05d}", version=1,
                                title=f"Sparse attention number {n}", abstract=f"Transformers with {n} heads prune.",
                                announce_type="new", source="test")
    base.update(kw)
    return Paper(**base)


def _store(engine: Any, batch: list[Paper]) -> list[Paper]:
    with engine.begin() as conn:
        _, fresh = paper_store.upsert_papers(conn, batch, NOW, arxiv_authority=True)  # an arXiv listing
        terms.add_papers(conn, fresh, NOW)
    return fresh


def _same(a: Any, b: Any) -> bool:
    return (a != b).nnz == 0 and a.shape == b.shape


def test_stored_counts_give_the_vectors_hashing_gives(db_url: str) -> None:
    engine = open_engine(db_url)
    stored = _store(engine, [_paper(n) for n in range(1, 6)])
    with engine.connect() as conn:
        n_docs, df = learning.load_df(conn, features.N_FEATURES) or (0, None)
    assert n_docs == 5 and df is not None
    with_store = features.FeatureSpace.from_stats(df, n_docs, terms=terms.StoredTerms(engine))
    hashing = features.FeatureSpace.from_stats(df, n_docs)
    unstored = Paper(id=None, canonical_id="x", title="Bird migration", abstract="Flyways.")
    batch = [stored[2], unstored, stored[0], stored[4]]
    assert _same(with_store.paper_vectors(batch), hashing.paper_vectors(batch))
    # Read from the store, not tokenised: the same paper with its text gone has the same vector.
    textless = Paper(id=stored[1].id, canonical_id=stored[1].canonical_id, title="", abstract="")
    fresh_space = features.FeatureSpace.from_stats(df, n_docs, terms=terms.StoredTerms(engine))
    assert _same(fresh_space.paper_vectors([textless]), hashing.paper_vectors([stored[1]]))
    engine.dispose()


def test_a_changed_text_is_counted_again(db_url: str) -> None:
    engine = open_engine(db_url)
    (first,) = _store(engine, [_paper(1)])
    assert first.id is not None
    with engine.begin() as conn:
        paper_store.upsert_papers(conn, [_paper(1, version=2, abstract="Graph kernels for molecules.")], NOW,
                                  arxiv_authority=True)
        assert term_rows.load(conn, [first.id], features.FEATURE_SET) == {}  # the old counts are of the old text
    assert terms.backfill(engine) == 1 and terms.backfill(engine) == 0
    with engine.connect() as conn:
        (idx, counts), = term_rows.load(conn, [first.id], features.FEATURE_SET).values()
        new_text = features.paper_text(paper_store.paper_texts(conn, [first.id])[first.id])
    want = features.term_counts([new_text])
    assert idx.tolist() == want.indices.tolist() and counts.tolist() == want.data.tolist()
    assert "graph kernel" in new_text.lower().replace("kernels", "kernel")
    engine.dispose()


def test_a_new_feature_set_recounts_everything_and_drops_the_models(db_url: str, monkeypatch: pytest.MonkeyPatch
                                                                     ) -> None:
    engine = open_engine(db_url)
    _store(engine, [_paper(n) for n in range(1, 4)])
    with engine.begin() as conn:
        paper_store.upsert_papers(conn, [_paper(9)], NOW)  # stored without counts (as before they existed)
        sid = sub_store.upsert_subscriber(conn, email="a@example.org", keywords=["attention"], now=NOW)[0].id
        model = LinearModel(np.array([1], dtype=np.int32), np.array([0.5], dtype=np.float32), 0.0, 1, 1)
        learning.save_model(conn, sid, learning.ModelRow(model.to_bytes(), model.n_pos, model.n_neg), 1, NOW)
        assert learning.stored_feature_set(conn) == features.FEATURE_SET
    # Papers added under the old set keep the row marked old: the mismatch must stay visible.
    monkeypatch.setattr(features, "FEATURE_SET", features.FEATURE_SET + 1)
    monkeypatch.setattr(terms, "FEATURE_SET", features.FEATURE_SET)
    with engine.begin() as conn:
        learning.add_documents(conn, np.zeros(features.N_FEATURES, dtype=np.float32), 0, NOW, features.FEATURE_SET)
        assert learning.stored_feature_set(conn) == features.FEATURE_SET - 1
        assert term_rows.load(conn, [1, 2, 3], features.FEATURE_SET) == {}  # counts of the old set are not used

    terms.ensure_current(engine, NOW)

    with engine.connect() as conn:
        assert learning.stored_feature_set(conn) == features.FEATURE_SET
        ids = list(conn.execute(select(papers.c.id).order_by(papers.c.id)).scalars())
        loaded = term_rows.load(conn, ids, features.FEATURE_SET)
        assert sorted(loaded) == ids  # every paper, the one stored without counts too
        n_docs, df = learning.load_df(conn, features.N_FEATURES) or (0, None)
        texts = paper_store.paper_texts(conn, ids)
        assert conn.execute(select(func.count()).select_from(subscriber_models)).scalar_one() == 0
    want = features.document_frequencies(features.term_counts([features.paper_text(texts[i]) for i in ids]))
    assert n_docs == len(ids) and df is not None and np.array_equal(df, want)
    engine.dispose()


def test_upgrade_from_0008_keeps_frequencies_and_fills_in_counts(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Databases before revision 0009 were counted with feature set 1: under it, nothing is recounted
    # (under a later set they are: test_a_new_feature_set_recounts_everything_and_drops_the_models).
    monkeypatch.setattr(features, "FEATURE_SET", 1)
    monkeypatch.setattr(terms, "FEATURE_SET", 1)
    engine = create_db_engine(db_url)
    migrate(engine, "0008")
    with engine.begin() as conn:
        # Plain SQL: the papers table object knows columns that revision 0008 does not have yet.
        for p in (_paper(1), _paper(2)):
            conn.execute(text("INSERT INTO papers (canonical_id, arxiv_id, version, title_key, title, abstract, "
                              "authors, categories, first_announce, source, first_seen_at, updated_at) VALUES "
                              "(:cid, :aid, 1, :key, :title, :abstract, '[]', '[]', 'new', 'test', :now, :now)"),
                         {"cid": p.canonical_id, "aid": p.arxiv_id, "key": p.title.lower(), "title": p.title,
                          "abstract": p.abstract, "now": NOW})
        conn.execute(text("INSERT INTO feature_stats (id, n_docs, df, updated_at) VALUES (1, 2, :df, :now)"),
                     {"df": b"old", "now": NOW})
    engine.dispose()
    engine = open_engine(db_url)
    with engine.connect() as conn:
        assert learning.stored_feature_set(conn) == 1
        assert conn.execute(select(feature_stats.c.df)).scalar_one() == b"old"  # not recounted
    terms.ensure_current(engine, NOW)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(paper_terms)).scalar_one() == 2
        assert conn.execute(select(feature_stats.c.df)).scalar_one() == b"old"
        conn.execute(update(feature_stats).values(n_docs=2))  # the row stays writable
    engine.dispose()
