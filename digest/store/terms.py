"""Each stored paper's hashed term counts (digest.rank.features), kept beside the paper.

Made once, when a paper is stored; read back whenever the paper is needed as a vector (a liked or
training paper, every day), so its text is not tokenised again. The daily run fills in the counts
of papers stored before they existed, and rebuilds every count, and the document frequencies, when
the feature set has changed (features.FEATURE_SET): vectors of two feature sets never mix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import scipy.sparse as sp
from sqlalchemy import Connection, Engine, delete, insert, or_, select

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
from digest.store.schema import paper_terms, papers, subscriber_models

log = logging.getLogger(__name__)

_CHUNK = 500  # ids per IN (...) list: well under every database's parameter limit
_BATCH = 2000  # papers tokenised per step of a backfill or a rebuild
BACKFILL_LIMIT = 50_000  # papers a run fills in; the rest wait for the next run


def to_bytes(terms: Terms) -> bytes:
    indices, counts = terms
    return indices.astype("<i4").tobytes() + counts.astype("<f4").tobytes()


def from_bytes(data: bytes) -> Terms:
    n = len(data) // 8
    return (np.frombuffer(data, dtype="<i4", count=n).astype(np.int32),
            np.frombuffer(data, dtype="<f4", count=n, offset=4 * n).astype(np.float32))


def save(conn: Connection, paper_ids: Sequence[int], counts: sp.csr_matrix) -> None:
    """Store (or replace) these papers' counts: row i of counts is paper_ids[i]'s."""
    forget(conn, paper_ids)
    rows = [{"paper_id": pid, "feature_set": FEATURE_SET, "counts": to_bytes(t)}
            for pid, t in zip(paper_ids, rows_of(counts), strict=True)]
    for start in range(0, len(rows), _BATCH):
        conn.execute(insert(paper_terms), rows[start:start + _BATCH])


def forget(conn: Connection, paper_ids: Sequence[int]) -> None:
    """Drop these papers' counts (their text changed): they are counted again from the new text."""
    for start in range(0, len(paper_ids), _CHUNK):
        conn.execute(delete(paper_terms).where(paper_terms.c.paper_id.in_(list(paper_ids[start:start + _CHUNK]))))


def load(conn: Connection, paper_ids: Sequence[int]) -> dict[int, Terms]:
    """The stored counts of these papers, for those that have counts of the current feature set."""
    out: dict[int, Terms] = {}
    distinct = list(dict.fromkeys(paper_ids))
    for start in range(0, len(distinct), _CHUNK):
        rows = conn.execute(select(paper_terms.c.paper_id, paper_terms.c.counts).where(
            paper_terms.c.paper_id.in_(distinct[start:start + _CHUNK]), paper_terms.c.feature_set == FEATURE_SET))
        for pid, data in rows:
            out[pid] = from_bytes(data)
    return out


class StoredTerms:
    """FeatureSpace's source of stored counts: reads them from the store when asked."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, paper_ids: Sequence[int]) -> Mapping[int, Terms]:
        with self.engine.connect() as conn:
            return load(conn, paper_ids)


def add_papers(conn: Connection, fresh: Sequence[Paper], now: datetime, *, count_documents: bool = True) -> None:
    """Newly stored papers: their counts stored, and (count_documents) added to the document
    frequencies, so idf stays comparable over time. Tokenised once for both."""
    stored = [p for p in fresh if p.id is not None]
    if not stored:
        return
    counts = term_counts([paper_text(p) for p in stored])
    if count_documents:
        learning.add_documents(conn, document_frequencies(counts), len(stored), now)
    save(conn, [p.id for p in stored if p.id is not None], counts)


def _uncounted(conn: Connection, limit: int) -> list[int]:
    """Papers with no counts of the current feature set, oldest first."""
    q = (select(papers.c.id).outerjoin(paper_terms, paper_terms.c.paper_id == papers.c.id)
         .where(or_(paper_terms.c.paper_id.is_(None), paper_terms.c.feature_set != FEATURE_SET))
         .order_by(papers.c.id).limit(limit))
    return list(conn.execute(q).scalars())


def backfill(engine: Engine, limit: int = BACKFILL_LIMIT) -> int:
    """Count the terms of up to limit papers stored without counts; returns how many."""
    done = 0
    while done < limit:
        with engine.begin() as conn:
            ids = _uncounted(conn, min(_BATCH, limit - done))
            if not ids:
                break
            texts = paper_store.paper_texts(conn, ids)
            ids = [i for i in ids if i in texts]
            save(conn, ids, term_counts([paper_text(texts[i]) for i in ids]))
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
            save(conn, ids, counts)
            df += document_frequencies(counts)
            n_docs, last = n_docs + len(ids), ids[-1]
        learning.replace_documents(conn, df, n_docs, now)
        conn.execute(delete(subscriber_models))
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
