"""Choosing the subscribers' picks: never a paper already shown or excluded, at most top_k above
min_score, diverse (maximal marginal relevance), each with a reason line.

A group of subscribers is handled at once: the heads of their ranked lists come from one partial
sort of the score matrix and MMR runs as array operations over all of them, so the cost per
subscriber is a few microseconds of Python, not a sort and a sparse product each.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from digest.domain import Paper, Pick
from digest.rank.features import tokens
from digest.rank.keywords import KeywordHits, PaperIndex
from digest.rank.products import dense_product

# A pick whose tf-idf cosine to the nearest paper the reader liked reaches this is explained by that
# paper. Measured on the judged keyword queries (kwj-dev): of the day-2 papers judged on the topic of
# a query, 73% are this close to one of its day-1 papers judged 2, and 2% of the papers off the topic;
# in the CiteULike-a replay (200 readers, seed 7), 46% of the papers a reader saved later are this
# close to one in their library, and 7% of random papers.
LIKED_REASON_SIMILARITY = 0.05
POOL_FACTOR = 5  # MMR looks this many times top_k deep
EXPLORE_REASON = "Something a little different, to learn what else you like"
HISTORY_REASON = "Close to what you read"  # only for readers who starred or opened something
MEANING_REASON = "Close in meaning to your interests"  # stands out in meaning for the keywords

Hits = Sequence[tuple[str, ...]] | KeywordHits


def reason_line(matched: Sequence[str], related: Sequence[str], liked: tuple[str, str] | None = None,
                fallback: str = "", filed: Sequence[str] = ()) -> str:
    """What is true of the pick: the keywords it matches, the categories named by the reader's
    keywords that it is filed in, the liked paper it is close to; else the keywords it shares words
    with; else fallback (a line that is true of the reader, or none)."""
    parts = []
    if matched:
        parts.append("Matches: " + ", ".join(matched))
    if filed:
        parts.append("In " + ", ".join(dict.fromkeys(filed)))
    if liked is not None:
        verb, title = liked
        parts.append(f"Like the paper you {verb}: {title}")
    if not parts and related:
        parts.append("Related to: " + ", ".join(related))
    return " · ".join(parts) or fallback


def fallback_reason(reader_liked: bool, near_history: bool | None, meaning: float) -> str:
    """The line for a pick that no keyword, category or named liked paper explains, by what let it
    in: meaning, else the model near a paper the reader liked (it lends support only there), else
    none. A paper let in by its closeness to a liked paper alone names that paper (the ranker's
    rule). near_history: the pick is nearer than the day's mean to a liked paper (None: not known,
    and the reader's history is the line, as before it was measured)."""
    if reader_liked and near_history is None:
        return HISTORY_REASON
    if meaning > 0:
        return MEANING_REASON
    if reader_liked and near_history:
        return HISTORY_REASON
    return ""


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
            self.gram = dense_product(vectors, self.transposed)

    def among(self, rows: Sequence[int], cols: Sequence[int]) -> np.ndarray:
        if self.gram is not None:
            return self.gram[np.ix_(rows, cols)]
        return np.asarray((self.vectors[list(rows)] @ self.transposed).todense())[:, cols]

    def from_others(self, others: sp.csr_matrix, out: np.ndarray | None = None) -> np.ndarray:
        """others x day papers: cosines of other papers' vectors to the day's papers (into out, a
        C-contiguous float32 array of that shape, when given)."""
        return dense_product(others, self.transposed, out=out)


class LikedSimilarity(Protocol):
    """For the reason line: how close each chosen paper is to each paper the subscriber liked."""

    threshold: float

    def to_chosen(self, row: int, chosen: Sequence[int]) -> np.ndarray | None:
        """chosen x liked cosines for the group's subscriber ``row``; None when there is nothing to compare."""


class LikedWords:
    """Tf-idf cosines from the liked papers to the day's.

    cosines: every distinct liked paper against every day paper, computed once per group
    (LikedPapers.to_day) and shared with the centroid score. Without it (a group that liked too many
    distinct papers to keep that matrix), consecutive subscribers' liked papers are compared in
    blocks, one sparse product and one dense block per few thousand liked papers.
    """

    BLOCK_ROWS = 4000  # liked papers per block: at 2,000 day papers a 32 MB float32 block
    threshold = LIKED_REASON_SIMILARITY

    def __init__(self, rows: Sequence[Sequence[int]], *, cosines: np.ndarray | None = None,
                 vectors: sp.csr_matrix | None = None, similarity: PaperSimilarity | None = None) -> None:
        self.rows = rows  # per subscriber, its rows of cosines (or of vectors)
        self.cosines = cosines  # distinct liked papers x day papers
        self.vectors = vectors  # one row per distinct liked paper
        self.similarity = similarity
        self._start = self._end = 0
        self._block = np.zeros((0, 0), dtype=np.float32)
        self._local: dict[int, int] = {}

    def _load(self, first: int) -> None:
        assert self.vectors is not None and self.similarity is not None
        end, distinct = first, dict[int, int]()
        while end < len(self.rows) and (end == first or len(distinct) + len(self.rows[end]) <= self.BLOCK_ROWS):
            for r in self.rows[end]:
                distinct.setdefault(r, len(distinct))
            end += 1
        self._start, self._end, self._local = first, end, distinct
        self._block = self.similarity.from_others(self.vectors[list(distinct)])

    def to_chosen(self, row: int, chosen: Sequence[int]) -> np.ndarray | None:
        if not self.rows[row] or not chosen:
            return None
        if self.cosines is not None:
            return self.cosines[np.ix_(list(self.rows[row]), list(chosen))].T
        if not self._start <= row < self._end:
            self._load(row)
        local = [self._local[r] for r in self.rows[row]]
        return self._block[np.ix_(local, list(chosen))].T


