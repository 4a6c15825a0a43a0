"""Running the judged queries: the project through its pipeline, and the keyword recipes beside it.

- digest: the project as configured, through the daily pipeline (judged_pipeline);
- tfidf-keyword: what keyword alerts do, a tf-idf cosine of the keywords (uni- and bigrams,
  sublinear tf, English stop words, fitted on the day's papers);
- minilm-keyword: zotero-arxiv-daily's encoder cold, the cosine of all-MiniLM-L6-v2 embeddings of
  the keywords and of each paper (the embed extra; its package ships the weights, so offline).
The few-stars protocol (judged.day_one_feedback) runs the project twice over two days, with and
without the day-one feedback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import numpy as np

from digest.config import Settings
from digest.evaluate.judged import (
    JudgedPaper,
    JudgedSet,
    K,
    QueryScore,
    RankerScores,
    counts_for_day_two,
    day_one_feedback,
    score,
    score_rankings,
)
from digest.evaluate.judged_pipeline import DAY_GAP, DAY_ONE, JudgedPick, JudgedPipeline
from digest.rank.encoder import TextEncoder

PROJECT = "digest"
TFIDF_KEYWORD = "tfidf-keyword"
MINILM_KEYWORD = "minilm-keyword"
RANKERS = (PROJECT, TFIDF_KEYWORD, MINILM_KEYWORD)


def _text(p: JudgedPaper) -> str:
    return f"{p.title}. {p.abstract}"


def tfidf_keyword(papers: Sequence[JudgedPaper], queries: dict[str, str], k: int = K) -> dict[str, list[str]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english")
    docs = vec.fit_transform([_text(p) for p in papers])
    qids = list(queries)
    sims = (vec.transform([queries[q] for q in qids]) @ docs.T).toarray()
    return {q: [papers[i].id for i in np.argsort(-sims[n], kind="stable")[:k]] for n, q in enumerate(qids)}


def keyword_similarities(papers: Sequence[JudgedPaper], queries: dict[str, str], encoder: TextEncoder) -> np.ndarray:
    """Queries (in their order) x papers: the cosine of each query's keywords, embedded as one text,
    to each paper's title and abstract."""
    docs = encoder.encode([_text(p) for p in papers])
    sims: np.ndarray = encoder.encode(list(queries.values())) @ docs.T
    return sims


def encoder_keyword(papers: Sequence[JudgedPaper], queries: dict[str, str], encoder: TextEncoder,
                    k: int = K) -> dict[str, list[str]]:
    qids = list(queries)
    sims = keyword_similarities(papers, queries, encoder)
    return {q: [papers[i].id for i in np.argsort(-sims[n], kind="stable")[:k]] for n, q in enumerate(qids)}


@dataclass
class ProjectDay:
    """The project's picks per query (with their reason lines), and any notice its encoder gave."""

    picks: dict[str, list[JudgedPick]]
    notice: str | None = None

    def rankings(self) -> dict[str, list[str]]:
        return {q: [p.paper_id for p in ps] for q, ps in self.picks.items()}


def project_picks(settings: Settings, judged: JudgedSet, k: int = K) -> ProjectDay:
    with JudgedPipeline(settings) as run:
        run.ingest(judged.papers, DAY_ONE)
        run.subscribe(judged.queries, top_k=k)
        return ProjectDay(run.plan(DAY_ONE), run.encoder_notice)


@dataclass
class FewStarsQuery:
    counts: bool
    stars: tuple[str, ...]
    dislike: str | None
    with_feedback: QueryScore
    without: QueryScore
    picks_with: list[JudgedPick] = field(default_factory=list)
    picks_without: list[JudgedPick] = field(default_factory=list)


class DayTwoQuery(Protocol):
    counts: bool
    with_feedback: QueryScore
    without: QueryScore


Q = TypeVar("Q", bound=DayTwoQuery)


