"""Reference recommenders: random, keyword-only (what keyword alerts do), and arxiv-sanity-lite's SVM.

Text features follow arxiv-sanity-lite's compute.py (tf-idf on 1-2-grams, sublinear tf, English stop
words) with max_features 20000, min_df 5, max_df 0.1, fitted once on every paper of the corpus. The
keyword recommender uses the same vectoriser, so the two differ only in the learning.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from digest.errors import InputError
from digest.evaluate.protocol import EvalCorpus, EvalUser, top_k

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextFeatures:
    vectorizer: TfidfVectorizer
    matrix: sp.csr_matrix  # papers x features, rows L2-normalised

    @classmethod
    def fit(cls, corpus: EvalCorpus, *, max_features: int = 20000, min_df: int | float = 5,
            max_df: int | float = 0.1) -> TextFeatures:
        vec = TfidfVectorizer(
            strip_accents="unicode", lowercase=True, analyzer="word", stop_words="english",
            token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", ngram_range=(1, 2), max_features=max_features,
            norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True, max_df=max_df, min_df=min_df,
            dtype=np.float32,
        )
        try:
            matrix = vec.fit_transform(corpus.texts())
        except ValueError as exc:  # e.g. "After pruning, no terms remain"
            raise InputError(f"cannot build tf-idf features from {len(corpus)} papers: {exc}") from None
        log.info("tf-idf: %d papers x %d features", matrix.shape[0], matrix.shape[1])
        return cls(vec, sp.csr_matrix(matrix))

    def keyword_profiles(self, users: Sequence[EvalUser]) -> sp.csr_matrix:
        """One row per user: tf-idf of the user's keywords as one short query (L2-normalised)."""
        return sp.csr_matrix(self.vectorizer.transform([" ".join(u.keywords) for u in users]))


