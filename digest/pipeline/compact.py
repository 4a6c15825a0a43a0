"""Plans made in a forked ranking process travel back small: each paper as its place among the day's
candidates, which the parent holds too, so that only ids, scores and reasons are pickled."""

from __future__ import annotations

from collections.abc import Sequence

from digest.domain import Paper, Pick

# A pick as it travels back from a forked ranking process: the paper as its place among the candidates.
CompactPick = tuple[int, float, tuple[str, ...], str]


def compact(picks: Sequence[Pick], col_of: dict[int | None, int]) -> list[CompactPick]:
    """Picks small enough to pickle back cheaply (col_of: a candidate's id -> its place)."""
    return [(col_of[p.paper.id], p.score, tuple(p.matched), p.reason) for p in picks]


def expand(small: Sequence[CompactPick], candidates: Sequence[Paper]) -> list[Pick]:
    """The picks again, with the candidates' papers."""
    return [Pick(candidates[c], score, matched, reason) for c, score, matched, reason in small]