@dataclass
class DayTwo(Generic[Q]):
    """Day 2 with and without some feedback on day 1, per query (few stars, the sign-up rating)."""

    per_query: dict[str, Q]

    def counted(self) -> dict[str, Q]:
        return {q: r for q, r in self.per_query.items() if r.counts}

    def mean(self, which: str) -> float:
        rows = self.counted()
        values = [getattr(r, which).ndcg for r in rows.values()]
        return sum(values) / len(values) if values else 0.0

    def worse(self, by: float = 0.10) -> list[str]:
        return [q for q, r in self.counted().items() if r.with_feedback.ndcg < r.without.ndcg - by]

    def ceiling(self) -> float | None:
        """The highest ratio any feedback could show on these queries: a perfect day 2 scores 1 on
        every one (its ideal is built from day 2's judged papers), so with / without is at most
        1 / without. Near 1, a ratio goal says more about the baseline than about the feedback.
        None when there is no baseline (no query counts): JSON has no NaN."""
        without = self.mean("without")
        return 1.0 / without if without > 0 else None

    def perfect_without(self) -> list[str]:
        """The queries whose day 2 is already perfect without the feedback: none can rise."""
        return [q for q, r in self.counted().items() if r.without.ndcg >= 1.0 - 1e-9]

    def picks(self, which: str) -> tuple[int, int]:
        """Over the queries that count, day 2's picks on the topic and off it (QueryScore)."""
        rows = [getattr(r, which) for r in self.counted().values()]
        return sum(s.on_topic for s in rows), sum(s.off_topic for s in rows)

    def summary(self, after: str) -> str:
        """The lines under a day-two table: the means over the queries that count, their ratio, the
        worse; then the picks on and off the topic, which nDCG@10 alone can hide."""
        with_, without = self.mean("with_feedback"), self.mean("without")
        ratio = with_ / without if without > 0 else float("nan")
        worse = self.worse()
        (on_with, off_with), (on_without, off_without) = self.picks("with_feedback"), self.picks("without")
        return (f"day 2 nDCG@10 over the {len(self.counted())} queries that count: {after} {with_:.3f}, "
                f"without {without:.3f}, ratio {ratio:.2f}x; more than 0.10 worse: "
                f"{len(worse)}{' (' + ', '.join(worse) + ')' if worse else ''}\n"
                f"day 2 picks on those queries, on the topic / off it (judged 0 or not judged): {after} "
                f"{on_with} / {off_with}, without {on_without} / {off_without}\n"
                f"the most any feedback could show on them: {_times(self.ceiling())} (a perfect day 2); "
                f"already perfect without it: {len(self.perfect_without())}")


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


class FewStars(DayTwo[FewStarsQuery]):
    pass


def few_stars(settings: Settings, judged: JudgedSet, k: int = K, dislike: bool = True) -> FewStars:
    """The day-two protocol: day 1's digest, the reader's two stars (and one "less like this"
    unless dislike is off), then day 2's digest over day 2's papers, with and without that feedback."""
    day1, day2 = judged.day(1), judged.day(2)
    second = DAY_ONE + DAY_GAP
    days: dict[bool, dict[str, list[JudgedPick]]] = {}
    feedback = {}
    for with_feedback in (True, False):
        with JudgedPipeline(settings) as run:
            run.ingest(day1, DAY_ONE)
            run.subscribe(judged.queries, top_k=k)
            first = run.deliver(DAY_ONE)
            for q in judged.queries:
                fb = day_one_feedback([p.paper_id for p in first[q]], judged.qrels[q])
                feedback[q] = fb
                if with_feedback:
                    run.give_feedback(q, fb.stars, [fb.dislike] if dislike and fb.dislike else [], DAY_ONE)
            run.ingest(day2, second)
            days[with_feedback] = run.deliver(second)
    out = {}
    second_ids = {p.id for p in day2}
    for q in judged.queries:
        # Day 2 is scored against the judgments of day 2's papers: its ideal ranking is built from them.
        grades = {pid: g for pid, g in judged.qrels[q].items() if pid in second_ids}
        fb = feedback[q]
        out[q] = FewStarsQuery(
            counts=counts_for_day_two(fb, day2, grades), stars=fb.stars, dislike=fb.dislike if dislike else None,
            with_feedback=score([p.paper_id for p in days[True][q]], grades, k),
            without=score([p.paper_id for p in days[False][q]], grades, k),
            picks_with=days[True][q], picks_without=days[False][q])
    return FewStars(out)


def run_rankers(names: Sequence[str], settings: Settings, judged: JudgedSet,
                minilm: Callable[[], TextEncoder | None], k: int = K
                ) -> tuple[dict[str, RankerScores], dict[str, dict[str, list[str]]], ProjectDay | None]:
    """Each ranker's scores and top-k lists; the project's picks with their reasons."""
    scores: dict[str, RankerScores] = {}
    lists: dict[str, dict[str, list[str]]] = {}
    project = None
    for name in names:
        if name == PROJECT:
            project = project_picks(settings, judged, k)
            lists[name] = project.rankings()
        elif name == TFIDF_KEYWORD:
            lists[name] = tfidf_keyword(judged.papers, judged.queries, k)
        elif name == MINILM_KEYWORD:
            encoder = minilm()
            if encoder is None:
                continue
            lists[name] = encoder_keyword(judged.papers, judged.queries, encoder, k)
        scores[name] = score_rankings(name, lists[name], judged, k)
    return scores, lists, project