class RandomRecommender:
    """Uniformly random picks; restarted from the same seed in every scenario."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._users: list[EvalUser] = []

    def start(self, corpus: EvalCorpus, users: Sequence[EvalUser], scenario: str) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._users = list(users)

    def recommend(self, day: int, batch: np.ndarray, k: int) -> dict[str, list[int]]:
        return top_k(self._users, self._rng.random((len(self._users), len(batch))), batch, k)

    def feedback(self, day: int, shown: dict[str, list[int]], clicked: dict[str, list[int]]) -> None:
        pass


class KeywordRecommender:
    """Cosine of the keyword query against each paper's tf-idf vector. Learns nothing."""

    name = "keyword"

    def __init__(self, features: TextFeatures) -> None:
        self.features = features
        self._users: list[EvalUser] = []
        self._profiles = sp.csr_matrix((0, features.matrix.shape[1]), dtype=np.float32)

    def start(self, corpus: EvalCorpus, users: Sequence[EvalUser], scenario: str) -> None:
        self._users = list(users)
        self._profiles = self.features.keyword_profiles(self._users)

    def scores(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray((self._profiles @ self.features.matrix[batch].T).toarray(), dtype=np.float64)

    def recommend(self, day: int, batch: np.ndarray, k: int) -> dict[str, list[int]]:
        return top_k(self._users, self.scores(batch), batch, k)

    def feedback(self, day: int, shown: dict[str, list[int]], clicked: dict[str, list[int]]) -> None:
        pass


def _svm_scores(matrix: sp.csr_matrix, arrived: np.ndarray, batch: np.ndarray, c: float,
                jobs: Sequence[tuple[int, np.ndarray]]) -> list[tuple[int, np.ndarray]]:
    """For each (user row, positive papers): train one LinearSVC and score the batch."""
    n_papers = matrix.shape[0]
    is_arrived = np.zeros(n_papers, dtype=bool)
    is_arrived[arrived] = True
    x_arrived = matrix[arrived]
    x_batch = matrix[batch]
    out: list[tuple[int, np.ndarray]] = []
    for row, pos in jobs:
        is_pos = np.zeros(n_papers, dtype=bool)
        is_pos[pos] = True
        y_arrived = is_pos[arrived]
        if y_arrived.all():
            continue  # nothing negative to learn from: the caller keeps the keyword ranking
        extra = pos[~is_arrived[pos]]  # stars that have not "arrived" are still the user's papers
        x = sp.vstack([x_arrived, matrix[extra]], format="csr") if len(extra) else x_arrived
        y = np.concatenate([y_arrived, np.ones(len(extra), dtype=bool)]).astype(np.int8)
        # The settings of arxiv-sanity-lite's serve.py.
        clf = LinearSVC(class_weight="balanced", max_iter=10000, tol=1e-6, C=c)
        clf.fit(x, y)
        out.append((row, clf.decision_function(x_batch)))
    return out


_WORKER_MATRIX: sp.csr_matrix | None = None


def _init_worker(matrix: sp.csr_matrix) -> None:
    global _WORKER_MATRIX
    _WORKER_MATRIX = matrix


def _worker_scores(arrived: np.ndarray, batch: np.ndarray, c: float,
                   jobs: Sequence[tuple[int, np.ndarray]]) -> list[tuple[int, np.ndarray]]:
    assert _WORKER_MATRIX is not None
    return _svm_scores(_WORKER_MATRIX, arrived, batch, c, jobs)


class AslSvmRecommender:
    """arxiv-sanity-lite's recommender, retrained per user per day.

    Positives: the user's stars and clicks so far. Negatives: every other paper that has arrived so
    far, today's batch included (arxiv-sanity-lite trains on its whole database, new papers too).
    A user without positives gets the keyword ranking. With workers > 1 the fits of one day are
    spread over forked processes (liblinear holds the GIL for much of a fit, so threads barely help).
    """

    name = "asl-svm"

    def __init__(self, features: TextFeatures, *, c: float = 0.01, workers: int = 1) -> None:
        self.features = features
        self.c = c
        self.workers = workers if "fork" in mp.get_all_start_methods() else 1
        # liblinear wants float64 with sorted indices; converting once saves a copy per fit.
        # astype copies indices too: sorting a matrix that shares them would scramble features.matrix.
        self._matrix = sp.csr_matrix(features.matrix.astype(np.float64, copy=True))
        self._matrix.sort_indices()
        self._keyword = KeywordRecommender(features)
        self._users: list[EvalUser] = []
        self._positives: list[set[int]] = []
        self._arrived: list[np.ndarray] = []

    def start(self, corpus: EvalCorpus, users: Sequence[EvalUser], scenario: str) -> None:
        self._keyword.start(corpus, users, scenario)
        self._users = list(users)
        self._positives = [set(u.stars) for u in self._users]
        self._arrived = []

    def recommend(self, day: int, batch: np.ndarray, k: int) -> dict[str, list[int]]:
        self._arrived.append(batch)
        arrived = np.concatenate(self._arrived)
        scores = self._keyword.scores(batch)
        jobs = [(i, np.fromiter(p, dtype=np.int64)) for i, p in enumerate(self._positives) if p]
        if self.workers > 1 and len(jobs) > 1:
            chunks = [jobs[i::self.workers] for i in range(self.workers)]
            ctx = mp.get_context("fork")  # the children inherit the matrix instead of unpickling it
            with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(self._matrix,)) as pool:
                parts = list(pool.map(_worker_scores, *zip(*[(arrived, batch, self.c, ch) for ch in chunks],
                                                            strict=True)))
            results = [r for part in parts for r in part]
        else:
            results = _svm_scores(self._matrix, arrived, batch, self.c, jobs)
        for row, s in results:
            scores[row] = s
        return top_k(self._users, scores, batch, k)

    def feedback(self, day: int, shown: dict[str, list[int]], clicked: dict[str, list[int]]) -> None:
        for row, user in enumerate(self._users):
            self._positives[row].update(clicked.get(user.user_id, ()))