def excluded_papers(papers: Sequence[Paper], phrases: Sequence[str], index: PaperIndex | None = None) -> np.ndarray:
    """Bool per paper: it mentions one of the phrases (whole words, in the title or the abstract)."""
    if index is not None:
        return index.mentions(phrases)
    return np.array([mentions_any(p, phrases) for p in papers], dtype=bool)


def _heads(keyed: np.ndarray, depth: int) -> list[np.ndarray]:
    """Per row, the columns of its ``depth`` highest finite values, best first, ties by column:
    what a stable sort of the whole row would give, from a partial sort."""
    n = keyed.shape[1]
    if depth >= n:
        order = np.argsort(-keyed, axis=1, kind="stable")
    else:
        part = np.argpartition(-keyed, depth - 1, axis=1)[:, :depth]
        vals = np.take_along_axis(keyed, part, axis=1)
        order = np.take_along_axis(part, np.lexsort((part, -vals), axis=1), axis=1)
        # Equal scores across the cut: argpartition kept an arbitrary few; sort those rows whole.
        edge = np.take_along_axis(keyed, order[:, -1:], axis=1)
        kept_at_edge = (np.take_along_axis(keyed, order, axis=1) == edge).sum(axis=1)
        tied = np.flatnonzero((edge[:, 0] > -np.inf) & ((keyed == edge).sum(axis=1) > kept_at_edge))
        for r in tied:
            order[r] = np.argsort(-keyed[r], kind="stable")[:depth]
    return [order[r][keyed[r, order[r]] > -np.inf] for r in range(keyed.shape[0])]


def _mmr_rows(heads: Sequence[np.ndarray], scores: np.ndarray, rows: Sequence[int], similarity: PaperSimilarity,
              k: int, diversity: float) -> np.ndarray:
    """Greedy maximal marginal relevance for several subscribers at once (rows of scores), each
    over the first k * POOL_FACTOR papers of its head: trade a little score for not repeating a
    chosen paper. Returns rows x k chosen columns."""
    depth = max(k * POOL_FACTOR, k)
    pool = np.zeros((len(rows), depth), dtype=np.int64)
    available = np.zeros((len(rows), depth), dtype=bool)
    for n, r in enumerate(rows):
        head = heads[r][:depth]
        pool[n, : len(head)] = head
        available[n, : len(head)] = True
    if similarity.gram is not None:
        sims = similarity.gram[pool[:, :, None], pool[:, None, :]]
    else:  # too many papers for the dense matrix: each pool's cosines on their own
        sims = np.stack([similarity.among(list(p), list(p)) for p in pool])
    relevance = (1 - diversity) * np.take_along_axis(scores[list(rows)], pool, axis=1)
    max_sim = np.zeros(pool.shape)
    at = np.arange(len(rows))
    chosen = np.zeros((len(rows), k), dtype=np.int64)
    for step in range(k):
        value = relevance - diversity * max_sim
        value[~available] = -np.inf
        j = np.argmax(value, axis=1)
        chosen[:, step] = pool[at, j]
        available[at, j] = False
        max_sim = np.maximum(max_sim, sims[at, j])
    return chosen


