"""`digest eval`: replay an interaction log day by day and score the recommenders on it."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from digest.domain import Subscriber
from digest.errors import InputError
from digest.evaluate.baselines import AslSvmRecommender, KeywordRecommender, RandomRecommender, TextFeatures
from digest.evaluate.data import DEFAULT_CITEULIKE, EvalData, load_citeulike, load_interactions
from digest.evaluate.metrics import N_BOOTSTRAP, summarise
from digest.evaluate.project import DigestRecommender, keyword_vectors, subscriber_keywords
from digest.evaluate.protocol import SCENARIOS, EvalCorpus, EvalUser, Recommender
from digest.evaluate.replay import ReplayLog, run_all
from digest.evaluate.report import Results, plot, table, to_json, write_json
from digest.evaluate.zad import ZadEmbedRecommender
from digest.rank import encoder as enc
from digest.rank import semantic

RECOMMENDERS = ("digest", "random", "keyword", "asl-svm")
# With the embed extra: zotero-arxiv-daily's embedding recipe, and the project's recommender without
# the encoder (to show what the encoder adds).
EMBED_RECOMMENDERS = ("zad-embed", "digest-tfidf")


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


def _names(value: str | None, with_encoder: bool, sentence_encoder: bool = False) -> list[str]:
    """sentence_encoder: the embed extra's model, not the static vectors: only then is zad-embed
    (a recipe made for a sentence encoder) among the defaults."""
    known = RECOMMENDERS + EMBED_RECOMMENDERS if with_encoder else RECOMMENDERS
    if value is None:
        return list(RECOMMENDERS) + (["zad-embed"] if sentence_encoder else [])
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        hint = "" if with_encoder else f" ({', '.join(EMBED_RECOMMENDERS)} need an encoder: not --encoder none)"
        raise InputError(f"--recommenders: unknown {', '.join(unknown) or '(empty)'}; "
                         f"choose from {', '.join(known)}{hint}")
    return names


class _Meaning:
    """The encoder's vectors for one eval: the corpus (cached on disk) and each user's keywords."""

    def __init__(self, encoder: enc.TextEncoder, data: EvalData) -> None:
        from digest.evaluate.embeddings import corpus_embeddings

        self.encoder = encoder
        self.papers = corpus_embeddings(data.corpus, encoder)
        self._keywords: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Keyword texts -> unit vectors, each text embedded once per eval."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._keywords]
        if todo:
            self._keywords.update(zip(todo, self.encoder.encode(todo), strict=True))
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self._keywords[t] for t in texts])

    def keyword_profiles(self, users: Sequence[EvalUser]) -> np.ndarray:
        subs = [Subscriber(id=i, email=f"u{i}@example.org", keywords=subscriber_keywords(u))
                for i, u in enumerate(users)]
        return semantic.keyword_profiles(subs, keyword_vectors(subs, self.encode), self.encoder.dim)


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
               made: list[DigestRecommender] | None = None,
               meaning: _Meaning | None = None) -> dict[str, Callable[[], Recommender]]:
    def digest_rec(with_encoder: bool = True) -> Recommender:
        if meaning is not None and with_encoder:
            rec = DigestRecommender(seed=seed, embeddings=meaning.papers, encode=meaning.encode,
                                    sentences=enc.is_sentence_encoder(meaning.encoder))
        else:
            rec = DigestRecommender(seed=seed, name="digest" if meaning is None else "digest-tfidf")
        if made is not None and rec.name == "digest":
            made.append(rec)  # kept to report its per-day ranking time
        return rec

    class _Zad(ZadEmbedRecommender):
        def start(self, corpus: EvalCorpus, users: Sequence[EvalUser], scenario: str) -> None:
            self.keyword_profiles = meaning.keyword_profiles(users) if meaning is not None else self.keyword_profiles
            super().start(corpus, users, scenario)

    make: dict[str, Callable[[], Recommender]] = {
        "digest": digest_rec,
        "digest-tfidf": lambda: digest_rec(False),
        "random": lambda: RandomRecommender(seed),
        "keyword": lambda: KeywordRecommender(features()),
        "asl-svm": lambda: AslSvmRecommender(features(), workers=jobs),
    }
    if meaning is not None:
        make["zad-embed"] = lambda: _Zad(meaning.papers, np.zeros((0, meaning.encoder.dim), dtype=np.float32))
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
@click.option("--recommenders", default=None,
              help=f"Comma list of {', '.join(RECOMMENDERS + EMBED_RECOMMENDERS)} "
                   f"[default: {', '.join(RECOMMENDERS)}, and zad-embed with the embed extra's encoder].")
@click.option("--encoder", "encoder_name", default=enc.DEFAULT_ENCODER, show_default=True,
              help="Encoder for digest and zad-embed: a sentence-transformers model (the embed extra; "
                   "without it the default is the bundled static vectors), 'static', or 'none' for tf-idf only.")
@click.option("--jobs", type=int, default=None, help="Processes for the SVM fits (default: CPU count, at most 4).")
@click.option("--bootstrap", "n_bootstrap", type=int, default=N_BOOTSTRAP, show_default=True,
              help="Bootstrap resamples for the 95% intervals.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the results as JSON here.")
@click.option("--judged", "judged_dir", type=click.Path(file_okay=False),
              help="Judged keyword queries (papers.jsonl, queries.json, qrels.json): score the digest's own picks "
                   "through the pipeline, with the settings in force, beside keyword recipes.")
@click.option("--judgments", multiple=True, type=click.Path(dir_okay=False),
              help="With --judged: more judgments ({query: {paper: grade}}), added to qrels.json; repeatable.")
@click.option("--rankers", default=None, help="With --judged: comma list of digest, tfidf-keyword, minilm-keyword.")
@click.option("--few-stars", is_flag=True, help="With --judged: the day-two protocol, with and without feedback.")
@click.option("--stars-only", is_flag=True, help="With --few-stars: the two stars, no less-like-this.")
@click.option("--rating", is_flag=True,
              help="With --judged: the sign-up rating (a dozen papers of day 1 rated by the judgments), day 2 "
                   "with and without it.")
@click.option("--unjudged", "unjudged_path", type=click.Path(dir_okay=False),
              help="With --judged: write the top-10 papers nobody judged yet here (JSON lines), to judge; "
                   "with --rating also the papers the rating page showed.")
@click.option("--show", is_flag=True, help="With --judged: print the digest's picks with their reason lines.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Draw P@k by day per recommender to this PNG (needs matplotlib).")
def eval_command(citeulike: str | None, papers: str | None, interactions: str | None, n_users: int,
                 min_items: int, days: int, k: int, seeds: tuple[str, ...], scenario: str,
                 recommenders: str | None, encoder_name: str, jobs: int | None, n_bootstrap: int,
                 json_path: str | None, plot_path: str | None, judged_dir: str | None, judgments: tuple[str, ...],
                 rankers: str | None, few_stars: bool, stars_only: bool, rating: bool, unjudged_path: str | None,
                 show: bool) -> None:
    """Offline evaluation: replay real users' likes day by day and compare recommenders.

    With --judged DIR: judged keyword queries on one listing instead (nDCG@10, P@10, judged share).

    Papers arrive in --days random batches; each user's likes are split into history (the first
    max(3, 25%) after a seeded shuffle) and future; every day each recommender picks --k papers
    per user, the picks in the future are clicked, and it learns from that. Cold: the user gave
    only 5 keywords (their most used tags); warm: their history is imported as stars.
    """
    if judged_dir is not None:
        _judged(judged_dir, encoder_name, judgments=judgments, rankers=rankers, few=few_stars,
                stars_only=stars_only, rating=rating, unjudged_path=unjudged_path, json_path=json_path, show=show)
        return
    started = time.perf_counter()
    seed_list = _ints(seeds, "--seed")
    # The default is the sentence encoder with the embed extra, else the bundled static vectors;
    # one asked for by name and not usable: one line, and the static vectors go on.
    encoder, notice = (enc.load_default() if encoder_name == enc.DEFAULT_ENCODER
                       else enc.load_or_notice(encoder_name))
    if notice:
        click.echo(f"notice: {notice}", err=True)
    names = _names(recommenders, encoder is not None, isinstance(encoder, enc.Encoder))
    scenarios = list(SCENARIOS) if scenario == "both" else [scenario]
    if n_bootstrap < 0:
        raise InputError("--bootstrap must be >= 0")
    workers = jobs if jobs is not None else min(os.cpu_count() or 1, 4)
    if workers < 1:
        raise InputError("--jobs must be at least 1")

    data = _load(citeulike, papers, interactions)
    click.echo(f"data: {data.source}: {len(data.corpus)} papers, {len(data.likes)} users", err=True)
    meaning = None
    if encoder is not None and any(n in ("digest", "zad-embed") for n in names):
        t0 = time.perf_counter()
        meaning = _Meaning(encoder, data)
        click.echo(f"encoder: {encoder.name}, {len(data.corpus)} papers embedded or read from the cache "
                   f"in {time.perf_counter() - t0:.1f} s", err=True)
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
            data, _factories(names, data, seed, workers, features, digest_recs, meaning), seeds=[seed],
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
            "encoder": encoder.name if encoder is not None else None,
            "seconds": round(elapsed, 3),
        }
        write_json(to_json(pooled, config=config, by_seed=per_seed), json_path)
    if plot_path:
        plot(pooled, plot_path, k)


def _judged(directory: str, encoder_name: str, **options: Any) -> None:
    """The judged queries with the settings in force (--config / DIGEST_CONFIG); --encoder, when
    given, replaces the configured encoder."""
    from digest.config import load_settings
    from digest.evaluate.judged_report import run_judged

    ctx = click.get_current_context()
    settings = load_settings(ctx.find_root().params.get("config"))
    if ctx.get_parameter_source("encoder_name") == click.core.ParameterSource.COMMANDLINE:
        settings = settings.model_copy(update={"model": settings.model.model_copy(update={"encoder": encoder_name})})
    run_judged(settings, directory, **options)
