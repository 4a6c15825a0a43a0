"""A reader's taste over any papers (the search page's "sort by my taste"): the digest's own scores
(keywords, the reader's model, closeness to what they starred or waved away) for papers that are
not the day's candidates.

Read only: a stale model is used as stored, not retrained (the next run does that), and the
sentence encoder is not loaded in the web process, so a model trained with it counts its word and
arXiv class weights only. Enough to order a page of search results; the digest itself is ranked by the run.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from digest.domain import Paper, Subscriber
from digest.pipeline.plan import feature_space
from digest.rank.features import FeatureSpace
from digest.rank.ranker import DayPapers, LikedPapers, RankOptions, score_all
from digest.training.models import read_group, states_of


def taste_scores(engine: Engine, subscriber: Subscriber, papers: Sequence[Paper],
                 options: RankOptions | None = None, space: FeatureSpace | None = None) -> list[float]:
    """One score per paper (higher: more to this reader's taste); papers must be stored (have ids).
    space: the words' weights, when the caller has them already (feature_space)."""
    if not papers:
        return []
    space = space or feature_space(engine, papers)
    states = states_of(read_group(engine, [subscriber]), [p.id for p in papers if p.id is not None])
    liked = LikedPapers.build([[p for _, p in st.liked] for st in states], space)
    disliked = LikedPapers.build([st.disliked for st in states], space) if states[0].disliked else None
    scored = score_all(states, DayPapers.build(papers, space), space, options or RankOptions(), liked, disliked)
    return [float(x) for x in scored.scores[0]]
