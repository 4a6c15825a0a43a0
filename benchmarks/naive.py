"""The naive baseline: arxiv-sanity-lite's way of ranking, one subscriber at a time.

tf-idf over every stored paper (computed once), then per subscriber one LinearSVC trained on all
papers (their liked ones positive, the rest negative) and a decision_function over the day's
papers, top-k by sorting: a Python loop over subscribers. Timed on a sample of subscribers and
scaled to all of them (the fit per subscriber does not depend on the others).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.svm import LinearSVC
from sqlalchemy import select

from digest.domain import Paper, Subscriber
from digest.evaluate.baselines import TextFeatures
from digest.evaluate.protocol import EvalCorpus
from digest.store import learning
from digest.store.engine import open_engine
from digest.store.schema import papers


def time_sample(db: Path, subs: Sequence[Subscriber], candidates: Sequence[Paper], sample: int, *,
                top_k: int) -> tuple[float, float]:
    """(seconds for the shared tf-idf, seconds per subscriber), over a seeded sample."""
    engine = open_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(select(papers.c.id, papers.c.title, papers.c.abstract).order_by(papers.c.id)).all()
        chosen = random.Random(3).sample(list(subs), min(sample, len(subs)))
        labels = learning.labels_for(conn, [s.id for s in chosen])
    engine.dispose()
    row_of = {r.id: n for n, r in enumerate(rows)}
    t0 = time.perf_counter()
    feats = TextFeatures.fit(EvalCorpus(ids=[str(r.id) for r in rows], titles=[r.title for r in rows],
                                        abstracts=[r.abstract for r in rows]))
    shared_s = time.perf_counter() - t0
    x_all = feats.matrix
    x_day = x_all[[row_of[p.id] for p in candidates if p.id is not None]]
    t0 = time.perf_counter()
    fitted = 0
    for sub in chosen:
        mine = labels.get(sub.id)
        liked = sorted((mine.stars | mine.clicks) if mine else set())
        y = np.zeros(x_all.shape[0], dtype=np.int8)
        y[[row_of[p] for p in liked if p in row_of]] = 1
        if not y.any():
            continue
        clf = LinearSVC(class_weight="balanced", max_iter=10000, tol=1e-6, C=0.01)
        clf.fit(x_all, y)
        scores = clf.decision_function(x_day)
        _ = [int(i) for i in np.argsort(-scores)[:top_k]]
        fitted += 1
    per_sub = (time.perf_counter() - t0) / max(fitted, 1)
    return shared_s, per_sub
