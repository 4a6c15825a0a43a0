"""The keyword profile (cold start): tf-idf cosine plus a bonus for whole-phrase matches.

All subscribers are scored at once: one sparse product (subscribers x features) x (features x papers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from digest.domain import Paper, Subscriber
from digest.rank import features
from digest.rank.products import dense_product

# A phrase in the title says more than one in the abstract; the cap keeps a paper that merely
# repeats many keywords from drowning the similarity signal.
TITLE_PHRASE_BONUS = 0.25
ABSTRACT_PHRASE_BONUS = 0.12
MAX_PHRASE_BONUS = 0.6


class PhraseHits:
    """A bool matrix, phrases x papers, read one paper at a time: the phrases that hit a paper are
    found once, for every subscriber of the group who asks about it."""

    def __init__(self, hits: np.ndarray) -> None:
        self.hits = hits
        self._by_paper: dict[int, frozenset[int]] = {}

    def of_paper(self, paper: int) -> frozenset[int]:
        got = self._by_paper.get(paper)
        if got is None:
            got = self._by_paper[paper] = frozenset(np.flatnonzero(self.hits[:, paper]).tolist())
        return got


class KeywordHits:
    """One subscriber's keywords that hit each paper, built only for the papers asked for.

    hits: phrases x papers; rows: which of its rows are this subscriber's keywords, in order
    (default: all), so a group's subscribers share one matrix of the distinct phrases.
    """

    def __init__(self, keywords: Sequence[str], hits: np.ndarray | PhraseHits, rows: Sequence[int] | None = None
                 ) -> None:
        self.keywords = tuple(keywords)
        self.hits = hits if isinstance(hits, PhraseHits) else PhraseHits(hits)
        self.rows = list(range(self.hits.hits.shape[0])) if rows is None else list(rows)

    def __getitem__(self, paper: int) -> tuple[str, ...]:
        got = self.hits.of_paper(paper)
        if not got:
            return ()
        return tuple(k for k, r in zip(self.keywords, self.rows, strict=True) if r in got)

    def __len__(self) -> int:
        return int(self.hits.hits.shape[1])


@dataclass(frozen=True)
class KeywordScores:
    scores: np.ndarray  # subscribers x papers
    matched: list[KeywordHits]  # [subscriber][paper] -> keywords matched as whole phrases
    related: list[KeywordHits]  # [subscriber][paper] -> keywords sharing words, not whole


def _joined(toks: Sequence[str]) -> str:
    return " " + " ".join(toks) + " "


class PaperIndex:
    """The day's papers as normalised text plus an inverted index of their words.

    A keyword is looked for as a whole phrase only in the papers that hold all its words, so the
    cost follows the hits, not keywords x papers.
    """

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.n = len(papers)
        self.title_text: list[str] = []
        self.body_text: list[str] = []
        self.full_text: list[str] = []  # title then abstract: a phrase may run from one into the other
        postings: dict[str, list[int]] = {}
        for pi, p in enumerate(papers):
            title, body = features.tokens(p.title), features.tokens(p.abstract)
            self.title_text.append(_joined(title))
            self.body_text.append(_joined(body))
            self.full_text.append(_joined(title + body))
            for word in set(title) | set(body):
                postings.setdefault(word, []).append(pi)
        self.postings = {w: np.array(ps, dtype=np.int64) for w, ps in postings.items()}

    def mentions(self, phrases: Sequence[str]) -> np.ndarray:
        """Bool per paper: one of the phrases occurs in it, as whole words."""
        out = np.zeros(self.n, dtype=bool)
        for k in phrases:
            ktoks = features.tokens(k)
            if not ktoks:
                continue
            phrase = _joined(ktoks)
            for pi in self._holding_all(ktoks):
                out[pi] = out[pi] or phrase in self.full_text[pi]
        return out

    def _holding_all(self, words: Sequence[str]) -> np.ndarray:
        """The papers that hold every one of these words (where a phrase of them can occur)."""
        empty = np.zeros(0, dtype=np.int64)
        lists = [self.postings.get(w, empty) for w in set(words)]
        both = lists[0]
        for ps in lists[1:]:
            both = np.intersect1d(both, ps, assume_unique=True)
        return both

    def phrase_hits(self, phrases: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Three bool matrices, phrases x papers: whole phrase in the title, in the abstract, and
        sharing at least one word."""
        in_title = np.zeros((len(phrases), self.n), dtype=bool)
        in_body = np.zeros((len(phrases), self.n), dtype=bool)
        shares = np.zeros((len(phrases), self.n), dtype=bool)
        empty = np.zeros(0, dtype=np.int64)
        for ki, k in enumerate(phrases):
            ktoks = features.tokens(k)
            if not ktoks:
                continue
            for w in set(ktoks):
                shares[ki, self.postings.get(w, empty)] = True
            phrase = _joined(ktoks)
            for pi in self._holding_all(ktoks):
                in_title[ki, pi] = phrase in self.title_text[pi]
                in_body[ki, pi] = phrase in self.body_text[pi]
        return in_title, in_body, shares


