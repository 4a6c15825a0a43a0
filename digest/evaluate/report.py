"""Turning metrics into a text table, a JSON object and (optionally) a learning-curve plot."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from digest.errors import InputError
from digest.evaluate.metrics import Estimate, Metrics

log = logging.getLogger(__name__)

Results = Mapping[str, Mapping[str, Metrics]]  # scenario -> recommender -> metrics


def _fmt(e: Estimate) -> str:
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def table(results: Results, k: int) -> str:
    """One block per scenario: rows recommenders, columns P@k / nDCG@k / recall (95% CI) and run time."""
    blocks: list[str] = []
    for scenario, by_rec in results.items():
        if not by_rec:
            continue
        first = next(iter(by_rec.values()))
        width = max(len("recommender"), *(len(n) for n in by_rec))
        head = f"{'recommender':<{width}}  {f'P@{k}':<22}  {f'nDCG@{k}':<22}  {'recall':<22}  {'time':>8}"
        lines = [f"{scenario}: {first.users} users, {first.user_days} user-days with a future paper", head,
                 "-" * len(head)]
        for name, m in by_rec.items():
            lines.append(f"{name:<{width}}  {_fmt(m.p_at_k):<22}  {_fmt(m.ndcg_at_k):<22}  {_fmt(m.recall):<22}  "
                         f"{m.seconds:>6.1f} s")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _metrics_json(m: Metrics) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("p_at_k", "ndcg_at_k", "recall"):
        e: Estimate = getattr(m, key)
        out[key] = round(e.value, 6)
        out[f"{key}_ci"] = [round(e.low, 6), round(e.high, 6)]
    out.update(users=m.users, user_days=m.user_days, seconds=round(m.seconds, 3),
               p_at_k_by_day=[None if v is None else round(v, 6) for v in m.p_at_k_by_day])
    return out


def _results_json(results: Results) -> dict[str, dict[str, dict[str, Any]]]:
    return {sc: {name: _metrics_json(m) for name, m in by_rec.items()} for sc, by_rec in results.items()}


def to_json(results: Results, *, config: Mapping[str, Any], by_seed: Mapping[int, Results] | None = None,
            ) -> dict[str, Any]:
    """{"config", "results": {scenario: {recommender: {p_at_k, p_at_k_ci, ...}}}, "by_seed" (several seeds)}.

    With several seeds, "results" pools them (each seed's user is one bootstrap unit).
    """
    obj: dict[str, Any] = {"config": dict(config), "results": _results_json(results)}
    if by_seed and len(by_seed) > 1:
        obj["by_seed"] = {str(seed): _results_json(r) for seed, r in by_seed.items()}
    return obj


def write_json(obj: Mapping[str, Any], path: Path | str) -> None:
    Path(path).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s", path)


def plot(results: Results, path: Path | str, k: int) -> None:
    """P@k by day per recommender, one panel per scenario (needs matplotlib: the `eval` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install -e '.[eval]' (or pip install matplotlib)") from None
    scenarios = [sc for sc, by_rec in results.items() if by_rec]
    fig, axes = plt.subplots(1, len(scenarios), figsize=(6 * len(scenarios), 4), sharey=True, squeeze=False)
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        for name, m in results[scenario].items():
            days = [d + 1 for d, v in enumerate(m.p_at_k_by_day) if v is not None]
            values = [v for v in m.p_at_k_by_day if v is not None]
            ax.plot(days, values, marker=".", label=name)
        ax.set_title(f"{scenario}")
        ax.set_xlabel("day")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"P@{k}")
    axes[0][-1].legend()
    fig.tight_layout()
    fig.savefig(str(path), dpi=120)
    plt.close(fig)
    log.info("wrote %s", path)