def select_group(
    papers: Sequence[Paper],
    scores: np.ndarray,
    matched: Sequence[Hits],
    related: Sequence[Hits],
    *,
    top_k: Sequence[int],
    min_score: float,
    shown: Sequence[Collection[int]],
    exclude: Sequence[Sequence[str]],
    similarity: PaperSimilarity | None = None,
    diversity: float = 0.0,
    liked: Sequence[Sequence[tuple[str, Paper]]] = (),
    liked_similarity: LikedSimilarity | None = None,
    explore: bool = False,
    index: PaperIndex | None = None,
    support: np.ndarray | None = None,
    meaning: np.ndarray | None = None,
    near_liked: np.ndarray | None = None,
    filed: Sequence[Hits] = (),
) -> list[list[Pick]]:
    """Every subscriber's picks; scores, matched, related, top_k, shown, exclude (and liked, when
    given) have one entry per subscriber, in the same order.

    liked: (verb, paper) the reader starred or opened, for the reason line, with liked_similarity
    (words or meaning) comparing them to the picks.
    explore: the last slot goes to the best paper, further down the list, that is unlike every
    other pick, so the reader's reaction to it can widen what the model knows.
    index: the day's words, to find the papers an exclude phrase rules out without re-reading them.
    support: the evidence for each paper that min_score applies to (default: the scores).
    meaning: how far each paper stands out in meaning for the subscriber's keywords (0: not at all),
    for the reason line of a pick that nothing else explains; near_liked: how far each paper stands
    out in closeness to the subscriber's nearest liked paper (above 0: nearer than the day's mean),
    for the same line.
    filed: per subscriber and paper, the categories its keywords name that the paper is filed in.
    """
    n_subs, n_papers = scores.shape
    if n_subs == 0:
        return []
    col_of = {p.id: c for c, p in enumerate(papers) if p.id is not None}
    floor = scores if support is None else support
    keyed = np.where(floor >= min_score, scores, -np.inf).astype(scores.dtype, copy=False)
    ruled_out: dict[tuple[str, ...], np.ndarray] = {}  # subscribers often share their exclude phrases
    for r in range(n_subs):
        cols = [col_of[p] for p in shown[r] if p in col_of]
        if cols:
            keyed[r, cols] = -np.inf
        if exclude[r]:
            phrases = tuple(exclude[r])
            if phrases not in ruled_out:
                ruled_out[phrases] = excluded_papers(papers, phrases, index)
            keyed[r, ruled_out[phrases]] = -np.inf
    # Only the head of each list can be picked: top_k, the MMR pool, and the explore slot's range.
    heads = _heads(keyed, max(max(top_k), 1) * POOL_FACTOR * 2)

    chosen: list[list[int]] = [[int(i) for i in heads[r][: top_k[r]]] for r in range(n_subs)]
    if diversity > 0 and similarity is not None:
        for k in sorted(set(top_k)):
            rows = [r for r in range(n_subs) if top_k[r] == k and len(heads[r]) > k]
            if rows:
                for r, picked in zip(rows, _mmr_rows(heads, scores, rows, similarity, k, diversity), strict=True):
                    chosen[r] = [int(i) for i in picked]

    out = []
    for r in range(n_subs):
        mine = chosen[r]
        explored = None
        if explore and similarity is not None and top_k[r] >= 2 and len(mine) == top_k[r]:
            explored = _explore(heads[r], mine[:-1], similarity, top_k[r])
            if explored is not None:
                mine = mine[:-1] + [explored]
        their_likes = liked[r] if liked else ()
        sims, threshold = None, 0.0
        if their_likes and liked_similarity is not None:
            sims, threshold = liked_similarity.to_chosen(r, mine), liked_similarity.threshold
        if sims is not None and sims.shape[1] != len(their_likes):
            sims = None
        # Per pick, the closest liked paper, if close enough to be named.
        closest: list[int] = [-1] * len(mine)
        if sims is not None:
            best = sims.argmax(axis=1)
            closest = np.where(sims[np.arange(len(mine)), best] >= threshold, best, -1).tolist()
        picks = []
        for n, i in enumerate(mine):
            like = None
            if closest[n] >= 0:
                verb, paper = their_likes[closest[n]]
                like = (verb, paper.title)
            hit = matched[r][i]
            field = filed[r][i] if filed else ()
            # Related keywords only speak when nothing better does.
            rel = related[r][i] if not hit and not field and like is None else ()
            fallback = fallback_reason(bool(their_likes), None if near_liked is None else bool(near_liked[r, i] > 0),
                                       0.0 if meaning is None else float(meaning[r, i]))
            reason = EXPLORE_REASON if i == explored else reason_line(hit, rel, like, fallback, field)
            picks.append(Pick(paper=papers[i], score=float(scores[r, i]), matched=hit, reason=reason))
        out.append(picks)
    return out


def select_picks(
    papers: Sequence[Paper],
    scores: np.ndarray,
    matched: Hits,
    related: Hits,
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
    filed: Hits = (),
) -> list[Pick]:
    """One subscriber's picks (see select_group); liked_vectors: the liked papers' tf-idf rows."""
    closeness = None
    if liked and liked_vectors is not None and similarity is not None:
        closeness = LikedWords([list(range(liked_vectors.shape[0]))], vectors=liked_vectors, similarity=similarity)
    return select_group(papers, scores[None, :], [matched], [related], top_k=[top_k], min_score=min_score,
                        shown=[shown], exclude=[exclude], similarity=similarity, diversity=diversity,
                        liked=[liked], liked_similarity=closeness, explore=explore,
                        filed=[filed] if filed else ())[0]


def _explore(head: np.ndarray, kept: list[int], similarity: PaperSimilarity, k: int) -> int | None:
    rest = [int(i) for i in head[k : k * POOL_FACTOR * 2] if i not in kept]
    if not rest or not kept:
        return None
    sims = similarity.among(rest, kept).max(axis=1)
    unlike = [i for i, s in zip(rest, sims, strict=True) if s < 0.1]
    return unlike[0] if unlike else None
