"""Choosing the picks for one subscriber: never a paper already shown, top_k above min_score."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from digest.domain import Paper, Pick


def reason_line(matched: Sequence[str], related: Sequence[str]) -> str:
    if matched:
        return "Matches: " + ", ".join(matched)
    if related:
        return "Related to: " + ", ".join(related)
    return "Close to your interests"


def select_picks(
    papers: Sequence[Paper],
    scores: np.ndarray,
    matched: Sequence[tuple[str, ...]],
    related: Sequence[tuple[str, ...]],
    *,
    top_k: int,
    min_score: float,
    shown: Collection[int] = (),
    exclude: Sequence[str] = (),
) -> list[Pick]:
    order = np.argsort(-scores, kind="stable")
    picks: list[Pick] = []
    for pi in order:
        score = float(scores[pi])
        if score < min_score or len(picks) >= top_k:
            break
        paper = papers[pi]
        if paper.id in shown:
            continue
        if exclude and _mentions_any(paper, exclude):
            continue
        picks.append(Pick(paper=paper, score=score, matched=matched[pi], reason=reason_line(matched[pi], related[pi])))
    return picks


def _mentions_any(paper: Paper, phrases: Sequence[str]) -> bool:
    from digest.rank.features import tokens

    text = " " + " ".join(tokens(f"{paper.title} {paper.abstract}")) + " "
    return any(" " + " ".join(tokens(p)) + " " in text for p in phrases if tokens(p))
