"""Per-subscriber linear models on the hashed tf-idf features, blended with the keyword prior.

Labels: stars weigh more than clicks; "less like this" is a strong negative, papers shown but not
clicked a weak one, and a sample of background papers a weaker one still. The model's weight in the
final score grows with the number of positives, so a new subscriber is ranked by keywords and an
engaged one mostly by what they did.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from digest.rank.classes import N_CLASSES
from digest.rank.features import N_FEATURES
from digest.rank.products import dense_product

# Label weights: explicit beats implicit, and a shown-but-ignored paper says little.
STAR_WEIGHT = 3.0
CLICK_WEIGHT = 1.0
DISLIKE_WEIGHT = 2.0
IGNORED_WEIGHT = 0.2
BACKGROUND_WEIGHT = 0.2
BACKGROUND_SAMPLE = 200  # background papers per training set
# The keyword profile joins the positives, so dislikes and clicks refine the keywords, not replace them.
KEYWORD_WEIGHT = 1.0
REGULARISATION_C = 4.0
# A model keeps its largest weights only. A fit gives a weight to every word of every paper it saw
# (about 5,000); most are tiny weights of words seen once, which hardly move a score, yet each costs
# time in the day's scoring product. Replayed on CiteULike-a, nDCG@10 with all weights, 2,000 and
# 1,000: warm seed 3 0.274 / 0.275 / 0.275, seed 5 0.257 / 0.257 / 0.258; cold unchanged (0.192,
# 0.156). 1,000 weights take two thirds off that product.
MAX_WEIGHTS = 1000
# The arXiv class block (digest.rank.classes) counts evidence / (evidence + CLASS_EVIDENCE) of its
# length in a fit, on the scale of the model's own say (ranker.MODEL_EVIDENCE, the same 5).
CLASS_EVIDENCE = 5.0


@dataclass(frozen=True)
class TrainingSet:
    positives: sp.csr_matrix  # rows: l2-normalised paper features
    positive_weights: np.ndarray
    negatives: sp.csr_matrix
    negative_weights: np.ndarray
    evidence: int  # explicit feedback behind it (stars, clicks): sets the model's say


@dataclass(frozen=True)
class LinearModel:
    """Sparse weights over the hashed feature space, plus an intercept."""

    indices: np.ndarray  # int32
    values: np.ndarray  # float32
    intercept: float
    n_pos: int  # the explicit feedback it was trained on (see TrainingSet.evidence)
    n_neg: int
    # Read from the bytes of a version whose models had no arXiv class block (digest.rank.classes):
    # its embedding weights are moved to where the dims are now, and it wants retraining.
    before_classes: bool = False

    # Stored as a small header and the raw arrays: loading ten thousand models a day must cost
    # microseconds each (numpy's .npz took about a millisecond apiece). Deflate gained a third in
    # size for more time than it saved: float weights hardly compress.
    _MAGIC = b"LM2\0"
    _BEFORE_CLASSES = b"LM1\0"
    _HEADER = struct.Struct("<4sIdii")  # magic, nonzeros, intercept, n_pos, n_neg

    def to_bytes(self) -> bytes:
        head = self._HEADER.pack(self._MAGIC, len(self.indices), self.intercept, self.n_pos, self.n_neg)
        return head + self.indices.astype("<i4").tobytes() + self.values.astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearModel:
        if data[:4] not in (cls._MAGIC, cls._BEFORE_CLASSES):  # written by an earlier version as .npz
            with np.load(io.BytesIO(data)) as z:
                meta = z["meta"]
                return cls._before_classes(z["indices"].astype(np.int32), z["values"].astype(np.float32),
                                           float(meta[0]), int(meta[1]), int(meta[2]))
        _, n, intercept, n_pos, n_neg = cls._HEADER.unpack_from(data)
        start = cls._HEADER.size
        indices = np.frombuffer(data, dtype="<i4", count=n, offset=start).astype(np.int32)
        values = np.frombuffer(data, dtype="<f4", count=n, offset=start + 4 * n).astype(np.float32)
        if data[:4] == cls._BEFORE_CLASSES:
            return cls._before_classes(indices, values, intercept, n_pos, n_neg)
        return cls(indices, values, intercept, n_pos, n_neg)

    @classmethod
    def _before_classes(cls, indices: np.ndarray, values: np.ndarray, intercept: float, n_pos: int,
                        n_neg: int) -> LinearModel:
        moved = np.where(indices >= N_FEATURES, indices + N_CLASSES, indices).astype(np.int32)
        return cls(moved, values, intercept, n_pos, n_neg, before_classes=True)


def _in_class_block(columns: np.ndarray) -> np.ndarray:
    out: np.ndarray = (columns >= N_FEATURES) & (columns < N_FEATURES + N_CLASSES)
    return out


def train(data: TrainingSet) -> LinearModel | None:
    """A logistic regression with sample weights; None when there is no positive to learn from."""
    n_pos, n_neg = data.positives.shape[0], data.negatives.shape[0]
    if n_pos == 0 or n_neg == 0 or data.evidence == 0:
        return None
    x = sp.vstack([data.positives, data.negatives]).tocsr()
    y = np.concatenate([np.ones(n_pos), np.zeros(n_neg)])
    w = np.concatenate([data.positive_weights, data.negative_weights]).astype(np.float64)
    # Balance the classes by total weight, so a handful of stars is not drowned by the background.
    w[:n_pos] *= w[n_pos:].sum() / max(w[:n_pos].sum(), 1e-9)
    # The class block's say grows with the evidence, as the model's own does (ranker.MODEL_EVIDENCE):
    # scaling a feature down is regularising its weight more. Two stars in cs.CV say little about
    # which of its papers a reader wants; ten "want these" in math.CO say they want math.CO.
    class_say = data.evidence / (data.evidence + CLASS_EVIDENCE)
    x.data[_in_class_block(x.indices)] *= class_say
    # Fit on the columns that occur: the hashed space has a million, a subscriber's papers a few
    # thousand, and the solver's cost per iteration grows with the width.
    cols = np.unique(x.indices)
    # The dual solver: a few hundred rows against thousands of columns (and 384 dense embedding dims
    # with the encoder) is where it converges fastest: the same fit, ~15x quicker than the primal.
    # random_state: the dual solver visits rows in a random order; fixed, the same labels give the
    # same model (a retrain on unchanged feedback changes no score).
    clf = LogisticRegression(C=REGULARISATION_C, solver="liblinear", dual=True, max_iter=200, random_state=0)
    clf.fit(x[:, cols], y, sample_weight=w)
    coef = np.asarray(clf.coef_, dtype=np.float32).ravel()
    coef[_in_class_block(cols)] *= class_say  # scored on the unscaled block
    keep = np.flatnonzero(coef)
    if len(keep) > MAX_WEIGHTS:
        keep = np.sort(keep[np.argpartition(-np.abs(coef[keep]), MAX_WEIGHTS - 1)[:MAX_WEIGHTS]])
    return LinearModel(cols[keep].astype(np.int32), coef[keep], float(clf.intercept_[0]), data.evidence, n_neg)


def _stacked(models: Sequence[LinearModel | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every model's weights end to end: row (subscriber), feature index, value; and the intercepts."""
    present = [m for m in models if m is not None]
    counts = np.array([len(m.indices) if m is not None else 0 for m in models], dtype=np.int64)
    intercepts = np.array([m.intercept if m is not None else 0.0 for m in models], dtype=np.float32)
    ind = np.concatenate([m.indices for m in present]) if present else np.zeros(0, dtype=np.int32)
    val = np.concatenate([m.values for m in present]) if present else np.zeros(0, dtype=np.float32)
    return np.repeat(np.arange(len(models)), counts), ind, val, intercepts


