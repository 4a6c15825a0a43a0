"""The sign-up rating, measured on judged queries: each query's subscriber rates the dozen papers
the rating page would show (digest.pipeline.rating, chosen from day 1's papers), "want these" for
those judged 2 or 1 and "not for me" for those judged 0 or not judged, before the first digest;
day 2's digest (over day 2's papers only) is scored with and without that rating.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from digest.config import Settings
from digest.evaluate.judged import JudgedSet, K, QueryScore, score
from digest.evaluate.judged_pipeline import DAY_GAP, DAY_ONE, JudgedPick, JudgedPipeline
from digest.evaluate.judged_run import DayTwo
from digest.pipeline.rating import papers_to_rate


@dataclass
class RatingQuery:
    counts: bool  # day 2 has a paper judged relevant to it: its nDCG means something
    wanted: list[str]
    not_for_me: list[str]
    with_feedback: QueryScore  # day 2 after the rating
    without: QueryScore
    picks_with: list[JudgedPick] = field(default_factory=list)


class RatingLift(DayTwo[RatingQuery]):
    pass


def rating_lift(settings: Settings, judged: JudgedSet, k: int = K) -> RatingLift:
    day1, day2 = judged.day(1), judged.day(2)
    second = DAY_ONE + DAY_GAP
    days: dict[bool, dict[str, list[JudgedPick]]] = {}
    rated: dict[str, tuple[list[str], list[str]]] = {}
    for with_rating in (True, False):
        with JudgedPipeline(settings) as run:
            run.ingest(day1, DAY_ONE)
            run.subscribe(judged.queries, top_k=k)
            if with_rating:
                for q, sub in run.subscribers.items():
                    shown = [p.arxiv_id or "" for p in papers_to_rate(run.app.engine, sub, run.moment(DAY_ONE))]
                    wanted = [pid for pid in shown if judged.qrels[q].get(pid, 0) > 0]
                    rated[q] = (wanted, [pid for pid in shown if pid not in wanted])
                    run.give_feedback(q, *rated[q], DAY_ONE)  # at sign-up, on day one
            run.deliver(DAY_ONE)
            run.ingest(day2, second)
            days[with_rating] = run.deliver(second)
    second_ids = {p.id for p in day2}
    out = {}
    for q in judged.queries:
        grades = {pid: g for pid, g in judged.qrels[q].items() if pid in second_ids}
        out[q] = RatingQuery(counts=any(g > 0 for g in grades.values()), wanted=rated[q][0],
                             not_for_me=rated[q][1],
                             with_feedback=score([p.paper_id for p in days[True][q]], grades, k),
                             without=score([p.paper_id for p in days[False][q]], grades, k),
                             picks_with=days[True][q])
    return RatingLift(out)


def rating_table(result: RatingLift) -> str:
    lines = [f"{'query':<6} {'counts':>6} {'with':>7} {'without':>8} {'diff':>7}  want / not for me"]
    for q, r in result.per_query.items():
        diff = r.with_feedback.ndcg - r.without.ndcg
        lines.append(f"{q:<6} {'yes' if r.counts else 'no':>6} {r.with_feedback.ndcg:>7.3f} {r.without.ndcg:>8.3f} "
                     f"{diff:>+7.3f}  {len(r.wanted)} / {len(r.not_for_me)}")
    lines.append(result.summary("after rating"))
    return "\n".join(lines)
