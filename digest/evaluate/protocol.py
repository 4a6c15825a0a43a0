"""The contract between the replay harness and a recommender under test.

A paper is an int: its index in EvalCorpus. A user is a str: EvalUser.user_id.

One run of one recommender in one scenario:

    rec.start(corpus, users, scenario)          # once; warm users carry stars
    for day, batch in enumerate(batches):
        picks = rec.recommend(day, batch, k)     # every user -> up to k papers of batch, best first
        rec.feedback(day, picks, clicked)        # clicked = the picks the user really liked

History exclusion is the recommender's job: it must never pick one of a user's `history` papers
(they are already in the user's library). The harness checks every pick (in the batch, not in
history, no duplicates, at most k) and raises ValueError on a violation, so a bug cannot inflate
the numbers. `exclusion_mask` and `top_k` below do the bookkeeping for score-based recommenders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

COLD = "cold"
WARM = "warm"
SCENARIOS = (COLD, WARM)


@dataclass(frozen=True)
class EvalCorpus:
    """Every paper of the replay; index = paper index. abstracts[i] is "" when unknown."""

    ids: list[str]
    titles: list[str]
    abstracts: list[str]

    def __post_init__(self) -> None:
        if not len(self.ids) == len(self.titles) == len(self.abstracts):
            raise ValueError("EvalCorpus: ids, titles and abstracts differ in length")

    def __len__(self) -> int:
        return len(self.ids)

    def texts(self) -> list[str]:
        """Title plus abstract where there is one: the text every text-based recommender sees."""
        return [f"{t} {a}" if a else t for t, a in zip(self.titles, self.abstracts, strict=True)]


@dataclass(frozen=True)
class EvalUser:
    """One replayed user. stars is () in the cold scenario and == history in the warm one."""

    user_id: str
    keywords: tuple[str, ...]
    history: tuple[int, ...]
    stars: tuple[int, ...] = ()


class Recommender(Protocol):
    """What the harness drives. Implementations keep their own state between calls."""

    name: str

    def start(self, corpus: EvalCorpus, users: Sequence[EvalUser], scenario: str) -> None:
        """Reset all state; `users` is the fixed population for the whole run."""
        ...

    def recommend(self, day: int, batch: np.ndarray, k: int) -> dict[str, list[int]]:
        """Today's papers (int indices) -> for every user, up to k of them, best first, none in history."""
        ...

    def feedback(self, day: int, shown: dict[str, list[int]], clicked: dict[str, list[int]]) -> None:
        """What each user was shown today and which of those they clicked (a subset, in shown order)."""
        ...


def exclusion_mask(users: Sequence[EvalUser], batch: np.ndarray) -> np.ndarray:
    """Boolean (users x batch): True where the paper is in that user's history."""
    position = {int(p): j for j, p in enumerate(batch)}
    mask = np.zeros((len(users), len(batch)), dtype=bool)
    for i, user in enumerate(users):
        for p in user.history:
            j = position.get(p)
            if j is not None:
                mask[i, j] = True
    return mask


def top_k(users: Sequence[EvalUser], scores: np.ndarray, batch: np.ndarray, k: int) -> dict[str, list[int]]:
    """The k best-scoring papers of batch per user (scores: users x batch), history excluded.

    Ties keep batch order; batches are a random permutation, so ties are broken at random but
    reproducibly, not by paper index.
    """
    masked = np.where(exclusion_mask(users, batch), -np.inf, scores.astype(np.float64, copy=False))
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    out: dict[str, list[int]] = {}
    for i, user in enumerate(users):
        cols = [int(c) for c in order[i] if masked[i, c] != -np.inf]
        out[user.user_id] = [int(batch[c]) for c in cols]
    return out