def score_keywords(
    subscribers: Sequence[Subscriber],
    papers: Sequence[Paper],
    space: features.FeatureSpace | None = None,
    paper_vecs: sp.csr_matrix | None = None,
    paper_index: PaperIndex | None = None,
    paper_vecs_t: sp.csr_matrix | None = None,
) -> KeywordScores:
    """space: the idf in force (default: the papers' own); paper_vecs: their vectors in that space;
    paper_index: the papers' words, when the caller scores them for several groups of subscribers;
    paper_vecs_t: paper_vecs transposed as CSR, kept by such a caller (transposing costs more than the product)."""
    n_subs, n_papers = len(subscribers), len(papers)
    if n_subs == 0 or n_papers == 0:
        empty = [KeywordHits(s.keywords, np.zeros((len(s.keywords), n_papers), dtype=bool)) for s in subscribers]
        return KeywordScores(np.zeros((n_subs, n_papers), dtype=np.float32), empty, empty)

    if space is None:
        space = features.FeatureSpace.from_texts([features.paper_text(p) for p in papers])
    if paper_vecs is None:
        paper_vecs = space.paper_vectors(papers)
    idf = space.idf

    # Each keyword is one unit vector, so a long phrase does not outweigh a short one.
    vocab = sorted({k for s in subscribers for k in s.keywords})
    kw_index = {k: i for i, k in enumerate(vocab)}
    kw_vecs = features.tfidf(features.term_counts(vocab), idf)
    rows, cols = [], []
    for si, sub in enumerate(subscribers):
        for k in sub.keywords:
            rows.append(si)
            cols.append(kw_index[k])
    membership = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_subs, len(vocab)))
    profiles = sp.csr_matrix(normalize(membership @ kw_vecs, norm="l2"))
    if paper_vecs_t is None:
        paper_vecs_t = sp.csr_matrix(paper_vecs.T)
    cosine = dense_product(profiles, paper_vecs_t)

    # Phrase matches on the same normalised tokens, per distinct keyword.
    index = paper_index if paper_index is not None else PaperIndex(papers)
    in_title, in_body, shares = index.phrase_hits(vocab)

    # Per distinct phrase, then summed per subscriber by one sparse product: a phrase counts once,
    # in the title if it is there, else in the abstract.
    only_body = in_body & ~in_title
    whole = in_title | only_body
    partial = shares & ~whole
    n_title = np.asarray(membership @ in_title.astype(np.float32), dtype=np.float64)
    n_body = np.asarray(membership @ only_body.astype(np.float32), dtype=np.float64)
    bonus = np.minimum(TITLE_PHRASE_BONUS * n_title + ABSTRACT_PHRASE_BONUS * n_body, MAX_PHRASE_BONUS)
    own = [[kw_index[k] for k in sub.keywords] for sub in subscribers]
    whole_hits, partial_hits = PhraseHits(whole), PhraseHits(partial)
    matched = [KeywordHits(sub.keywords, whole_hits, r) for sub, r in zip(subscribers, own, strict=True)]
    related = [KeywordHits(sub.keywords, partial_hits, r) for sub, r in zip(subscribers, own, strict=True)]
    return KeywordScores(cosine + bonus.astype(np.float32), matched, related)

