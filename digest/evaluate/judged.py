"""Judged keyword queries on one real listing: the data, the graded metrics and the day-two protocol.

A judged set is a folder with papers.jsonl (id, title, abstract, categories), queries.json
({query id: "keyword, keyword"}) and qrels.json ({query id: {paper id: grade}}), grades 2 (squarely
on a keyword's topic), 1 (a substantial part of the paper) and 0 (shares words, not the topic).
More judgments (same shape as qrels.json) can be added from other files: a later file's grade for a
pair wins. A paper nobody judged counts as 0, so every figure goes with the judged share of the
top k it was computed on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest.errors import InputError

K = 10
MAX_FILE_BYTES = 200_000_000  # a listing of a few thousand papers is a few MB


@dataclass(frozen=True)
class JudgedPaper:
    id: str  # the arXiv id
    title: str
    abstract: str
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class JudgedSet:
    papers: list[JudgedPaper]
    queries: dict[str, str]  # query id -> keywords as typed
    qrels: dict[str, dict[str, int]]  # query id -> paper id -> grade
    source: str = ""

    def day(self, n: int) -> list[JudgedPaper]:
        """The day-two protocol's split of the listing: day 1 the ids whose last digit is odd, day 2 even."""
        odd = n == 1
        return [p for p in self.papers if (int(p.id[-1]) % 2 == 1) == odd]


