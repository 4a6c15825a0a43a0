"""Ranking a day for every subscriber: keyword prior and learned model, blended, then selection.

Scoring is matrix work over all subscribers at once; only the final top-k selection (a few dozen
papers per subscriber) loops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from digest.domain import Paper, Pick, Subscriber
from digest.rank import learner, semantic
from digest.rank.features import FeatureSpace
from digest.rank.keywords import KeywordScores, PaperIndex, score_keywords
from digest.rank.select import LikedMeaning, LikedSimilarity, LikedWords, PaperSimilarity, select_group
from digest.rank.semantic import Semantic

# Part of the learned score is the cosine to the centroid of the papers the reader liked: steadier
# than the model alone when positives are few (+0.002 to +0.003 nDCG@10 warm in the replay).
CENTROID_WEIGHT = 0.3


# Subscribers are scored in groups of this many: the dense score matrices stay a few tens of MB
# whatever the number of subscribers.
SCORE_CHUNK = 2000


@dataclass(frozen=True)
class DayPapers:
    """The day's candidates with what every group of subscribers needs of them, computed once."""

    papers: Sequence[Paper]
    vectors: sp.csr_matrix
    index: PaperIndex
    similarity: PaperSimilarity

    @classmethod
    def build(cls, papers: Sequence[Paper], space: FeatureSpace) -> DayPapers:
        vectors = space.paper_vectors(papers)
        return cls(papers, vectors, PaperIndex(papers), PaperSimilarity(vectors))


@dataclass(frozen=True)
class LikedPapers:
    """The liked papers of a group of subscribers: each distinct paper vectorised once."""

    vectors: sp.csr_matrix  # one row per distinct paper
    rows: list[list[int]]  # per subscriber, the rows of its liked papers, in st.liked order

    @classmethod
    def build(cls, states: Sequence[SubscriberState], space: FeatureSpace) -> LikedPapers:
        row_of: dict[object, int] = {}
        distinct: list[Paper] = []
        rows = []
        for st in states:
            mine = []
            for _, p in st.liked:
                key = p.id if p.id is not None else id(p)
                if key not in row_of:
                    row_of[key] = len(distinct)
                    distinct.append(p)
                mine.append(row_of[key])
            rows.append(mine)
        vectors = space.paper_vectors(distinct) if distinct else sp.csr_matrix((0, space.idf.shape[0]),
                                                                             dtype=np.float32)
        return cls(vectors, rows)

    def centroid_similarity(self, papers_t: sp.csr_matrix) -> np.ndarray:
        """Subscribers x papers: cosine to the centroid of each subscriber's liked papers (0 if none).
        papers_t: the papers' vectors transposed (features x papers, CSR)."""
        pairs = [(si, r) for si, mine in enumerate(self.rows) for r in mine]
        if not pairs:
            return np.zeros((len(self.rows), papers_t.shape[1]), dtype=np.float32)
        si, r = zip(*pairs, strict=True)
        member = sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (si, r)),
                               shape=(len(self.rows), self.vectors.shape[0]))
        centroids = sp.csr_matrix(normalize(member @ self.vectors, norm="l2"))
        return np.asarray((centroids @ papers_t).toarray(), dtype=np.float32)


@dataclass(frozen=True)
class RankOptions:
    top_k: int = 10
    min_score: float = 0.05
    diversity: float = 0.3  # 0: plain top-k; higher trades score for variety
    popularity_weight: float = 0.0  # a small prior for papers with many upvotes (Hugging Face)
    explore: bool = False  # give the last slot to a paper unlike the others


@dataclass
class SubscriberState:
    subscriber: Subscriber
    model: learner.LinearModel | None = None
    shown: set[int] = field(default_factory=set)
    liked: list[tuple[str, Paper]] = field(default_factory=list)  # ("starred" | "opened", paper)


@dataclass(frozen=True)
class Labelled:
    stars: Sequence[int]
    clicks: Sequence[int]
    dislikes: Sequence[int]
    ignored: Sequence[int]  # shown, not clicked
    background: Sequence[int]


