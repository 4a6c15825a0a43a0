"""Learning state in the store: feature document frequencies, per-subscriber models (as bytes), labels.

Arrays and bytes in and out; what they mean is digest.rank's, how they are kept current digest.training's."""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Connection, delete, insert, select, update

from digest.store import events as event_store
from digest.store.schema import feature_stats, papers, subscriber_models


# ---- document frequencies ----------------------------------------------------------------------
def load_df(conn: Connection, n_features: int) -> tuple[int, np.ndarray] | None:
    row = conn.execute(select(feature_stats).where(feature_stats.c.id == 1)).first()
    if row is None:
        return None
    df = np.zeros(n_features, dtype=np.float32)
    with np.load(io.BytesIO(row.df)) as z:
        df[z["indices"]] = z["counts"]
    return int(row.n_docs), df


def add_documents(conn: Connection, presence_counts: np.ndarray, n_new: int, now: datetime,
                  feature_set: int) -> None:
    """Add the term presence counts of n_new newly stored papers to the stored frequencies (feature_set:
    the set they were counted with, recorded when nothing was counted before)."""
    current = load_df(conn, presence_counts.shape[0])
    n_docs, df = current if current is not None else (0, np.zeros_like(presence_counts))
    _write_df(conn, df + presence_counts, n_docs + n_new, now, feature_set, exists=current is not None)


def replace_documents(conn: Connection, df: np.ndarray, n_docs: int, now: datetime, feature_set: int) -> None:
    """Document frequencies counted anew from every stored paper, with this feature set."""
    exists = conn.execute(select(feature_stats.c.id).where(feature_stats.c.id == 1)).first() is not None
    _write_df(conn, df, n_docs, now, feature_set, exists=exists, recounted=True)


def stored_feature_set(conn: Connection) -> int | None:
    """The feature set the stored document frequencies were counted with (None: nothing counted yet)."""
    return conn.execute(select(feature_stats.c.feature_set).where(feature_stats.c.id == 1)).scalar()


def _write_df(conn: Connection, df: np.ndarray, n_docs: int, now: datetime, feature_set: int, *, exists: bool,
              recounted: bool = False) -> None:
    nz = np.flatnonzero(df)
    buf = io.BytesIO()
    np.savez_compressed(buf, indices=nz.astype(np.int32), counts=df[nz].astype(np.float32))
    values: dict[str, object] = {"n_docs": n_docs, "df": buf.getvalue(), "updated_at": now}
    if recounted or not exists:  # adding papers to older counts must not hide that they are older
        values["feature_set"] = feature_set
    if exists:
        conn.execute(update(feature_stats).where(feature_stats.c.id == 1).values(**values))
    else:
        conn.execute(insert(feature_stats).values(id=1, **values))


# ---- models ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredModel:
    weights: bytes  # the model as digest.rank.learner.LinearModel.to_bytes wrote it
    last_event_id: int
    trained_at: datetime


@dataclass(frozen=True)
class ModelRow:
    """A model to store: its bytes and how many positive and negative labels it learned from."""

    weights: bytes
    n_pos: int
    n_neg: int


def load_models(conn: Connection, subscriber_ids: Sequence[int]) -> dict[int, StoredModel]:
    if not subscriber_ids:
        return {}
    rows = conn.execute(select(subscriber_models).where(subscriber_models.c.subscriber_id.in_(list(subscriber_ids))))
    return {r.subscriber_id: StoredModel(r.weights, r.last_event_id, r.trained_at) for r in rows}


def drop_models(conn: Connection) -> None:
    """Every stored model (they weigh features of a feature set no longer counted)."""
    conn.execute(delete(subscriber_models))


def save_model(conn: Connection, subscriber_id: int, model: ModelRow | None, last_event_id: int,
               now: datetime) -> None:
    """Replace a subscriber's model (None: no model, nothing to learn from yet)."""
    conn.execute(delete(subscriber_models).where(subscriber_models.c.subscriber_id == subscriber_id))
    if model is not None:
        conn.execute(insert(subscriber_models).values(
            subscriber_id=subscriber_id, weights=model.weights, n_pos=model.n_pos, n_neg=model.n_neg,
            last_event_id=last_event_id, trained_at=now))


# ---- labels ------------------------------------------------------------------------------------
@dataclass
class Labels:
    """One subscriber's feedback, read through digest.store.events (unflagged events only)."""

    stars: set[int]
    clicks: set[int]
    dislikes: set[int]
    shown: set[int]


def labels_for(conn: Connection, subscriber_ids: Sequence[int]) -> dict[int, Labels]:
    out: dict[int, Labels] = {}
    for sid, pid, kind in event_store.signal_kinds(conn, subscriber_ids):
        lab = out.get(sid)
        if lab is None:
            lab = out[sid] = Labels(set(), set(), set(), set())
        getattr(lab, _LABEL_FIELD[kind]).add(pid)
    return out


_LABEL_FIELD = {"star": "stars", "click": "clicks", "dislike": "dislikes", "impression": "shown"}


def background_paper_ids(conn: Connection, limit: int, ranked: Collection[int] = ()) -> list[int]:
    """The most recent stored papers, as a sample of what a subscriber did not ask for: those not
    among the papers about to be ranked first (ranked), then, where the store holds too few others
    (a first day), those."""
    recent = list(conn.execute(select(papers.c.id).order_by(papers.c.id.desc()).limit(limit + len(ranked))).scalars())
    avoid = set(ranked)
    return ([i for i in recent if i not in avoid] + [i for i in recent if i in avoid])[:limit]


def add_stars(conn: Connection, subscriber_id: int, paper_ids: Sequence[int], origin: str, now: datetime) -> int:
    """Star these papers for a subscriber (an imported library); returns how many were new stars."""
    new = 0
    for pid in dict.fromkeys(paper_ids):
        _, created = event_store.set_opinion(conn, subscriber_id=subscriber_id, paper_id=pid, kind="star",
                                             origin=origin[:100], now=now)
        new += int(created)
    return new
