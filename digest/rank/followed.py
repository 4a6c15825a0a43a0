"""Papers by the authors a reader follows: always in the digest, whatever their score.

The best ABOVE of them (by the reader's own scores) head the digest, each labelled with the name
the reader follows; the rest join the picks where their score places them, on top of the top_k
picks, which are chosen from the other papers. A paper the reader was sent before, or one their
"never send" phrases rule out, is not sent for its author either: excluding is the stronger wish.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from digest.author_names import FollowedAuthors, author_key, surnames
from digest.domain import Paper, Pick
from digest.rank.keywords import PaperIndex
from digest.rank.select import Hits, excluded_papers

ABOVE = 5
# However prolific the followed authors are on one day, a digest stays readable.
MOST = 20
REASON = "By an author you follow"


class DayAuthors:
    """The day's papers by their authors' surnames: a reader's followed names are tried on the few
    papers that hold one of their surnames, not on every author of the day."""

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.papers = papers
        self.by_surname: dict[str, set[int]] = {}
        for c, paper in enumerate(papers):
            for name in paper.authors:
                key = author_key(name)
                if key is not None and key.given:
                    for surname in surnames(key):
                        self.by_surname.setdefault(surname, set()).add(c)

    def papers_by(self, followed: Sequence[str]) -> dict[int, str]:
        """Column of each paper with a followed author -> the name as the reader wrote it
        (FollowedAuthors.match: the followed name of its first author who is followed)."""
        matcher = FollowedAuthors(followed)
        cols = {c for surname in matcher.surnames for c in self.by_surname.get(surname, ())}
        found = {c: matcher.match(self.papers[c].authors) for c in sorted(cols)}
        return {c: name for c, name in found.items() if name is not None}


def followed_picks(papers: Sequence[Paper], by: dict[int, str], scores: np.ndarray,
                   matched: Hits, shown: Collection[int], exclude: Sequence[str],
                   index: PaperIndex | None = None) -> list[Pick]:
    """The reader's followed-author papers of the day (by: papers_by), best score first, at most MOST.
    scores and matched: the reader's row."""
    cols = [c for c in by if papers[c].id not in shown]
    if exclude and cols:
        ruled_out = excluded_papers(papers, exclude, index)
        cols = [c for c in cols if not ruled_out[c]]
    cols.sort(key=lambda c: (-float(scores[c]), c))
    return [Pick(paper=papers[c], score=float(scores[c]), matched=tuple(matched[c]), reason=f"{REASON}: {by[c]}")
            for c in cols[:MOST]]


def with_followed(picks: Sequence[Pick], followed: Sequence[Pick]) -> list[Pick]:
    """The digest's list: the first ABOVE followed papers, then the picks with the other followed
    papers placed among them by score."""
    out = list(picks)
    for extra in followed[ABOVE:]:
        at = next((n for n, p in enumerate(out) if p.score < extra.score), len(out))
        out.insert(at, extra)
    return list(followed[:ABOVE]) + out
