"""The papers a new reader rates at sign-up (the rating page, `digest rate`): a dozen recent papers
chosen for their keywords, so that the first digests learn from a few real judgements instead of
the keywords alone (Scholar Inbox asks every new reader for ratings first, for this reason).

The best matches by the digest's own scores (digest.pipeline.taste), kept apart from one another
(a paper too close to one already chosen is passed over, so that twelve are not one sub-topic),
and a few from further down the order, near the edge of the reader's interests: a "not for me"
there teaches as much as a "want" at the top. Papers the reader already starred or waved away are
not asked again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Engine

from digest.domain import Paper, Subscriber, naive_utc
from digest.pipeline.plan import feature_space
from digest.pipeline.taste import taste_scores
from digest.store import events as event_store
from digest.store import papers as paper_store

RATE_COUNT = 12
EDGE_COUNT = 3  # of RATE_COUNT, from further down the order
# The edge papers come from ranks n to 3n (n = RATE_COUNT) of the recent papers: just past what the
# first digests would show, where the reader's "want" or "not for me" moves the line. Further down
# (ranks 3n to 8n on the judged days) the papers were unrelated to the keywords: a "not for me" there
# tells the model nothing the keywords did not.
EDGE_RANKS = (1, 3)
RECENT_DAYS = 7
# Tf-idf cosine above which two papers count as one sub-topic (same-topic neighbours score 0.06 to
# 0.2 in digest.pipeline.similar; near-duplicates, a paper and its companion, score above 0.3).
TOO_CLOSE = 0.3


def papers_to_rate(engine: Engine, subscriber: Subscriber, now: datetime, n: int = RATE_COUNT) -> list[Paper]:
    """Up to n recent papers for this reader to rate: the best matches first, then the edge ones."""
    when = naive_utc(now)
    with engine.connect() as conn:
        recent = paper_store.candidate_papers(conn, since=when - timedelta(days=RECENT_DAYS),
                                              until=when + timedelta(minutes=1))
        if subscriber.id is not None:
            opinions = event_store.list_events(conn, subscriber.id, kinds=["star", "dislike"])
            done = {e.paper_id for e in opinions}
            recent = [p for p in recent if p.id not in done]
    if not recent:
        return []
    space = feature_space(engine, recent)
    order = np.argsort(-np.asarray(taste_scores(engine, subscriber, recent, space=space)), kind="stable")
    vectors = space.paper_vectors(recent)
    chosen: list[int] = []

    def take(ranks: np.ndarray, count: int) -> None:
        for i in ranks:
            if count <= 0:
                return
            if chosen and float((vectors[chosen] @ vectors[int(i)].T).max()) > TOO_CLOSE:
                continue
            chosen.append(int(i))
            count -= 1

    edge = min(EDGE_COUNT, max(0, n - 1))
    take(order, n - edge)
    low, high = EDGE_RANKS[0] * n, EDGE_RANKS[1] * n
    band = order[low:high] if len(order) > low else order[len(chosen):]
    # Spread over the band rather than its top: the edge, not the next best.
    take(band[:: max(1, len(band) // (2 * edge or 1))] if edge else band[:0], edge)
    take(order, n - len(chosen))  # a small day: fill up from the order
    return [recent[i] for i in chosen]