def training_set(labels: Labelled, matrix: sp.csr_matrix, row_of: dict[int, int],
                 keywords: sp.csr_matrix | None = None) -> learner.TrainingSet | None:
    """Rows (of matrix, found through row_of) and weights for one subscriber's model; the latest
    opinion on a paper wins. keywords: the subscriber's keyword profile, a pseudo-positive."""
    dislikes = set(labels.dislikes)
    stars = [p for p in labels.stars if p not in dislikes]
    star_set = set(stars)
    clicks = [p for p in labels.clicks if p not in star_set and p not in dislikes]
    pos = [(p, learner.STAR_WEIGHT) for p in stars] + [(p, learner.CLICK_WEIGHT) for p in clicks]
    taken = {p for p, _ in pos} | dislikes
    neg = [(p, learner.DISLIKE_WEIGHT) for p in labels.dislikes]
    neg += [(p, learner.IGNORED_WEIGHT) for p in labels.ignored if p not in taken]
    taken |= set(labels.ignored)
    neg += [(p, learner.BACKGROUND_WEIGHT) for p in labels.background if p not in taken]
    pos = [(p, w) for p, w in pos if p in row_of]
    neg = [(p, w) for p, w in neg if p in row_of]
    evidence = len(pos) + sum(1 for p in labels.dislikes if p in row_of)
    positives = matrix[[row_of[p] for p, _ in pos]]
    weights = np.array([w for _, w in pos], dtype=np.float64)
    if keywords is not None and keywords.nnz and learner.KEYWORD_WEIGHT > 0:
        positives = sp.vstack([keywords, positives]).tocsr()
        weights = np.concatenate([[learner.KEYWORD_WEIGHT], weights])
    if evidence == 0 or positives.shape[0] == 0 or not neg:
        return None
    return learner.TrainingSet(
        positives=positives,
        positive_weights=weights,
        negatives=matrix[[row_of[p] for p, _ in neg]],
        negative_weights=np.array([w for _, w in neg]),
        evidence=evidence,
    )


def score_all(states: Sequence[SubscriberState], day: DayPapers, space: FeatureSpace, options: RankOptions,
              liked: LikedPapers, meaning: Semantic | None = None) -> tuple[np.ndarray, KeywordScores]:
    """meaning: encoder vectors (the embed extra) for the candidates, keywords and liked papers."""
    candidates, vectors = day.papers, day.vectors
    ks = score_keywords([s.subscriber for s in states], candidates, space, vectors, day.index)
    if meaning is None:
        learned = learner.model_scores([s.model for s in states], day.similarity.transposed)
        centroid = liked.centroid_similarity(day.similarity.transposed)
        prior = ks.scores
    else:
        # Models trained with the encoder have weights on the embedding dims after the tf-idf ones.
        combined = semantic.combine(vectors, meaning.papers)
        learned = learner.model_scores([s.model for s in states], sp.csr_matrix(combined.T))
        centroid = semantic.liked_similarity(meaning)
        prior = semantic.prior(ks.scores, meaning)
    n_pos = np.array([s.model.n_pos if s.model else 0 for s in states])
    # Subscribers without a model keep 0.5 from model_scores; the blend gives them the prior alone.
    learned = (1 - CENTROID_WEIGHT) * learned + CENTROID_WEIGHT * centroid
    scores = learner.blend(prior, learned, n_pos) if meaning is None else semantic.blend(prior, learned, n_pos)
    if options.popularity_weight > 0:
        votes = np.array([p.upvotes or 0 for p in candidates], dtype=np.float32)
        if votes.max(initial=0) > 0:
            scores = scores + options.popularity_weight * (np.log1p(votes) / np.log1p(votes.max()))[None, :]
    return scores, ks


def rank_all(states: Sequence[SubscriberState], candidates: Sequence[Paper], space: FeatureSpace,
             options: RankOptions, day: DayPapers | None = None,
             meaning: Semantic | None = None) -> list[list[Pick]]:
    """Every subscriber's picks. day: the candidates prepared once, when the caller ranks them for
    several groups of subscribers; meaning: encoder vectors for these states (the embed extra)."""
    if not states:
        return []
    if not candidates:
        return [[] for _ in states]
    day = day if day is not None else DayPapers.build(candidates, space)
    out: list[list[Pick]] = []
    for start in range(0, len(states), SCORE_CHUNK):
        end = start + SCORE_CHUNK
        part = None if meaning is None else meaning.rows(start, end)
        out += _rank_group(states[start:end], day, space, options, part)
    return out


def _rank_group(states: Sequence[SubscriberState], day: DayPapers, space: FeatureSpace,
                options: RankOptions, meaning: Semantic | None) -> list[list[Pick]]:
    liked = LikedPapers.build(states, space)
    scores, ks = score_all(states, day, space, options, liked, meaning)
    return select_all(states, day, options, scores, ks, liked, meaning)


def select_all(states: Sequence[SubscriberState], day: DayPapers, options: RankOptions, scores: np.ndarray,
               ks: KeywordScores, liked: LikedPapers, meaning: Semantic | None = None) -> list[list[Pick]]:
    """The group's picks from its scores (score_all), with reason lines from the liked papers."""
    closeness: LikedSimilarity = (LikedWords(liked.vectors, liked.rows, day.similarity) if meaning is None
                                  else LikedMeaning(meaning.papers, meaning.liked))
    return select_group(
        day.papers, scores, ks.matched, ks.related,
        top_k=[st.subscriber.top_k or options.top_k for st in states], min_score=options.min_score,
        shown=[st.shown for st in states], exclude=[st.subscriber.exclude for st in states],
        similarity=day.similarity, diversity=options.diversity, liked=[st.liked for st in states],
        liked_similarity=closeness, explore=options.explore, index=day.index,
    )
