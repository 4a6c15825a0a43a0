"""Choosing one subscriber's picks: never a paper already shown or excluded, at most top_k above
min_score, diverse (maximal marginal relevance), each with a reason line.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import scipy.sparse as sp

from digest.domain import Paper, Pick
from digest.rank.features import tokens
from digest.rank.keywords import KeywordHits

# A pick this similar to a paper the reader liked is explained by that paper.
LIKED_REASON_SIMILARITY = 0.2
LIKED_REASON_MEANING = 0.5  # the same, as a cosine of encoder vectors (they sit higher than tf-idf's)
POOL_FACTOR = 5  # MMR looks this many times top_k deep


def reason_line(matched: Sequence[str], related: Sequence[str], liked: tuple[str, str] | None = None) -> str:
    parts = []
    if matched:
        parts.append("Matches: " + ", ".join(matched))
    if liked is not None:
        verb, title = liked
        parts.append(f"Like the paper you {verb}: {title}")
    if not parts and related:
        parts.append("Related to: " + ", ".join(related))
    return " · ".join(parts) or "Close to what you read"


def mentions_any(paper: Paper, phrases: Sequence[str]) -> bool:
    text = " " + " ".join(tokens(f"{paper.title} {paper.abstract}")) + " "
    return any(" " + " ".join(tokens(p)) + " " in text for p in phrases if tokens(p))


class PaperSimilarity:
    """Cosines between the day's papers, and from other papers to them.

    Built once a day: a product with a transposed hashed matrix pays for the million columns each
    time, so the transpose is kept, and for a usual day (a few thousand papers) the whole paper x
    paper matrix too.
    """

    DENSE_LIMIT = 4000  # papers; the dense matrix is n x n float32 (64 MB at the limit)

    def __init__(self, vectors: sp.csr_matrix) -> None:
        self.vectors = vectors
        self.transposed = sp.csr_matrix(vectors.T)
        self.gram: np.ndarray | None = None
        if vectors.shape[0] <= self.DENSE_LIMIT:
            self.gram = np.asarray((vectors @ self.transposed).todense(), dtype=np.float32)

    def among(self, rows: Sequence[int], cols: Sequence[int]) -> np.ndarray:
        if self.gram is not None:
            return self.gram[np.ix_(rows, cols)]
        return np.asarray((self.vectors[list(rows)] @ self.transposed).todense())[:, cols]

    def from_others(self, others: sp.csr_matrix, cols: Sequence[int]) -> np.ndarray:
        """others x cols: cosines of other papers' vectors to these day papers."""
        return np.asarray((others @ self.transposed).todense())[:, cols]


def _mmr(order: list[int], scores: np.ndarray, similarity: PaperSimilarity, k: int, diversity: float) -> list[int]:
    """Greedy maximal marginal relevance: trade a little score for not repeating a chosen paper."""
    pool = order[: max(k * POOL_FACTOR, k)]
    sims = similarity.among(pool, pool)
    chosen: list[int] = []
    max_sim = np.zeros(len(pool))
    available = np.ones(len(pool), dtype=bool)
    for _ in range(min(k, len(pool))):
        value = (1 - diversity) * scores[pool] - diversity * max_sim
        value[~available] = -np.inf
        j = int(np.argmax(value))
        chosen.append(pool[j])
        available[j] = False
        max_sim = np.maximum(max_sim, sims[j])
    return chosen


def select_picks(
    papers: Sequence[Paper],
    scores: np.ndarray,
    matched: Sequence[tuple[str, ...]] | KeywordHits,
    related: Sequence[tuple[str, ...]] | KeywordHits,
    *,
    top_k: int,
    min_score: float,
    shown: Collection[int] = (),
    exclude: Sequence[str] = (),
    similarity: PaperSimilarity | None = None,
    diversity: float = 0.0,
    liked: Sequence[tuple[str, Paper]] = (),
    liked_vectors: sp.csr_matrix | None = None,
    explore: bool = False,
    liked_meaning: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Pick]:
    """liked: (verb, paper) the reader starred or opened, with their vectors, for the reason line.

    explore: the last slot goes to the best paper, further down the list, that is unlike every
    other pick, so the reader's reaction to it can widen what the model knows.
    liked_meaning: encoder vectors of the papers and of the liked papers (the embed extra): the
    reason line then names the liked paper nearest in meaning rather than in words.
    """
    ranked = np.argsort(-scores, kind="stable")
    ranked = ranked[scores[ranked] >= min_score]
    # Only the head of the list can be picked; look just deep enough past the papers already shown.
    depth = max(top_k, 1) * POOL_FACTOR * 2 + len(shown)
    order = [int(i) for i in ranked[:depth] if papers[i].id not in shown]
    if exclude:
        order = [i for i in order if not mentions_any(papers[i], exclude)]
    if diversity > 0 and similarity is not None and len(order) > top_k:
        chosen = _mmr(order, scores, similarity, top_k, diversity)
    else:
        chosen = order[:top_k]
    explored = None
    if explore and similarity is not None and top_k >= 2 and len(chosen) == top_k:
        explored = _explore(order, chosen[:-1], similarity, top_k)
        if explored is not None:
            chosen = chosen[:-1] + [explored]
    sims = None
    threshold = LIKED_REASON_SIMILARITY
    if liked and liked_meaning is not None and len(liked_meaning[1]) == len(liked) and chosen:
        sims = liked_meaning[0][chosen] @ liked_meaning[1].T
        threshold = LIKED_REASON_MEANING
    elif liked and liked_vectors is not None and similarity is not None and chosen:
        sims = similarity.from_others(liked_vectors, chosen).T
    picks = []
    for n, i in enumerate(chosen):
        like = None
        if sims is not None:
            best = int(np.argmax(sims[n]))
            if sims[n, best] >= threshold:
                like = (liked[best][0], liked[best][1].title)
        reason = reason_line(matched[i], related[i], like)
        if i == explored:
            reason = "Something a little different, to learn what else you like"
        picks.append(Pick(paper=papers[i], score=float(scores[i]), matched=matched[i], reason=reason))
    return picks


def _explore(order: list[int], kept: list[int], similarity: PaperSimilarity, k: int) -> int | None:
    rest = [i for i in order[k : k * POOL_FACTOR * 2] if i not in kept]
    if not rest or not kept:
        return None
    sims = similarity.among(rest, kept).max(axis=1)
    unlike = [i for i, s in zip(rest, sims, strict=True) if s < 0.1]
    return unlike[0] if unlike else None
