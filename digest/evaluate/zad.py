"""zotero-arxiv-daily's recommender (the embed extra): similarity in a sentence encoder's space.

Its recipe: the user's library sorted newest first, time-decay weights 1 / (1 + log10(i + 1))
normalised to sum 1, and a paper's score is the weighted sum of its cosines to the library. Until
a user has a first positive, the cosine to the keyword embedding ranks the papers. In the replay the
library is the imported stars (warm) followed by each day's clicks, the newest first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from digest.evaluate.protocol import EvalCorpus, EvalUser, top_k


def decay_weights(n: int) -> np.ndarray:
    w = 1.0 / (1.0 + np.log10(np.arange(n) + 1.0))
    out: np.ndarray = w / w.sum()
    return out


class ZadEmbedRecommender:
    name = "zad-embed"

    def __init__(self, embeddings: np.ndarray, keyword_profiles: np.ndarray) -> None:
        """embeddings: papers x dim unit rows; keyword_profiles: users x dim, in the users' order."""
        self.embeddings = embeddings
        self.keyword_profiles = keyword_profiles
        self._users: list[EvalUser] = []
        self._library: list[list[int]] = []  # newest first

    def start(self, corpus: EvalCorpus, users: Sequence[EvalUser], scenario: str) -> None:
        self._users = list(users)
        # The imported library has no dates in the replay: its given order stands for newest first.
        self._library = [list(u.stars) for u in self._users]

    def scores(self, batch: np.ndarray) -> np.ndarray:
        cand = self.embeddings[batch]
        out = np.empty((len(self._users), len(batch)), dtype=np.float64)
        for i, lib in enumerate(self._library):
            if lib:
                sims = cand @ self.embeddings[lib].T
                out[i] = sims @ decay_weights(len(lib))
            else:
                out[i] = cand @ self.keyword_profiles[i]
        return out

    def recommend(self, day: int, batch: np.ndarray, k: int) -> dict[str, list[int]]:
        return top_k(self._users, self.scores(batch), batch, k)

    def feedback(self, day: int, shown: dict[str, list[int]], clicked: dict[str, list[int]]) -> None:
        for i, user in enumerate(self._users):
            new = [p for p in clicked.get(user.user_id, ()) if p not in self._library[i]]
            self._library[i] = new + self._library[i]
