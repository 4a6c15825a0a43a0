"""P@k, nDCG@k (binary gains), recall, and bootstrap intervals over users.

Only user-days whose batch holds at least one future paper of the user count. P@k and nDCG@k are
means over those user-days; recall is total hits / total future papers offered. The 95% interval
resamples users (all of a user's days together), since days of one user are not independent. With
several seeds, each (seed, user) is one unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digest.evaluate.replay import ReplayLog

N_BOOTSTRAP = 1000


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Metrics:
    p_at_k: Estimate
    ndcg_at_k: Estimate
    recall: Estimate
    user_days: int  # user-days that count
    users: int  # users (per seed) with at least one such day
    p_at_k_by_day: list[float | None]  # None: no user had a future paper that day
    seconds: float  # inside the recommender, summed over seeds


def ideal_dcg(n_relevant: np.ndarray, k: int) -> np.ndarray:
    """IDCG with binary gains: min(k, n_relevant) relevant items at the top."""
    cumulative = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])
    return np.asarray(cumulative[np.minimum(n_relevant, k)], dtype=np.float64)


def ndcg(dcg: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    ideal = ideal_dcg(n_relevant, k)
    out = np.zeros(np.shape(dcg), dtype=np.float64)
    np.divide(dcg, ideal, out=out, where=ideal > 0)
    return out


@dataclass(frozen=True)
class _PerUser:
    """Per-user sums over the counted days: enough to recompute every metric on any resample."""

    p_sum: np.ndarray
    ndcg_sum: np.ndarray
    hits: np.ndarray
    offered: np.ndarray
    days: np.ndarray


def _per_user(logs: Sequence[ReplayLog]) -> _PerUser:
    cols: dict[str, list[np.ndarray]] = {"p": [], "n": [], "h": [], "o": [], "d": []}
    for lg in logs:
        counts = lg.offered > 0
        cols["p"].append(np.where(counts, lg.hits / lg.k, 0.0).sum(axis=0))
        cols["n"].append(np.where(counts, ndcg(lg.dcg, lg.offered, lg.k), 0.0).sum(axis=0))
        cols["h"].append(np.where(counts, lg.hits, 0).sum(axis=0))
        cols["o"].append(lg.offered.sum(axis=0))
        cols["d"].append(counts.sum(axis=0))
    days = np.concatenate(cols["d"])
    keep = days > 0
    p, n, h, o = (np.concatenate(cols[c])[keep].astype(np.float64) for c in "pnho")
    return _PerUser(p, n, h, o, days[keep].astype(np.float64))


def _interval(num: np.ndarray, den: np.ndarray, weights: np.ndarray) -> Estimate:
    value = float(num.sum() / den.sum()) if den.sum() else 0.0
    if not len(weights):
        return Estimate(value, value, value)
    boot_den = weights @ den
    boot = np.divide(weights @ num, boot_den, out=np.zeros(len(weights)), where=boot_den > 0)
    low, high = np.percentile(boot, [2.5, 97.5])
    return Estimate(value, float(low), float(high))


def p_at_k_by_day(logs: Sequence[ReplayLog]) -> list[float | None]:
    """Mean P@k over the counted users of each day, pooled over seeds: the learning curve."""
    n_days = max(len(lg.hits) for lg in logs)
    num, den = np.zeros(n_days), np.zeros(n_days)
    for lg in logs:
        counts = lg.offered > 0
        d = len(lg.hits)
        num[:d] += np.where(counts, lg.hits / lg.k, 0.0).sum(axis=1)
        den[:d] += counts.sum(axis=1)
    return [float(a / b) if b else None for a, b in zip(num, den, strict=True)]


def summarise(logs: Sequence[ReplayLog], *, n_bootstrap: int = N_BOOTSTRAP, seed: int = 0) -> Metrics:
    """Metrics of one recommender in one scenario, pooled over the logs of all seeds."""
    if not logs:
        raise ValueError("summarise: no logs")
    per = _per_user(logs)
    n_units = len(per.days)
    rng = np.random.default_rng(seed)
    # Row b: how often each user is drawn in bootstrap sample b.
    weights = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_bootstrap).astype(np.float64) \
        if n_units and n_bootstrap else np.zeros((0, n_units))
    return Metrics(
        p_at_k=_interval(per.p_sum, per.days, weights),
        ndcg_at_k=_interval(per.ndcg_sum, per.days, weights),
        recall=_interval(per.hits, per.offered, weights),
        user_days=int(per.days.sum()),
        users=n_units,
        p_at_k_by_day=p_at_k_by_day(logs),
        seconds=sum(lg.seconds for lg in logs),
    )
