"""Learning state in the store: feature document frequencies, per-subscriber models, labels."""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Connection, delete, func, insert, select, update

from digest.rank.learner import LinearModel
from digest.store.schema import events, feature_stats, papers, subscriber_models

LABEL_KINDS = ("click", "star", "dislike", "impression")


# ---- document frequencies ----------------------------------------------------------------------
def load_df(conn: Connection, n_features: int) -> tuple[int, np.ndarray] | None:
    row = conn.execute(select(feature_stats).where(feature_stats.c.id == 1)).first()
    if row is None:
        return None
    df = np.zeros(n_features, dtype=np.float32)
    with np.load(io.BytesIO(row.df)) as z:
        df[z["indices"]] = z["counts"]
    return int(row.n_docs), df


def add_documents(conn: Connection, presence_counts: np.ndarray, n_new: int, now: datetime) -> None:
    """Add the term presence counts of n_new newly stored papers to the stored frequencies."""
    current = load_df(conn, presence_counts.shape[0])
    n_docs, df = current if current is not None else (0, np.zeros_like(presence_counts))
    df = df + presence_counts
    nz = np.flatnonzero(df)
    buf = io.BytesIO()
    np.savez_compressed(buf, indices=nz.astype(np.int32), counts=df[nz].astype(np.float32))
    values = {"n_docs": n_docs + n_new, "df": buf.getvalue(), "updated_at": now}
    if current is None:
        conn.execute(insert(feature_stats).values(id=1, **values))
    else:
        conn.execute(update(feature_stats).where(feature_stats.c.id == 1).values(**values))


# ---- models ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredModel:
    model: LinearModel
    last_event_id: int
    trained_at: datetime


def load_models(conn: Connection, subscriber_ids: Sequence[int]) -> dict[int, StoredModel]:
    if not subscriber_ids:
        return {}
    rows = conn.execute(select(subscriber_models).where(subscriber_models.c.subscriber_id.in_(list(subscriber_ids))))
    return {r.subscriber_id: StoredModel(LinearModel.from_bytes(r.weights), r.last_event_id, r.trained_at)
            for r in rows}


def save_model(conn: Connection, subscriber_id: int, model: LinearModel | None, last_event_id: int,
               now: datetime) -> None:
    conn.execute(delete(subscriber_models).where(subscriber_models.c.subscriber_id == subscriber_id))
    if model is not None:
        conn.execute(insert(subscriber_models).values(
            subscriber_id=subscriber_id, weights=model.to_bytes(), n_pos=model.n_pos, n_neg=model.n_neg,
            last_event_id=last_event_id, trained_at=now))


# ---- labels ------------------------------------------------------------------------------------
@dataclass
class Labels:
    """One subscriber's feedback: paper id -> the strongest signal given on it."""

    stars: set[int]
    clicks: set[int]
    dislikes: set[int]
    shown: set[int]
    last_event_id: int = 0


def labels_for(conn: Connection, subscriber_ids: Sequence[int]) -> dict[int, Labels]:
    """Unflagged feedback events per subscriber (flagged ones are likely mail scanners)."""
    out: dict[int, Labels] = defaultdict(lambda: Labels(set(), set(), set(), set()))
    if not subscriber_ids:
        return {}
    q = select(events.c.id, events.c.subscriber_id, events.c.paper_id, events.c.kind).where(
        events.c.subscriber_id.in_(list(subscriber_ids)),
        events.c.kind.in_(LABEL_KINDS),
        events.c.flagged.is_(False),
        events.c.paper_id.is_not(None),
    )
    for eid, sid, pid, kind in conn.execute(q):
        lab = out[sid]
        {"star": lab.stars, "click": lab.clicks, "dislike": lab.dislikes, "impression": lab.shown}[kind].add(pid)
        lab.last_event_id = max(lab.last_event_id, eid)
    return dict(out)


def latest_event_ids(conn: Connection, subscriber_ids: Sequence[int]) -> dict[int, int]:
    """The newest label event per subscriber, to tell whether a stored model is stale."""
    if not subscriber_ids:
        return {}
    q = (select(events.c.subscriber_id, func.max(events.c.id))
         .where(events.c.subscriber_id.in_(list(subscriber_ids)), events.c.kind.in_(LABEL_KINDS))
         .group_by(events.c.subscriber_id))
    return {sid: int(mx) for sid, mx in conn.execute(q)}


def background_paper_ids(conn: Connection, limit: int) -> list[int]:
    """The most recent stored papers, as a sample of what a subscriber did not ask for."""
    return list(conn.execute(select(papers.c.id).order_by(papers.c.id.desc()).limit(limit)).scalars())


def add_stars(conn: Connection, subscriber_id: int, paper_ids: Sequence[int], origin: str, now: datetime) -> int:
    """Star these papers for a subscriber (an imported library); returns how many were new stars."""
    have = set(conn.execute(select(events.c.paper_id).where(
        events.c.subscriber_id == subscriber_id, events.c.kind == "star")).scalars())
    new = [p for p in dict.fromkeys(paper_ids) if p not in have]
    if new:
        conn.execute(insert(events), [
            {"subscriber_id": subscriber_id, "paper_id": p, "kind": "star", "origin": origin[:100],
             "delivery_id": None, "flagged": False, "created_at": now} for p in new])
    return len(new)