def _rows_to_csr(row: np.ndarray, ind: np.ndarray, val: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    # Entries come row by row in order, so counting them per row gives the index pointer.
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=shape[0]))])
    return sp.csr_matrix((val, ind, indptr), shape=shape)


@dataclass(frozen=True)
class ModelScores:
    probabilities: np.ndarray  # subscribers x papers; 0.5 where there is no model
    # What speaks for each paper: the model's positive word weights it holds, and with an encoder its
    # weights on the paper's meaning; not its lacking the words of papers waved away, nor the
    # intercept (0 where there is no model).
    words_for: np.ndarray


def scored_by_models(models: Sequence[LinearModel | None], papers_t: sp.csr_matrix,
                     dense: np.ndarray | None = None) -> ModelScores:
    """Every model on every paper: the word weights through two sparse products, the positive ones
    and the negative ones (together as many entries as one product), the embedding dims through BLAS.

    papers_t: the papers' features transposed (features x papers), as CSR: kept by the caller,
    since transposing a matrix of a million columns for each product costs more than the product.
    dense: the papers' encoder vectors (papers x dims), the features after papers_t's. Every model
    trained with them has a weight on each of those dims: through the sparse kernel they cost as
    much as a dense product done element by element, so they go through BLAS instead.
    """
    n_sparse = papers_t.shape[0]
    row, ind, val, intercepts = _stacked(models)
    words = ind < n_sparse
    shape = (len(models), n_sparse)
    up = words & (val > 0)
    down = words & (val < 0)
    words_for = dense_product(_rows_to_csr(row[up], ind[up], val[up], shape), papers_t)
    logits = dense_product(_rows_to_csr(row[down], ind[down], val[down], shape), papers_t)
    logits += words_for
    logits += intercepts[:, None]
    if dense is not None:
        in_dense = (ind >= n_sparse) & (ind < n_sparse + dense.shape[1])
        dense_w = np.zeros((len(models), dense.shape[1]), dtype=np.float32)
        dense_w[row[in_dense], ind[in_dense] - n_sparse] = val[in_dense]
        meaning = dense_w @ np.asarray(dense, dtype=np.float32).T
        words_for += meaning
        logits += meaning
    return ModelScores(_sigmoid_in_place(logits), words_for)


def _sigmoid_in_place(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x), overwriting x: at 2,000 readers x 2,000 papers a chunk, each temporary array
    of the plain expression cost as much as the exponential (five chunks: 0.06 s against 0.17 s)."""
    np.negative(x, out=x)
    np.exp(x, out=x)
    x += 1.0
    np.reciprocal(x, out=x)
    return x
