"""`digest eval`: replay an interaction log day by day and score the recommenders on it."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from digest.errors import InputError
from digest.evaluate.baselines import AslSvmRecommender, KeywordRecommender, RandomRecommender, TextFeatures
from digest.evaluate.data import DEFAULT_CITEULIKE, EvalData, load_citeulike, load_interactions
from digest.evaluate.metrics import N_BOOTSTRAP, summarise
from digest.evaluate.project import DigestRecommender
from digest.evaluate.protocol import SCENARIOS, Recommender
from digest.evaluate.replay import ReplayLog, run_all
from digest.evaluate.report import Results, plot, table, to_json, write_json

RECOMMENDERS = ("digest", "random", "keyword", "asl-svm")


def _ints(values: tuple[str, ...], option: str) -> list[int]:
    """--seed 7 --seed 8 or --seed 7,8 -> [7, 8]."""
    out: list[int] = []
    for value in values:
        for part in value.split(","):
            try:
                out.append(int(part.strip()))
            except ValueError:
                raise InputError(f"{option}: not an integer: {part.strip()!r}") from None
    return list(dict.fromkeys(out))


def _names(value: str) -> list[str]:
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in RECOMMENDERS]
    if unknown or not names:
        raise InputError(f"--recommenders: unknown {', '.join(unknown) or '(empty)'}; "
                         f"choose from {', '.join(RECOMMENDERS)}")
    return names


def _load(citeulike: str | None, papers: str | None, interactions: str | None) -> EvalData:
    if papers or interactions:
        if citeulike:
            raise InputError("give either --citeulike or --papers with --interactions, not both")
        if not (papers and interactions):
            raise InputError("--papers and --interactions go together")
        return load_interactions(papers, interactions)
    return load_citeulike(Path(citeulike) if citeulike else DEFAULT_CITEULIKE)


def _factories(names: list[str], data: EvalData, seed: int, jobs: int,
               features: Callable[[], TextFeatures],
               made: list[DigestRecommender] | None = None) -> dict[str, Callable[[], Recommender]]:
    def digest_rec() -> Recommender:
        rec = DigestRecommender(seed=seed)
        if made is not None:
            made.append(rec)  # kept to report its per-day ranking time
        return rec

    make: dict[str, Callable[[], Recommender]] = {
        "digest": digest_rec,
        "random": lambda: RandomRecommender(seed),
        "keyword": lambda: KeywordRecommender(features()),
        "asl-svm": lambda: AslSvmRecommender(features(), workers=jobs),
    }
    return {name: make[name] for name in names}


@click.command("eval")
@click.option("--citeulike", type=click.Path(file_okay=False),
              help=f"CiteULike-a directory (default: {DEFAULT_CITEULIKE}).")
@click.option("--papers", type=click.Path(dir_okay=False), help="papers.jsonl: one {id, title, abstract} a line.")
@click.option("--interactions", type=click.Path(dir_okay=False),
              help="interactions.csv: user, paper_id[, time, kind, tag].")
@click.option("--users", "n_users", type=int, default=200, show_default=True, help="Users sampled per seed.")
@click.option("--min-items", type=int, default=15, show_default=True, help="Only users with this many likes.")
@click.option("--days", type=int, default=30, show_default=True, help="Daily batches the papers are split into.")
@click.option("--k", "k", type=int, default=10, show_default=True, help="Picks per user per day.")
@click.option("--seed", "seeds", multiple=True, default=("7",), show_default=True,
              help="Seed; repeat it or give a comma list to pool several runs.")
@click.option("--scenario", type=click.Choice(["cold", "warm", "both"]), default="both", show_default=True)
@click.option("--recommenders", default=",".join(RECOMMENDERS), show_default=True, help="Comma list.")
@click.option("--jobs", type=int, default=None, help="Processes for the SVM fits (default: CPU count, at most 4).")
@click.option("--bootstrap", "n_bootstrap", type=int, default=N_BOOTSTRAP, show_default=True,
              help="Bootstrap resamples for the 95% intervals.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the results as JSON here.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Draw P@k by day per recommender to this PNG (needs matplotlib).")
def eval_command(citeulike: str | None, papers: str | None, interactions: str | None, n_users: int,
                 min_items: int, days: int, k: int, seeds: tuple[str, ...], scenario: str, recommenders: str,
                 jobs: int | None, n_bootstrap: int, json_path: str | None, plot_path: str | None) -> None:
    """Offline evaluation: replay real users' likes day by day and compare recommenders.

    Papers arrive in --days random batches; each user's likes are split into history (the first
    max(3, 25%) after a seeded shuffle) and future; every day each recommender picks --k papers
    per user, the picks in the future are clicked, and it learns from that. Cold: the user gave
    only 5 keywords (their most used tags); warm: their history is imported as stars.
    """
    started = time.perf_counter()
    seed_list = _ints(seeds, "--seed")
    names = _names(recommenders)
    scenarios = list(SCENARIOS) if scenario == "both" else [scenario]
    if n_bootstrap < 0:
        raise InputError("--bootstrap must be >= 0")
    workers = jobs if jobs is not None else min(os.cpu_count() or 1, 4)
    if workers < 1:
        raise InputError("--jobs must be at least 1")

    data = _load(citeulike, papers, interactions)
    click.echo(f"data: {data.source}: {len(data.corpus)} papers, {len(data.likes)} users", err=True)
    cached: list[TextFeatures] = []

    def features() -> TextFeatures:
        if not cached:
            cached.append(TextFeatures.fit(data.corpus))
        return cached[0]

    def progress(lg: ReplayLog) -> None:
        click.echo(f"seed {lg.seed} {lg.scenario:<4} {lg.recommender:<8} {lg.seconds:7.1f} s", err=True)

    by_seed_logs: dict[int, dict[str, dict[str, list[ReplayLog]]]] = {}
    digest_recs: list[DigestRecommender] = []
    for seed in seed_list:
        by_seed_logs[seed] = run_all(
            data, _factories(names, data, seed, workers, features, digest_recs), seeds=[seed],
            scenarios=scenarios, k=k,
            n_users=n_users, min_items=min_items, days=days, on_log=progress)

    def summary(logs: dict[str, dict[str, list[ReplayLog]]]) -> Results:
        return {sc: {n: summarise(logs[sc][n], n_bootstrap=n_bootstrap, seed=seed_list[0]) for n in names}
                for sc in scenarios}

    pooled = summary({sc: {n: [lg for s in seed_list for lg in by_seed_logs[s][sc][n]] for n in names}
                      for sc in scenarios})
    per_seed = {s: summary(by_seed_logs[s]) for s in seed_list} if len(seed_list) > 1 else {}

    seeds_text = ", ".join(str(s) for s in seed_list)
    click.echo(f"digest eval: {data.source}, seed(s) {seeds_text}, {days} days, k={k}, 95% bootstrap CI over users")
    click.echo(table(pooled, k))
    for s, res in per_seed.items():
        ndcg = "  ".join(f"{sc}/{n} {m.ndcg_at_k.value:.3f}" for sc, by in res.items() for n, m in by.items())
        click.echo(f"seed {s}: nDCG@{k} {ndcg}")
    rank_days = [t for r in digest_recs for t in getattr(r, "rank_seconds", [])]
    train_days = [t for r in digest_recs for t in getattr(r, "train_seconds", [])]
    if rank_days:
        click.echo(f"digest, per day for all {n_users} users: ranking median {statistics.median(rank_days):.2f} s "
                   f"(max {max(rank_days):.2f} s), retraining median {statistics.median(train_days):.2f} s")
    elapsed = time.perf_counter() - started
    click.echo(f"total run time: {elapsed:.1f} s")

    if json_path:
        config: dict[str, Any] = {
            "source": data.source, "users": n_users, "min_items": min_items, "days": days, "k": k,
            "seeds": seed_list, "scenarios": scenarios, "recommenders": names, "bootstrap": n_bootstrap,
            "seconds": round(elapsed, 3),
        }
        write_json(to_json(pooled, config=config, by_seed=per_seed), json_path)
    if plot_path:
        plot(pooled, plot_path, k)
