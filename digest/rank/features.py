"""Text features in a fixed hashed space, so vectors stay comparable from day to day.

Tokens are lower-cased words with hyphens split, English stop words dropped and a light plural
fold ("models" -> "model"), so a keyword and the paper text are normalised the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

from digest.domain import Paper
from digest.rank.tokens import stems, tokens

__all__ = ["stems", "tokens"]  # re-exported: the tokenizer lives in digest.rank.tokens (no numpy needed there)

N_FEATURES = 2**20
# Which features a text hashes to. Bump it with any change to the tokens, the n-grams or paper_text:
# stored term counts and document frequencies of another set are then rebuilt (digest.store.terms).
FEATURE_SET = 2  # 2: science words kept out of the stop list, plurals of stop words dropped


def _analyse(text: str) -> list[str]:
    toks = tokens(text)
    return toks + [f"{a} {b}" for a, b in zip(toks, toks[1:], strict=False)]


_VECTORIZER = HashingVectorizer(
    n_features=N_FEATURES, analyzer=_analyse, alternate_sign=False, norm=None, dtype=np.float32
)


def unigram_columns(toks: Sequence[str]) -> np.ndarray:
    """The hashed feature column of each token, as the vectorizer hashes a unigram (murmurhash3,
    seed 0, absolute value modulo the space)."""
    from sklearn.utils import murmurhash3_32

    return np.array([abs(murmurhash3_32(t, seed=0)) % N_FEATURES for t in toks], dtype=np.int64)


def paper_text(paper: Paper) -> str:
    # The title twice: it is the author's own summary and should weigh more than one abstract line.
    return f"{paper.title}. {paper.title}. {paper.abstract}"


def term_counts(texts: Sequence[str]) -> sp.csr_matrix:
    """Raw hashed term counts, one row per text."""
    if not texts:
        return sp.csr_matrix((0, N_FEATURES), dtype=np.float32)
    return sp.csr_matrix(_VECTORIZER.transform(texts))


def sublinear(counts: sp.csr_matrix) -> sp.csr_matrix:
    out = counts.copy()
    out.data = 1.0 + np.log(out.data)
    return out


def document_frequencies(counts: sp.csr_matrix) -> np.ndarray:
    return np.asarray((counts > 0).sum(axis=0)).ravel().astype(np.float32)


def idf_weights(df: np.ndarray, n_docs: int) -> np.ndarray:
    return (np.log((1.0 + n_docs) / (1.0 + df)) + 1.0).astype(np.float32)


def tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Sublinear tf times idf, rows L2-normalised."""
    if counts.shape[0] == 0:
        return sp.csr_matrix(counts.shape, dtype=np.float32)
    weighted = sublinear(counts)
    weighted.data *= idf[weighted.indices]  # column scaling without building a diagonal matrix
    weighted.eliminate_zeros()
    return sp.csr_matrix(normalize(weighted, norm="l2", copy=False))


def term_presence(texts: Sequence[str]) -> np.ndarray:
    """How many of these texts contain each hashed feature: the increment to document frequencies."""
    if not texts:
        return np.zeros(N_FEATURES, dtype=np.float32)
    return document_frequencies(term_counts(texts))


Terms = tuple[np.ndarray, np.ndarray]  # one paper's hashed term counts: feature indices, counts
TermsSource = Callable[[Sequence[int]], Mapping[int, Terms]]


def stack_rows(rows: Sequence[Terms]) -> sp.csr_matrix:
    """Sparse rows (feature indices, values) into one matrix, one row per paper."""
    indptr = np.concatenate([[0], np.cumsum([len(i) for i, _ in rows])]).astype(np.int64)
    indices = np.concatenate([i for i, _ in rows]) if rows else np.zeros(0, dtype=np.int32)
    values = np.concatenate([v for _, v in rows]) if rows else np.zeros(0, dtype=np.float32)
    return sp.csr_matrix((values.astype(np.float32, copy=False), indices, indptr), shape=(len(rows), N_FEATURES))


def rows_of(counts: sp.csr_matrix) -> list[Terms]:
    return [(counts.indices[counts.indptr[r]:counts.indptr[r + 1]], counts.data[counts.indptr[r]:counts.indptr[r + 1]])
            for r in range(counts.shape[0])]


class FeatureSpace:
    """The idf weights in force for one run: stored document frequencies, else the batch's own.

    Stored papers' vectors are kept by id for the run: a liked paper is needed by the training, the
    centroid and the reason lines of every subscriber who liked it. terms: where stored papers'
    term counts can be read (the store), so their text need not be tokenised again.
    """

    CACHE_ROWS = 100_000  # about 1 KB a paper

    def __init__(self, idf: np.ndarray, terms: TermsSource | None = None) -> None:
        self.idf = idf
        self.terms = terms
        self._cached: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # paper id -> (indices, values)

    @classmethod
    def from_stats(cls, df: np.ndarray, n_docs: int, terms: TermsSource | None = None) -> FeatureSpace:
        return cls(idf_weights(df, n_docs), terms)

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> FeatureSpace:
        counts = term_counts(texts)
        return cls(idf_weights(document_frequencies(counts), len(texts)))

    def _counts(self, papers: Sequence[Paper]) -> sp.csr_matrix:
        """The papers' term counts: stored ones where the source has them, the rest hashed now."""
        ids = [p.id for p in papers if p.id is not None]
        stored = self.terms(ids) if self.terms is not None and ids else {}
        if not stored:
            return term_counts([paper_text(p) for p in papers])
        missing = [p for p in papers if p.id not in stored]
        hashed = iter(rows_of(term_counts([paper_text(p) for p in missing]))) if missing else iter(())
        return stack_rows([stored[p.id] if p.id is not None and p.id in stored else next(hashed) for p in papers])

    def paper_vectors(self, papers: Sequence[Paper]) -> sp.csr_matrix:
        fresh = [i for i, p in enumerate(papers) if p.id is None or p.id not in self._cached]
        made = tfidf(self._counts([papers[i] for i in fresh]), self.idf) if fresh else None
        made_rows = rows_of(made) if made is not None else []
        if len(self._cached) + len(fresh) <= self.CACHE_ROWS:
            for i, row in zip(fresh, made_rows, strict=True):
                if (pid := papers[i].id) is not None:
                    self._cached[pid] = row
        if made is not None and len(fresh) == len(papers):
            return made
        # Each paper's own row, by position: a paper without an id is never cached.
        by_position = dict(zip(fresh, made_rows, strict=True))
        rows = []
        for i, p in enumerate(papers):
            if i in by_position:
                rows.append(by_position[i])
            else:
                assert p.id is not None
                rows.append(self._cached[p.id])
        return stack_rows(rows)

    def text_vectors(self, texts: Sequence[str]) -> sp.csr_matrix:
        return tfidf(term_counts(texts), self.idf)
