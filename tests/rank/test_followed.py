"""Followed authors on a real arXiv day (the 2024-11-28 multi-archive listing): their papers head the
digest whatever their score, five at most above the picks, the rest among the picks by score, and
the top_k picks are chosen from the other papers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from digest.domain import Paper, Subscriber
from digest.ingest.sources import parse_feed
from digest.rank.features import FeatureSpace, paper_text
from digest.rank.followed import ABOVE, REASON
from digest.rank.ranker import RankOptions, SubscriberState, rank_all

ARXIV = Path(__file__).parent.parent / "fixtures" / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"


@pytest.fixture(scope="module")
def day() -> tuple[list[Paper], FeatureSpace]:
    papers = [replace(p, id=i + 1) for i, p in enumerate(parse_feed(ARXIV.read_bytes(), source_name="arxiv").papers)]
    return papers, FeatureSpace.from_texts([paper_text(p) for p in papers])


def _by(papers: list[Paper], name: str) -> Paper:
    return next(p for p in papers if name in p.authors)


def _rank(day: tuple[list[Paper], FeatureSpace], authors: tuple[str, ...], *, exclude: tuple[str, ...] = (),
          shown: set[int] | None = None) -> list[tuple[str, str, float]]:
    papers, space = day
    sub = Subscriber(id=1, email="ada@example.org", keywords=("diffusion models",), authors=authors, exclude=exclude)
    ranked = rank_all([SubscriberState(sub, shown=shown or set())], papers, space,
                      RankOptions(top_k=10, min_score=0.1, trending_k=0))
    return [(p.paper.title, p.reason, p.score) for p in ranked[0].picks]


def test_a_followed_authors_paper_heads_the_digest_whatever_its_score(
        day: tuple[list[Paper], FeatureSpace]) -> None:
    papers, _ = day
    trees = _by(papers, "Andrés R. Vindas-Meléndez")  # combinatorics: nothing to do with diffusion models
    plain = _rank(day, ())
    assert trees.title not in [t for t, _, _ in plain] and len(plain) == 10
    # Written as a reader types it: "Last, First", no accents, an initial.
    picks = _rank(day, ("Vindas-Melendez, Andres R.",))
    assert picks[0][:2] == (trees.title, f"{REASON}: Vindas-Melendez, Andres R.")
    assert [t for t, _, _ in picks[1:]] == [t for t, _, _ in plain]  # the ten picks stay as they were


def test_the_same_surname_with_another_first_name_brings_nothing(day: tuple[list[Paper], FeatureSpace]) -> None:
    papers, _ = day
    spar = _by(papers, "Laura Vana-Gür")
    assert _rank(day, ("Peter Vana-Gür",)) == _rank(day, ())
    assert _rank(day, ("L. Vana-Gur",))[0][0] == spar.title


def test_five_above_the_picks_and_the_rest_among_them_by_score(day: tuple[list[Paper], FeatureSpace]) -> None:
    papers, _ = day
    # Seven authors of seven different papers, none about diffusion models.
    names = []
    for p in papers:
        if (p.authors and "diffusion" not in paper_text(p).lower() and len(p.authors[0].split()) == 2
                and not any(n in p.authors for n in names)):
            names.append(p.authors[0])
        if len(names) == 7:
            break
    picks = _rank(day, tuple(names))
    followed = [(t, s) for t, r, s in picks if r.startswith(REASON)]
    assert len(followed) == 7 and len(picks) == 10 + 7
    head = picks[:ABOVE]
    assert all(r.startswith(REASON) for _, r, _ in head)
    assert [s for _, _, s in head] == sorted((s for _, s in followed), reverse=True)[:ABOVE]
    # The other two stand where their score puts them among the picks.
    rest = picks[ABOVE:]
    for n, (_, reason, score) in enumerate(rest):
        if reason.startswith(REASON):
            assert all(s >= score for _, _, s in rest[:n])
            assert n + 1 == len(rest) or rest[n + 1][1].startswith(REASON) or rest[n + 1][2] < score


def test_never_send_phrases_and_papers_sent_before_win_over_following(day: tuple[list[Paper], FeatureSpace]) -> None:
    papers, _ = day
    trees = _by(papers, "Andrés R. Vindas-Meléndez")
    assert _rank(day, ("Andrés R. Vindas-Meléndez",), exclude=("polyominoes",)) == _rank(
        day, (), exclude=("polyominoes",))
    assert trees.id is not None
    assert _rank(day, ("Andrés R. Vindas-Meléndez",), shown={trees.id})[0][0] != trees.title
