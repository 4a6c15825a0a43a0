"""Ranking a day for every subscriber: keyword prior and learned model, blended, then selection.

Scoring is matrix work over all subscribers at once; only the final top-k selection (a few dozen
papers per subscriber) loops.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import row_norms

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
class LikedToDay:
    """A group's liked papers against the day's: what the centroid score and the reason lines need."""

    cosines: np.ndarray | None  # distinct liked papers x day papers; None when too large to keep
    centroid: np.ndarray  # subscribers x day papers: cosine to the centroid of their liked papers


class LikedPapers:
    """The liked papers of a group of subscribers: each distinct paper vectorised once."""

    BLOCK_ROWS = 4000  # liked papers per product: at 2,000 day papers a 32 MB float32 block
    # The cosines are kept for the reason lines up to this many entries (128 MB of float32: 16,000
    # distinct liked papers on a day of 2,000); past it, the reasons compare their own blocks again.
    KEEP_ENTRIES = 32_000_000

    def __init__(self, vectors: sp.csr_matrix, rows: list[list[int]]) -> None:
        self.vectors = vectors  # one row per distinct paper
        self.rows = rows  # per subscriber, the rows of its liked papers, in st.liked order
        self._to_day: tuple[PaperSimilarity, LikedToDay] | None = None

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

    def to_day(self, similarity: PaperSimilarity) -> LikedToDay:
        """Cosines of every distinct liked paper to every day paper, in blocks, and from them each
        subscriber's centroid cosine: the centroid's dot product is the sum of its papers' (divided
        by its norm), so the one product serves both the score and the reason lines."""
        if self._to_day is not None and self._to_day[0] is similarity:
            return self._to_day[1]
        n_liked, n_day = self.vectors.shape[0], similarity.vectors.shape[0]
        lengths = np.fromiter(map(len, self.rows), dtype=np.int64, count=len(self.rows))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.fromiter(itertools.chain.from_iterable(self.rows), dtype=np.int64, count=int(indptr[-1]))
        member = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr),
                               shape=(len(self.rows), n_liked))
        member.sum_duplicates()  # a paper both starred and opened counts twice, as in the list of likes
        keep = n_liked * n_day <= self.KEEP_ENTRIES
        cosines = np.empty((n_liked, n_day) if keep else (0, n_day), dtype=np.float32)
        dots = np.zeros((len(self.rows), n_day), dtype=np.float32)
        member_c = member.tocsc()
        for lo in range(0, n_liked, self.BLOCK_ROWS):
            hi = min(lo + self.BLOCK_ROWS, n_liked)
            block = similarity.from_others(self.vectors[lo:hi], out=cosines[lo:hi] if keep else None)
            dots += member_c[:, lo:hi] @ block
        norms = row_norms(member @ self.vectors).astype(np.float32)
        centroid = dots / np.where(norms > 0, norms, 1.0)[:, None]
        out = LikedToDay(cosines if keep else None, centroid.astype(np.float32, copy=False))
        self._to_day = (similarity, out)
        return out


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
    ks = score_keywords([s.subscriber for s in states], candidates, space, vectors, day.index,
                        day.similarity.transposed)
    if meaning is None:
        learned = learner.model_scores([s.model for s in states], day.similarity.transposed)
        centroid = liked.to_day(day.similarity).centroid
        prior = ks.scores
    else:
        # Models trained with the encoder have weights on the embedding dims after the tf-idf ones.
        learned = learner.model_scores([s.model for s in states], day.similarity.transposed,
                                       dense=semantic.EMBED_SCALE * meaning.papers)
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
    closeness: LikedSimilarity = (LikedWords(liked.rows, cosines=liked.to_day(day.similarity).cosines,
                                             vectors=liked.vectors, similarity=day.similarity) if meaning is None
                                  else LikedMeaning(meaning.papers, meaning.liked))
    return select_group(
        day.papers, scores, ks.matched, ks.related,
        top_k=[st.subscriber.top_k or options.top_k for st in states], min_score=options.min_score,
        shown=[st.shown for st in states], exclude=[st.subscriber.exclude for st in states],
        similarity=day.similarity, diversity=options.diversity, liked=[st.liked for st in states],
        liked_similarity=closeness, explore=options.explore, index=day.index,
    )
