"""How well meaning alone tells a judged paper on the reader's topic from one off it.

For every judged (query, paper) pair of the judged sets given, the paper's cosine to the query's
keywords (embedded as one text, as the ranker does) in standard deviations above that day's mean
(digest.rank.semantic.deviations), and the AUC of that standing for the pairs graded 1 or 2 against
those graded 0; also for the pairs graded 2 against the rest. The figures of docs/evaluation-log.md,
"The default install's meaning, measured":

    python contrib/meaning_auc.py --encoder static \
        ../shared/data/kwj-dev:docs/judged/kwj-dev-own-judgments.json docs/judged/kwx
    python contrib/meaning_auc.py --encoder all-MiniLM-L6-v2 ...   # with the embed extra

A set is DIR or DIR:EXTRA_JUDGMENTS (as `digest eval --judged DIR --judgments F`).
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.metrics import roc_auc_score

from digest.evaluate.judged import JudgedSet, load_judged
from digest.evaluate.judged_run import keyword_similarities
from digest.rank import encoder as encoders
from digest.rank.semantic import deviations


def standings(judged: JudgedSet, enc: encoders.TextEncoder) -> list[tuple[int, float]]:
    """(grade, standing) for every judged pair of the set."""
    row = {p.id: i for i, p in enumerate(judged.papers)}
    queries = list(judged.queries)
    devs = deviations(keyword_similarities(judged.papers, judged.queries, enc))
    return [(grade, float(devs[i, row[pid]]))
            for i, q in enumerate(queries) for pid, grade in judged.qrels[q].items() if pid in row]


def auc(pairs: list[tuple[int, float]], least: int) -> float:
    labels = np.array([g >= least for g, _ in pairs])
    return float(roc_auc_score(labels, [s for _, s in pairs]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="+", help="DIR or DIR:EXTRA_JUDGMENTS")
    ap.add_argument("--encoder", default="static", help="static (the bundled vectors) or an encoder name")
    args = ap.parse_args()
    enc = encoders.load(args.encoder)
    if enc is None:
        raise SystemExit("meaning_auc: --encoder none has no meaning to measure")
    pairs: list[tuple[int, float]] = []
    for spec in args.sets:
        folder, _, extra = spec.partition(":")
        pairs += standings(load_judged(folder, [extra] if extra else []), enc)
    on_topic = sum(g >= 1 for g, _ in pairs)
    print(f"{enc.name}: {len(pairs)} judged pairs, {on_topic} on the topic; "
          f"AUC graded 1 or 2 against 0: {auc(pairs, 1):.3f}; graded 2 against the rest: {auc(pairs, 2):.3f}")


if __name__ == "__main__":
    main()
