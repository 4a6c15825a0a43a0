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

# A phrase in the title says more than one in the abstract; the cap keeps a paper that merely
# repeats many keywords from drowning the similarity signal.
TITLE_PHRASE_BONUS = 0.25
ABSTRACT_PHRASE_BONUS = 0.12
MAX_PHRASE_BONUS = 0.6


class KeywordHits:
    """One subscriber's keywords that hit each paper, built only for the papers asked for."""

    def __init__(self, keywords: Sequence[str], hits: np.ndarray) -> None:
        self.keywords = tuple(keywords)
        self.hits = hits  # bool: keywords x papers

    def __getitem__(self, paper: int) -> tuple[str, ...]:
        return tuple(self.keywords[j] for j in np.flatnonzero(self.hits[:, paper]))

    def __len__(self) -> int:
        return int(self.hits.shape[1])


@dataclass(frozen=True)
class KeywordScores:
    scores: np.ndarray  # subscribers x papers
    matched: list[KeywordHits]  # [subscriber][paper] -> keywords matched as whole phrases
    related: list[KeywordHits]  # [subscriber][paper] -> keywords sharing words, not whole


def _joined(toks: Sequence[str]) -> str:
    return " " + " ".join(toks) + " "


def score_keywords(
    subscribers: Sequence[Subscriber],
    papers: Sequence[Paper],
    space: features.FeatureSpace | None = None,
    paper_vecs: sp.csr_matrix | None = None,
) -> KeywordScores:
    """space: the idf in force (default: the papers' own); paper_vecs: their vectors in that space."""
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
    cosine = np.asarray((profiles @ paper_vecs.T).todense(), dtype=np.float32)

    # Phrase matches on the same normalised tokens, per distinct keyword.
    title_text = [_joined(features.tokens(p.title)) for p in papers]
    body_text = [_joined(features.tokens(p.abstract)) for p in papers]
    word_sets = [set(features.tokens(f"{p.title} {p.abstract}")) for p in papers]
    in_title = np.zeros((len(vocab), n_papers), dtype=bool)
    in_body = np.zeros((len(vocab), n_papers), dtype=bool)
    shares = np.zeros((len(vocab), n_papers), dtype=bool)
    for ki, k in enumerate(vocab):
        ktoks = features.tokens(k)
        if not ktoks:
            continue
        phrase = _joined(ktoks)
        kset = set(ktoks)
        for pi in range(n_papers):
            in_title[ki, pi] = phrase in title_text[pi]
            in_body[ki, pi] = phrase in body_text[pi]
            shares[ki, pi] = bool(kset & word_sets[pi])

    bonus = np.zeros((n_subs, n_papers), dtype=np.float32)
    matched: list[KeywordHits] = []
    related: list[KeywordHits] = []
    for si, sub in enumerate(subscribers):
        idx = [kw_index[k] for k in sub.keywords]
        t = in_title[idx]
        b = in_body[idx] & ~t
        raw_bonus = TITLE_PHRASE_BONUS * t.sum(axis=0) + ABSTRACT_PHRASE_BONUS * b.sum(axis=0)
        bonus[si] = np.minimum(raw_bonus, MAX_PHRASE_BONUS)
        whole = t | b
        partial = shares[idx] & ~whole
        matched.append(KeywordHits(sub.keywords, whole))
        related.append(KeywordHits(sub.keywords, partial))
    return KeywordScores(cosine + bonus, matched, related)

