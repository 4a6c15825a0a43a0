"""The project's recommender in the replay: the same features, keyword prior, learner and selection
that the daily run uses (digest.rank), fed from the replay instead of the store. This is the only
module of digest.evaluate that knows the ranking internals.

As in the daily run: document frequencies grow with every day's papers, stars (warm: the imported
library) and clicks are positives, shown-but-not-clicked papers and a background sample negatives,
and each user's model is retrained when new feedback arrived.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from digest.domain import Paper, Subscriber
from digest.evaluate.protocol import EvalCorpus, EvalUser
from digest.rank import classes, features, learner, semantic
from digest.rank.ranker import Labelled, RankOptions, SubscriberState, rank_all, training_set


def keyword_vectors(subscribers: Sequence[Subscriber], encode: Callable[[Sequence[str]], np.ndarray]
                    ) -> dict[str, np.ndarray]:
    """Each distinct keyword query of these subscribers, embedded once."""
    vocab = sorted({semantic.keyword_text(s) for s in subscribers})
    return dict(zip(vocab, encode(vocab), strict=True)) if vocab else {}


def subscriber_keywords(user: EvalUser) -> tuple[str, ...]:
    return tuple(user.keywords) or ("research",)


class DigestRecommender:
    name = "digest"

    def __init__(self, *, seed: int = 0, options: RankOptions | None = None, embeddings: np.ndarray | None = None,
                 encode: Callable[[Sequence[str]], np.ndarray] | None = None, name: str = "digest",
                 sentences: bool = True) -> None:
        """embeddings (papers x dim) and encode (for the keywords): the encoder's, when there is one;
        sentences: it is a sentence encoder, not the static vectors (digest.rank.semantic.Semantic)."""
        self.seed = seed
        self.options = options or RankOptions(min_score=-1.0, diversity=0.0)
        self.embeddings = embeddings if encode is not None else None
        self.encode = encode
        self.name = name
        self.sentences = sentences

    def start(self, corpus: EvalCorpus, users: Sequence[EvalUser], scenario: str) -> None:
        self.papers = [Paper(id=i, canonical_id=str(i), title=t, abstract=a)
                       for i, (t, a) in enumerate(zip(corpus.titles, corpus.abstracts, strict=True))]
        self.texts = [features.paper_text(p) for p in self.papers]
        self.counts = features.term_counts(self.texts)  # raw counts never change; idf does
        self.users = list(users)
        self.subs = [Subscriber(id=i, email=f"u{i}@example.org", keywords=subscriber_keywords(u))
                     for i, u in enumerate(users)]
        self.kw_meaning: np.ndarray | None = None
        if self.embeddings is not None and self.encode is not None:
            vecs = keyword_vectors(self.subs, self.encode)
            self.kw_meaning = semantic.keyword_profiles(self.subs, vecs, self.embeddings.shape[1])
        self.df = np.zeros(features.N_FEATURES, dtype=np.float32)
        self.n_docs = 0
        self.arrived: list[int] = []
        self.stars = [set(u.stars) for u in users]
        self.clicks: list[set[int]] = [set() for _ in users]
        self.shown: list[set[int]] = [set(u.history) for u in users]
        self.ignored: list[set[int]] = [set() for _ in users]
        self.models: list[learner.LinearModel | None] = [None] * len(users)
        self.stale = [bool(u.stars) for u in users]
        self.rng = np.random.default_rng(self.seed)
        self.by_id: dict[str, int] = {u.user_id: i for i, u in enumerate(users)}
        # Per day: retraining the models, and ranking (features, scoring, selection) for all users.
        self.train_seconds: list[float] = []
        self.rank_seconds: list[float] = []

    def _space(self) -> features.FeatureSpace:
        return features.FeatureSpace.from_stats(self.df, self.n_docs)

    def _retrain(self, space: features.FeatureSpace, today: int) -> None:
        """today: how many of the papers that arrived last are the day's, about to be ranked: as in the
        daily run (learning.background_paper_ids), the background is sampled from earlier papers,
        topped up with the day's only where too few arrived before."""
        todo = [i for i, s in enumerate(self.stale) if s]
        if not todo:
            return
        earlier = np.array(self.arrived[:len(self.arrived) - today], dtype=np.int64)
        size = min(learner.BACKGROUND_SAMPLE, len(earlier))
        background = [int(x) for x in self.rng.choice(earlier, size=size, replace=False)]
        if size < learner.BACKGROUND_SAMPLE:
            fresh = np.array(self.arrived[len(self.arrived) - today:], dtype=np.int64)
            more = min(learner.BACKGROUND_SAMPLE - size, len(fresh))
            background += [int(x) for x in self.rng.choice(fresh, size=more, replace=False)]
        need = set(background)
        for i in todo:
            need |= self.stars[i] | self.clicks[i] | self.ignored[i]
        ids = sorted(need)
        mat = features.tfidf(self.counts[ids], space.idf)
        row_of = {pid: r for r, pid in enumerate(ids)}
        kw = space.text_vectors([" . ".join(self.subs[i].keywords) for i in todo])
        paper_dims, kw_dims = None, None
        if self.embeddings is not None and self.kw_meaning is not None:
            paper_dims, kw_dims = self.embeddings[ids], self.kw_meaning[todo]
        mat = semantic.combine(mat, classes.paper_classes([self.papers[i] for i in ids]), paper_dims)
        kw = semantic.combine(kw, classes.keyword_classes([self.subs[i] for i in todo]), kw_dims)
        for n, i in enumerate(todo):
            data = training_set(Labelled(sorted(self.stars[i]), sorted(self.clicks[i]), [],
                                         sorted(self.ignored[i]), background), mat, row_of, kw[n])
            self.models[i] = learner.train(data) if data is not None else None
            self.stale[i] = False

    def recommend(self, day: int, batch: np.ndarray, k: int) -> dict[str, list[int]]:
        ids = [int(x) for x in batch]
        self.df += features.document_frequencies(self.counts[ids])
        self.n_docs += len(ids)
        self.arrived.extend(ids)
        space = self._space()
        t0 = time.perf_counter()
        self._retrain(space, len(ids))
        t1 = time.perf_counter()
        liked_ids = [sorted(self.stars[i]) + sorted(self.clicks[i] - self.stars[i]) for i in range(len(self.subs))]
        states = [SubscriberState(sub, self.models[i], self.shown[i],
                                  [("starred", self.papers[j]) for j in sorted(self.stars[i])]
                                  + [("opened", self.papers[j]) for j in sorted(self.clicks[i] - self.stars[i])])
                  for i, sub in enumerate(self.subs)]
        options = RankOptions(top_k=k, min_score=self.options.min_score, diversity=self.options.diversity,
                              popularity_weight=0.0, explore=self.options.explore)
        meaning = None
        if self.embeddings is not None and self.kw_meaning is not None:
            meaning = semantic.Semantic(self.embeddings[ids], self.kw_meaning,
                                        [self.embeddings[lid] for lid in liked_ids], sentences=self.sentences)
        picks = [r.picks for r in rank_all(states, [self.papers[j] for j in ids], space, options, meaning=meaning)]
        self.train_seconds.append(t1 - t0)
        self.rank_seconds.append(time.perf_counter() - t1)
        return {u.user_id: [int(p.paper.id) for p in picks[i] if p.paper.id is not None]
                for i, u in enumerate(self.users)}

    def feedback(self, day: int, shown: dict[str, list[int]], clicked: dict[str, list[int]]) -> None:
        for uid, papers in shown.items():
            i = self.by_id[uid]
            hit = set(clicked.get(uid, ()))
            self.shown[i] |= set(papers)
            self.clicks[i] |= hit
            self.ignored[i] |= set(papers) - hit
            self.stale[i] = True