def _read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: larger than {MAX_FILE_BYTES // 1_000_000} MB")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not readable JSON: {str(exc).splitlines()[0]}") from None


def _grades(data: Any, path: Path) -> dict[str, dict[str, int]]:
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected {{query id: {{paper id: grade}}}}")
    out: dict[str, dict[str, int]] = {}
    for qid, judged in data.items():
        if not isinstance(judged, dict):
            raise InputError(f"{path}: query {qid!r}: expected {{paper id: grade}}")
        for pid, grade in judged.items():
            if not isinstance(grade, int) or isinstance(grade, bool) or grade not in (0, 1, 2):
                raise InputError(f"{path}: query {qid!r}, paper {pid!r}: grade must be 0, 1 or 2, not {grade!r}")
        out[str(qid)] = {str(pid): int(g) for pid, g in judged.items()}
    return out


def _papers(path: Path) -> list[JudgedPaper]:
    out: list[JudgedPaper] = []
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: larger than {MAX_FILE_BYTES // 1_000_000} MB")
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    out.append(JudgedPaper(str(row["id"]), str(row["title"]), str(row.get("abstract") or ""),
                                           tuple(str(c) for c in row.get("categories") or ())))
                except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                    raise InputError(f"{path}: line {n}: expected a JSON object with id, title, abstract") from None
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from None
    if not out:
        raise InputError(f"{path}: no papers")
    return out


def load_judged(directory: str | Path, extra: Sequence[str | Path] = ()) -> JudgedSet:
    """The judged set in directory, with the judgments of the extra files added (later files win)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise InputError(f"--judged: not a directory: {folder}")
    papers = _papers(folder / "papers.jsonl")
    raw_queries = _read_json(folder / "queries.json")
    if not isinstance(raw_queries, dict) or not all(isinstance(v, str) for v in raw_queries.values()):
        raise InputError(f"{folder / 'queries.json'}: expected {{query id: \"keyword, keyword\"}}")
    queries = {str(k): v for k, v in raw_queries.items()}
    qrels = _grades(_read_json(folder / "qrels.json"), folder / "qrels.json")
    for f in extra:
        for qid, judged in _grades(_read_json(Path(f)), Path(f)).items():
            qrels.setdefault(qid, {}).update(judged)
    return JudgedSet(papers, queries, {q: qrels.get(q, {}) for q in queries}, source=str(folder))


# ---- metrics -------------------------------------------------------------------------------------
def _discount(rank: int) -> float:
    return 1.0 / math.log2(rank + 2)


def ndcg(ranked: Sequence[str], grades: Mapping[str, int], k: int = K) -> float:
    """nDCG@k with gain 2^grade - 1; the ideal ranking is built from every judged paper of the query."""
    dcg = sum((2 ** grades.get(pid, 0) - 1) * _discount(i) for i, pid in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum((2 ** g - 1) * _discount(i) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def precision(ranked: Sequence[str], grades: Mapping[str, int], k: int = K) -> float:
    """P@k: papers graded 1 or 2 among the top k, over k (a short list is not rewarded)."""
    return sum(1 for pid in ranked[:k] if grades.get(pid, 0) >= 1) / k


def judged_share(ranked: Sequence[str], grades: Mapping[str, int], k: int = K) -> float:
    top = ranked[:k]
    return sum(1 for pid in top if pid in grades) / len(top) if top else 1.0


@dataclass(frozen=True)
class QueryScore:
    ndcg: float
    precision: float
    judged: float
    # Picks of the top k on the topic (graded 1 or 2) and off it (graded 0 or not judged), counted:
    # nDCG@k does not charge an off-topic pick below the last relevant one, and a change that fills
    # a quiet day's tail with such picks raised it (docs/evaluation-log.md, eleventh session).
    on_topic: int = 0
    off_topic: int = 0


def score(ranked: Sequence[str], grades: Mapping[str, int], k: int = K) -> QueryScore:
    on = sum(1 for pid in ranked[:k] if grades.get(pid, 0) >= 1)
    return QueryScore(ndcg(ranked, grades, k), precision(ranked, grades, k), judged_share(ranked, grades, k),
                      on, len(ranked[:k]) - on)


@dataclass
class RankerScores:
    """One ranker's scores per query, and their means."""

    name: str
    per_query: dict[str, QueryScore] = field(default_factory=dict)

    def mean(self, attr: str) -> float:
        values = [getattr(s, attr) for s in self.per_query.values()]
        return sum(values) / len(values) if values else 0.0


def score_rankings(name: str, rankings: Mapping[str, Sequence[str]], judged: JudgedSet, k: int = K) -> RankerScores:
    return RankerScores(name, {q: score(rankings.get(q, []), judged.qrels[q], k) for q in judged.queries})


def unjudged_pairs(rankings: Mapping[str, Sequence[str]], judged: JudgedSet, k: int = K) -> dict[str, list[str]]:
    """Per query, the papers of the top k nobody judged yet (to judge and add with --judgments)."""
    out: dict[str, list[str]] = {}
    for q in judged.queries:
        missing = [pid for pid in rankings.get(q, [])[:k] if pid not in judged.qrels[q]]
        if missing:
            out[q] = missing
    return out


# ---- the day-two protocol ------------------------------------------------------------------------
@dataclass(frozen=True)
class DayOneFeedback:
    stars: tuple[str, ...]  # the two highest-ranked picks judged 2 (judged 1 where fewer)
    dislike: str | None  # the highest-ranked pick judged 0 or not judged


def day_one_feedback(picks: Sequence[str], grades: Mapping[str, int], n_stars: int = 2) -> DayOneFeedback:
    twos = [p for p in picks if grades.get(p, 0) == 2]
    ones = [p for p in picks if grades.get(p, 0) == 1]
    stars = (twos + ones)[:n_stars]
    # Stars in the order the reader met them (rank order).
    stars = [p for p in picks if p in stars]
    dislike = next((p for p in picks if grades.get(p, 0) == 0), None)
    return DayOneFeedback(tuple(stars), dislike)


def counts_for_day_two(feedback: DayOneFeedback, day_two: Sequence[JudgedPaper], grades: Mapping[str, int]) -> bool:
    """A query counts when day 1 gave a judged-relevant pick to star and day 2 has a judged-relevant paper."""
    return bool(feedback.stars) and any(grades.get(p.id, 0) >= 1 for p in day_two)
