"""Similar papers: a stored paper's nearest neighbours among every stored paper, by the ranker's own
text vectors (hashed words and word pairs, weighted by how rare they are among the stored papers).

Measuring a paper against 100,000 others on each page view costs too much, so the full-text index
(digest.store.search.related_ids) first gathers the papers that share its most distinctive words,
and the vectors then order those. A neighbour must pass MIN_SIMILARITY: a paper that shares one
common word is not shown as similar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine

from digest.domain import Paper
from digest.rank import features
from digest.store import learning
from digest.store.papers import papers_by_ids
from digest.store.search import related_ids
from digest.training.terms import StoredTerms

DISTINCTIVE_WORDS = 12  # the rarest words of the paper that gather the candidates
CANDIDATES = 200
# Cosine of the tf-idf vectors (words and word pairs, so even close papers rarely pass 0.2). Read on
# the 1,504 papers of the 2024-11-28 arXiv day (tests/fixtures): neighbours on the same narrow topic
# (jailbreaking attacks, LoRA fine-tuning, landmark detection) scored 0.06 to 0.17; papers sharing
# only a field word or two ("quantum", "AI", "deep learning") 0.02 to 0.05.
MIN_SIMILARITY = 0.06


@dataclass(frozen=True)
class Similar:
    paper: Paper
    similarity: float


def distinctive_words(paper: Paper, df: np.ndarray, n_docs: int, n: int = DISTINCTIVE_WORDS) -> list[str]:
    """The words that weigh most in the paper's own vector (how often it uses them times how rare
    they are among the stored papers), leaving out those no other stored paper holds: they gather
    no neighbour."""
    counts: dict[str, int] = {}
    # The title counts twice, as in features.paper_text.
    for w in features.tokens(f"{paper.title} {paper.title} {paper.abstract}"):
        if w.isalnum() and len(w) > 2:
            counts[w] = counts.get(w, 0) + 1
    words = list(counts)
    if not words:
        return []
    held_by = df[features.unigram_columns(words)]
    idf = features.idf_weights(held_by, n_docs)
    weight = (1 + np.log(np.array([counts[w] for w in words], dtype=np.float32))) * idf * (held_by >= 2)
    order = np.argsort(-weight, kind="stable")[:n]
    return [words[i] for i in order if weight[i] > 0]


def similar_papers(engine: Engine, paper: Paper, k: int = 8) -> list[Similar]:
    """Up to k stored papers nearest to this one (stored: it has an id), nearest first."""
    with engine.connect() as conn:
        stats = learning.load_df(conn, features.N_FEATURES)
    if stats is None or stats[0] == 0:
        return []  # nothing stored has its words counted yet
    n_docs, df = stats
    space = features.FeatureSpace.from_stats(df, n_docs, terms=StoredTerms(engine))
    words = distinctive_words(paper, df, n_docs)
    with engine.connect() as conn:
        ids = related_ids(conn, words, exclude=paper.id, limit=CANDIDATES)
        found = papers_by_ids(conn, ids)
    candidates = [found[i] for i in ids if i in found]
    if not candidates:
        return []
    vectors = space.paper_vectors([paper, *candidates])
    cosine = np.asarray((vectors[1:] @ vectors[0].T).todense()).ravel()
    order = np.argsort(-cosine, kind="stable")[:k]
    return [Similar(candidates[i], float(cosine[i])) for i in order if cosine[i] >= MIN_SIMILARITY]
