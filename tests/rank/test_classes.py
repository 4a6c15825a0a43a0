"""The arXiv class block of the learned model's features (digest.rank.classes)."""

from __future__ import annotations

import numpy as np
import pytest

from digest.domain import Paper, Subscriber
from digest.rank import classes


def _paper(*codes: str) -> Paper:
    return Paper(canonical_id="x", title="t", abstract="a", categories=codes)


def test_a_paper_weighs_its_classes_together_as_much_as_one_class_alone() -> None:
    rows = classes.paper_classes([_paper("math.CO"), _paper("math.CO", "cs.DM", "math.CO"),
                                  _paper("hep-th", "no.SUCH"), _paper()])
    assert np.linalg.norm(rows, axis=1) == pytest.approx([classes.CLASS_SCALE, classes.CLASS_SCALE,
                                                          classes.CLASS_SCALE, 0.0])
    co = classes.CODES.index("math.CO")
    assert rows[0, co] > rows[1, co] > 0  # a cross-listed paper is partly in each of its classes
    assert np.count_nonzero(rows[1]) == 2 and np.count_nonzero(rows[2]) == 1  # an unknown code is no class


def test_the_keyword_row_holds_the_classes_the_keywords_name() -> None:
    readers = [Subscriber(id=1, email="a@example.org", keywords=("combinatorics", "graph neural networks")),
               Subscriber(id=2, email="b@example.org", keywords=("protein design",))]
    rows = classes.keyword_classes(readers)
    assert np.flatnonzero(rows[0]).tolist() == [classes.CODES.index("math.CO")]
    assert not rows[1].any()


def test_the_class_block_says_more_as_the_evidence_grows() -> None:
    """The same labels, counted as two stars or as twenty: a paper that shares only the starred
    papers' class gains more from the model that has more evidence behind it."""
    import scipy.sparse as sp

    from digest.rank import learner, semantic
    from digest.rank.features import N_FEATURES

    rng = np.random.default_rng(5)

    def rows(n: int, codes: list[str], first_word: int) -> sp.csr_matrix:
        words = sp.csr_matrix((np.ones(n, dtype=np.float32), np.arange(first_word, first_word + n),
                               np.arange(n + 1)), shape=(n, N_FEATURES))  # one word of its own each
        return semantic.combine(words, classes.class_rows([[codes[i % len(codes)]] for i in range(n)]))

    positives = rows(4, ["math.CO"], 100)
    others = ["cs.LG", "cs.CV", "hep-th", "math.AP", "q-bio.BM", "math.CO"]  # math.CO a sixth of them
    negatives = rows(60, [others[i] for i in rng.integers(0, len(others), 60)], 1000)
    fresh = rows(2, ["math.CO", "cs.LG"], 5000)  # words nobody has seen: only the class differs

    def lift(evidence: int) -> float:
        model = learner.train(learner.TrainingSet(positives, np.full(4, 3.0), negatives, np.full(60, 0.2),
                                                  evidence=evidence))
        assert model is not None
        p = learner.scored_by_models([model], sp.csr_matrix(fresh.T)).probabilities[0]
        return float(p[0] - p[1])

    few, many = lift(2), lift(20)
    assert 0 < few < many and many > 2 * few, (few, many)
