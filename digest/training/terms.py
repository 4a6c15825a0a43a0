"""Each paper's hashed term counts (digest.rank.features) kept in the store, and the document
frequencies with them.

Made once, when a paper is stored; the daily run fills in the counts of papers stored before they
existed, and rebuilds every count, and the document frequencies, when the feature set has changed
(features.FEATURE_SET): vectors of two feature sets never mix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import Connection, Engine, select

from digest.domain import Paper
from digest.rank.features import (
    FEATURE_SET,
    N_FEATURES,
    Terms,
    document_frequencies,
    paper_text,
    rows_of,
    term_counts,
)
from digest.store import learning
from digest.store import papers as paper_store
from digest.store import terms as term_store
from digest.store.schema import papers

log = logging.getLogger(__name__)

_BATCH = 2000  # papers tokenised per step of a backfill or a rebuild
BACKFILL_LIMIT = 50_000  # papers a run fills in; the rest wait for the next run


class StoredTerms:
    """FeatureSpace's source of stored counts: reads them from the store when asked."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, paper_ids: Sequence[int]) -> Mapping[int, Terms]:
        with self.engine.connect() as conn:
            return term_store.load(conn, paper_ids, FEATURE_SET)


def add_papers(conn: Connection, fresh: Sequence[Paper], now: datetime, *, count_documents: bool = True) -> None:
    """Newly stored papers: their counts stored, and (count_documents) added to the document
    frequencies, so idf stays comparable over time. Tokenised once for both."""
    stored = [p for p in fresh if p.id is not None]
    if not stored:
        return
    counts = term_counts([paper_text(p) for p in stored])
    if count_documents:
        learning.add_documents(conn, document_frequencies(counts), len(stored), now, FEATURE_SET)
    term_store.save(conn, [p.id for p in stored if p.id is not None], rows_of(counts), FEATURE_SET)


def backfill(engine: Engine, limit: int = BACKFILL_LIMIT) -> int:
    """Count the terms of up to limit papers stored without counts; returns how many."""
    done = 0
    while done < limit:
        with engine.begin() as conn:
            ids = term_store.uncounted(conn, min(_BATCH, limit - done), FEATURE_SET)
            if not ids:
                break
            texts = paper_store.paper_texts(conn, ids)
            ids = [i for i in ids if i in texts]
            term_store.save(conn, ids, rows_of(term_counts([paper_text(texts[i]) for i in ids])), FEATURE_SET)
        done += len(ids)
    return done


def rebuild(engine: Engine, now: datetime) -> int:
    """Count every stored paper again with the current feature set: its counts and the document
    frequencies, in one transaction. The stored models weigh features of the old set, so they are
    dropped: every subscriber with feedback is retrained at the next ranking. Returns the papers counted."""
    df = np.zeros(N_FEATURES, dtype=np.float32)
    n_docs, last = 0, 0
    with engine.begin() as conn:
        while True:
            ids = list(conn.execute(select(papers.c.id).where(papers.c.id > last).order_by(papers.c.id)
                                    .limit(_BATCH)).scalars())
            if not ids:
                break
            texts = paper_store.paper_texts(conn, ids)
            counts = term_counts([paper_text(texts[i]) for i in ids])
            term_store.save(conn, ids, rows_of(counts), FEATURE_SET)
            df += document_frequencies(counts)
            n_docs, last = n_docs + len(ids), ids[-1]
        learning.replace_documents(conn, df, n_docs, now, FEATURE_SET)
        learning.drop_models(conn)
    return n_docs


def ensure_current(engine: Engine, now: datetime) -> None:
    """Before a run ranks: counts of the current feature set for every paper (see the module)."""
    with engine.connect() as conn:
        stored_set = learning.stored_feature_set(conn)
    if stored_set is not None and stored_set != FEATURE_SET:
        n = rebuild(engine, now)
        log.warning("feature set %d replaced by %d: %d papers counted again, models to be retrained",
                    stored_set, FEATURE_SET, n)
    n = backfill(engine)
    if n:
        log.info("term counts stored for %d paper(s) that had none", n)
