"""Each stored paper's hashed term counts, kept beside the paper (digest.training.terms counts them).

Read back whenever the paper is needed as a vector (a liked or training paper, every day), so its
text is not tokenised again. Each row carries the feature set it was counted with: vectors of two
feature sets never mix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection, delete, insert, or_, select

from digest.store.schema import paper_terms, papers

_CHUNK = 500  # ids per IN (...) list: well under every database's parameter limit
_BATCH = 2000  # rows per INSERT
Terms = tuple[np.ndarray, np.ndarray]  # one paper's hashed term counts: feature indices, counts


def to_bytes(terms: Terms) -> bytes:
    indices, counts = terms
    return indices.astype("<i4").tobytes() + counts.astype("<f4").tobytes()


def from_bytes(data: bytes) -> Terms:
    n = len(data) // 8
    return (np.frombuffer(data, dtype="<i4", count=n).astype(np.int32),
            np.frombuffer(data, dtype="<f4", count=n, offset=4 * n).astype(np.float32))


def save(conn: Connection, paper_ids: Sequence[int], rows: Sequence[Terms], feature_set: int) -> None:
    """Store (or replace) these papers' counts: rows[i] is paper_ids[i]'s."""
    forget(conn, paper_ids)
    values = [{"paper_id": pid, "feature_set": feature_set, "counts": to_bytes(t)}
              for pid, t in zip(paper_ids, rows, strict=True)]
    for start in range(0, len(values), _BATCH):
        conn.execute(insert(paper_terms), values[start:start + _BATCH])


def forget(conn: Connection, paper_ids: Sequence[int]) -> None:
    """Drop these papers' counts (their text changed): they are counted again from the new text."""
    for start in range(0, len(paper_ids), _CHUNK):
        conn.execute(delete(paper_terms).where(paper_terms.c.paper_id.in_(list(paper_ids[start:start + _CHUNK]))))


def load(conn: Connection, paper_ids: Sequence[int], feature_set: int) -> dict[int, Terms]:
    """The stored counts of these papers, for those that have counts of this feature set."""
    out: dict[int, Terms] = {}
    distinct = list(dict.fromkeys(paper_ids))
    for start in range(0, len(distinct), _CHUNK):
        rows = conn.execute(select(paper_terms.c.paper_id, paper_terms.c.counts).where(
            paper_terms.c.paper_id.in_(distinct[start:start + _CHUNK]), paper_terms.c.feature_set == feature_set))
        for pid, data in rows:
            out[pid] = from_bytes(data)
    return out


def uncounted(conn: Connection, limit: int, feature_set: int) -> list[int]:
    """Papers with no counts of this feature set, oldest first."""
    q = (select(papers.c.id).outerjoin(paper_terms, paper_terms.c.paper_id == papers.c.id)
         .where(or_(paper_terms.c.paper_id.is_(None), paper_terms.c.feature_set != feature_set))
         .order_by(papers.c.id).limit(limit))
    return list(conn.execute(q).scalars())
