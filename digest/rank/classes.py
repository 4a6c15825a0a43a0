"""A paper's arXiv classes as features of the reader's learned model.

The classes are the authors' own filing of their paper, and the words often do not say them: a
combinatorics paper proves a bound for one family of graphs and never says "combinatorics". Without
them, a reader who said "want these" to ten math.CO papers gave the model only their words, which it
shares with analysis and geometry papers; with them it can see that all ten are in math.CO.

The classes are a block of their own, after the hashed tf-idf columns and before the encoder's
dims (digest.rank.semantic.combine): as one more term of the tf-idf row a class weighed as much as
one word among a hundred, and the day after the sign-up rating hardly moved (nDCG@10 0.834 ->
0.840 on docs/judged/kwx). As a block it weighs up to CLASS_SCALE against the whole text, and the
learner gives it its say as the evidence grows (digest.rank.learner, CLASS_EVIDENCE).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from digest.domain import Paper, Subscriber
from digest.rank.arxiv_categories import NAMES, named_by

CODES: tuple[str, ...] = tuple(sorted(NAMES))
N_CLASSES = len(CODES)
_COLUMN = {code.lower(): i for i, code in enumerate(CODES)}
# The class block's length next to the unit tf-idf row: 1.0 gives the authors' filing as much
# weight in the model's regularised fit as the paper's whole text, once the evidence is ample.
# Without the learner's scaling by the evidence, 1.0 and 0.5 were measured and not kept: two stars
# in one broad class (cs.LG, cs.CV) swung a reader's digest toward all of it (docs/evaluation-log.md).
CLASS_SCALE = 1.0


def class_rows(classes: Sequence[Iterable[str]]) -> np.ndarray:
    """One row per list of class codes: the known classes, together of length CLASS_SCALE (a paper
    cross-listed in three classes is a third in each, by weight); zeros where none is known (a
    journal's paper)."""
    out = np.zeros((len(classes), N_CLASSES), dtype=np.float32)
    for row, codes in enumerate(classes):
        cols = sorted({c for code in codes if (c := _COLUMN.get(code.strip().lower())) is not None})
        if cols:
            out[row, cols] = CLASS_SCALE / np.sqrt(len(cols))
    return out


def paper_classes(papers: Sequence[Paper]) -> np.ndarray:
    return class_rows([p.categories for p in papers])


def keyword_classes(subscribers: Sequence[Subscriber]) -> np.ndarray:
    """The classes the reader's keywords name ("combinatorics" names math.CO): the keyword profile's
    row, which joins the model's positives, holds them as a paper in them would."""
    return class_rows([[c for k in s.keywords for c in named_by(k)] for s in subscribers])
