"""The day-by-day replay. One Split per seed is shared by every recommender and both scenarios.

Protocol: all papers are split at random into `days` batches. Each sampled user's likes are shuffled
(seeded); the first max(3, 25%) are history, the rest future. Every day each recommender picks k
papers of the day's batch for every user (history excluded); picks in the future set are hits and
are clicked, and the recommender gets the day's impressions and clicks as feedback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from digest.errors import InputError
from digest.evaluate.data import EvalData, tag_popularity, user_keywords
from digest.evaluate.protocol import COLD, SCENARIOS, WARM, EvalCorpus, EvalUser, Recommender

log = logging.getLogger(__name__)

HISTORY_SHARE = 0.25
MIN_HISTORY = 3
N_KEYWORDS = 5


@dataclass(frozen=True)
class Split:
    """Everything seeded: who takes part, what arrives when, what each user has and will like."""

    seed: int
    users: tuple[EvalUser, ...]  # cold form: stars == ()
    batches: tuple[np.ndarray, ...]  # paper indices per day, in random order
    history: np.ndarray  # bool users x papers
    future: np.ndarray  # bool users x papers

    def users_for(self, scenario: str) -> list[EvalUser]:
        if scenario == COLD:
            return list(self.users)
        if scenario == WARM:
            return [EvalUser(u.user_id, u.keywords, u.history, stars=u.history) for u in self.users]
        raise ValueError(f"unknown scenario {scenario!r} (expected one of {', '.join(SCENARIOS)})")


@dataclass(frozen=True)
class ReplayLog:
    """Per day and user: hits among the picks, their DCG, and how many future papers the batch held."""

    recommender: str
    scenario: str
    seed: int
    k: int
    hits: np.ndarray  # int days x users
    dcg: np.ndarray  # float days x users
    offered: np.ndarray  # int days x users
    seconds: float  # time spent inside the recommender


def history_size(n_likes: int) -> int:
    return max(MIN_HISTORY, int(n_likes * HISTORY_SHARE))


def make_split(data: EvalData, *, n_users: int, min_items: int, days: int, seed: int,
               popularity: Mapping[str, int] | None = None) -> Split:
    """Sample users with >= min_items likes, split their likes, and cut the papers into days."""
    if min_items < MIN_HISTORY + 1:
        raise InputError(f"--min-items must be at least {MIN_HISTORY + 1} so that every user has a future")
    n_papers = len(data.corpus)
    if not 1 <= days <= n_papers:
        raise InputError(f"--days must be between 1 and the number of papers ({n_papers})")
    # Independent streams: changing --users does not move the batches, and vice versa.
    users_rng, batch_rng, history_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))

    eligible = [u for u, likes in data.likes.items() if len(likes) >= min_items]
    if not eligible:
        raise InputError(f"no user has at least {min_items} liked papers in {data.source or 'the data'}")
    if len(eligible) < n_users:
        log.warning("only %d users have >= %d likes; using all of them", len(eligible), min_items)
    chosen = sorted(users_rng.choice(len(eligible), size=min(n_users, len(eligible)), replace=False))

    pop = tag_popularity(data) if popularity is None else popularity
    users: list[EvalUser] = []
    history = np.zeros((len(chosen), n_papers), dtype=bool)
    future = np.zeros((len(chosen), n_papers), dtype=bool)
    for row, i in enumerate(chosen):
        uid = eligible[i]
        likes = history_rng.permutation(np.asarray(data.likes[uid], dtype=np.int64))
        n_hist = history_size(len(likes))
        hist = tuple(int(p) for p in likes[:n_hist])
        history[row, likes[:n_hist]] = True
        future[row, likes[n_hist:]] = True
        users.append(EvalUser(uid, user_keywords(data, uid, hist, N_KEYWORDS, pop), hist))
    no_kw = sum(1 for u in users if not u.keywords)
    if no_kw:
        log.warning("%d of %d users have no topical tags on their history papers: no keywords", no_kw, len(users))

    batches = tuple(np.array_split(batch_rng.permutation(n_papers), days))
    return Split(seed=seed, users=tuple(users), batches=batches, history=history, future=future)


def replay(corpus: EvalCorpus, split: Split, recommender: Recommender, scenario: str, k: int) -> ReplayLog:
    """Drive one recommender through every day of the split; check its picks; log hits."""
    users = split.users_for(scenario)
    n_days, n_users = len(split.batches), len(users)
    row_of = {u.user_id: i for i, u in enumerate(users)}
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    hits = np.zeros((n_days, n_users), dtype=np.int64)
    dcg = np.zeros((n_days, n_users), dtype=np.float64)
    offered = np.zeros((n_days, n_users), dtype=np.int64)
    in_batch = np.zeros(len(corpus), dtype=bool)
    name = recommender.name

    t0 = time.perf_counter()
    recommender.start(corpus, users, scenario)
    spent = time.perf_counter() - t0
    for day, batch in enumerate(split.batches):
        in_batch[:] = False
        in_batch[batch] = True
        offered[day] = split.future[:, batch].sum(axis=1)
        t0 = time.perf_counter()
        picks = recommender.recommend(day, batch.copy(), k)  # a copy: a recommender may not reorder ours
        spent += time.perf_counter() - t0

        missing = set(row_of) - set(picks)
        if missing:
            raise ValueError(f"{name}, day {day}: no picks for user(s) {sorted(missing)[:5]}")
        clicked: dict[str, list[int]] = {}
        for uid, chosen in picks.items():
            row = row_of.get(uid)
            if row is None:
                raise ValueError(f"{name}, day {day}: picks for unknown user {uid!r}")
            arr = np.asarray(chosen, dtype=np.int64)
            _check_picks(name, day, uid, arr, k, in_batch, split.history[row])
            is_hit = split.future[row, arr]
            hits[day, row] = int(is_hit.sum())
            dcg[day, row] = float(discount[: len(arr)] @ is_hit)
            clicked[uid] = [int(p) for p in arr[is_hit]]

        t0 = time.perf_counter()
        recommender.feedback(day, picks, clicked)
        spent += time.perf_counter() - t0
        log.debug("%s/%s day %d: %d hits", name, scenario, day, int(hits[day].sum()))
    log.info("%s/%s seed %d: %.1f s", name, scenario, split.seed, spent)
    return ReplayLog(name, scenario, split.seed, k, hits, dcg, offered, spent)


def _check_picks(name: str, day: int, uid: str, picks: np.ndarray, k: int, in_batch: np.ndarray,
                 history: np.ndarray) -> None:
    where = f"{name}, day {day}, user {uid!r}"
    if len(picks) > k:
        raise ValueError(f"{where}: {len(picks)} picks, k is {k}")
    if len(picks) == 0:
        return
    if picks.min() < 0 or picks.max() >= len(in_batch) or not in_batch[picks].all():
        raise ValueError(f"{where}: a pick is not in today's batch")
    if history[picks].any():
        raise ValueError(f"{where}: a pick is in the user's history")
    if len(np.unique(picks)) != len(picks):
        raise ValueError(f"{where}: the same paper picked twice")


def run_all(data: EvalData, factories: Mapping[str, Callable[[], Recommender]], *, seeds: Sequence[int],
            scenarios: Sequence[str], k: int, n_users: int, min_items: int, days: int,
            on_log: Callable[[ReplayLog], None] | None = None) -> dict[str, dict[str, list[ReplayLog]]]:
    """Every recommender (a fresh one per seed and scenario) through the same split per seed.

    Returns scenario -> recommender -> one log per seed; on_log sees each log as it is done.
    """
    if k < 1:
        raise InputError("--k must be at least 1")
    if n_users < 1:
        raise InputError("--users must be at least 1")
    popularity = tag_popularity(data)
    logs: dict[str, dict[str, list[ReplayLog]]] = {sc: {name: [] for name in factories} for sc in scenarios}
    for seed in seeds:
        split = make_split(data, n_users=n_users, min_items=min_items, days=days, seed=seed, popularity=popularity)
        for scenario in scenarios:
            for name, factory in factories.items():
                lg = replay(data.corpus, split, factory(), scenario, k)
                logs[scenario][name].append(lg)
                if on_log is not None:
                    on_log(lg)
    return logs
