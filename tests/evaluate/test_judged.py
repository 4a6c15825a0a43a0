"""`digest eval --judged`: judged keyword queries scored through the real pipeline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.errors import InputError
from digest.evaluate.judged import (
    day_one_feedback,
    judged_share,
    load_judged,
    ndcg,
    precision,
    score,
    unjudged_pairs,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "judged"


def test_graded_ndcg_uses_every_judged_paper_for_the_ideal() -> None:
    grades = {"a": 2, "b": 1, "c": 0, "d": 2}
    ideal = 3 / math.log2(2) + 3 / math.log2(3) + 1 / math.log2(4)
    got = ndcg(["b", "x", "a"], grades)
    assert got == pytest.approx((1 / math.log2(2) + 3 / math.log2(4)) / ideal)
    assert ndcg(["a", "d", "b"], grades) == pytest.approx(1.0)
    assert ndcg([], grades) == 0.0
    assert ndcg(["a"], {}) == 0.0  # nothing judged relevant: no ideal to reach


def test_precision_counts_over_k_and_the_judged_share_over_the_list() -> None:
    grades = {"a": 2, "b": 1, "c": 0}
    assert precision(["a", "b", "c", "x"], grades) == pytest.approx(0.2)  # a short list is not rewarded
    assert judged_share(["a", "b", "c", "x"], grades) == pytest.approx(0.75)


def test_picks_off_the_topic_are_counted_where_ndcg_does_not_charge_them() -> None:
    """Two lists with the same nDCG@10: the one that fills its tail with papers judged 0 or not
    judged says so in its counts."""
    grades = {"a": 2, "b": 1, "c": 0}
    short, padded = score(["a", "b"], grades), score(["a", "b", "c", "x", "y"], grades)
    assert short.ndcg == pytest.approx(padded.ndcg)
    assert (short.on_topic, short.off_topic) == (2, 0)
    assert (padded.on_topic, padded.off_topic) == (2, 3)


def test_day_one_feedback_stars_the_best_judged_picks_and_dislikes_the_first_off_topic() -> None:
    grades = {"p1": 1, "p2": 2, "p3": 0, "p4": 2, "p5": 2}
    fb = day_one_feedback(["p1", "p2", "p3", "p4", "p5"], grades)
    assert fb.stars == ("p2", "p4")  # judged 2 first, in the order the reader met them
    assert fb.dislike == "p3"
    fb = day_one_feedback(["x", "p1", "p2"], grades)
    assert fb.stars == ("p1", "p2")  # judged 1 where fewer than two judged 2
    assert fb.dislike == "x"  # not judged counts as off topic


def test_unjudged_pairs_lists_only_top_ten_papers_nobody_judged() -> None:
    judged = load_judged(FIXTURE)
    first = next(iter(judged.queries))
    some_judged = next(iter(judged.qrels[first]))
    pairs = unjudged_pairs({first: [some_judged, "0000.00000"]}, judged)
    assert pairs == {first: ["0000.00000"]}


def test_more_judgments_are_added_and_win(tmp_path: Path) -> None:
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"q24": {"2411.17700": 2}}))
    judged = load_judged(FIXTURE, [extra])
    assert judged.qrels["q24"]["2411.17700"] == 2
    assert len(judged.qrels["q24"]) == len(load_judged(FIXTURE).qrels["q24"]) + 1


@pytest.mark.parametrize("content, culprit", [
    ({"q01": {"2411.18090": 3}}, "grade must be 0, 1 or 2"),
    (["not", "a", "mapping"], "expected"),
])
def test_bad_judgments_are_one_line_naming_the_file(tmp_path: Path, content: object, culprit: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(content))
    with pytest.raises(InputError, match=culprit) as err:
        load_judged(FIXTURE, [bad])
    assert str(bad) in str(err.value)


def test_a_missing_judged_folder_is_an_error_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "--judged", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "not a directory" in result.output


def test_eval_judged_runs_the_pipeline_and_puts_exact_phrases_first(tmp_path: Path) -> None:
    """The project's picks come from the daily pipeline: a reader who asks for "quantum error
    correction, superconducting qubits" gets the two papers about quantum error correction first,
    not superconducting materials."""
    out, unjudged = tmp_path / "judged.json", tmp_path / "unjudged.jsonl"
    result = CliRunner().invoke(main, ["eval", "--judged", str(FIXTURE), "--rankers", "digest,tfidf-keyword",
                                       "--json", str(out), "--unjudged", str(unjudged), "--show"])
    assert result.exit_code == 0, result.output
    assert "tfidf-keyword" in result.output and "Matches: quantum error correction" in result.output
    data = json.loads(out.read_text())
    top = [p["paper_id"] for p in data["picks"]["q01"][:2]]
    assert sorted(top) == ["2411.18090", "2411.18450"]
    assert set(data["rankers"]) == {"digest", "tfidf-keyword"}
    for name in data["rankers"]:
        assert 0.0 <= data["rankers"][name]["ndcg"] <= 1.0
    assert unjudged.exists()


def test_few_stars_reports_day_two_with_and_without_the_feedback(tmp_path: Path) -> None:
    out = tmp_path / "judged.json"
    result = CliRunner().invoke(main, ["eval", "--judged", str(FIXTURE), "--rankers", "digest", "--few-stars",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "day 2 nDCG@10" in result.output
    assert "day 2 picks on those queries, on the topic / off it" in result.output
    few = json.loads(out.read_text())["few_stars"]
    assert few["dislike"] is True
    assert few["ceiling"] >= 1.0
    counted = [q for q, r in few["per_query"].items() if r["counts"]]
    assert counted, "the fixture has queries with a relevant day-1 pick and a relevant day-2 paper"
    for q in counted:
        assert few["per_query"][q]["stars"]


def test_the_day_two_summary_says_how_far_a_perfect_day_two_would_go() -> None:
    """A ratio goal over a baseline near 1 may be out of any ranker's reach: the summary says the
    ratio a perfect day 2 would show, and how many queries are perfect without the feedback."""
    from digest.evaluate.judged import QueryScore
    from digest.evaluate.judged_run import FewStars, FewStarsQuery

    def q(with_: float, without: float, counts: bool = True) -> FewStarsQuery:
        return FewStarsQuery(counts, ("a",), None, QueryScore(with_, 1.0, 1.0), QueryScore(without, 1.0, 1.0))

    result = FewStars({"q1": q(1.0, 1.0), "q2": q(0.9, 0.8), "q3": q(0.1, 0.1, counts=False)})
    assert result.ceiling() == pytest.approx(1 / 0.9)
    assert result.perfect_without() == ["q1"]
    summary = result.summary("with the feedback")
    assert "ratio 1.06x" in summary
    assert "the most any feedback could show on them: 1.11x (a perfect day 2); already perfect without it: 1" in summary


def test_two_stars_and_a_dislike_keep_the_next_digest_on_the_readers_topic() -> None:
    """A reader of "protein design, protein structure" who starred two protein-design papers and waved
    one off-topic pick away gets a next digest at least as good as without that feedback (the keyword
    profile stays the prior; stars pull in what is close to them), and a pick is said to be like a
    starred paper only when it is close to it."""
    from digest.config import load_settings
    from digest.domain import Paper
    from digest.evaluate.judged_run import few_stars
    from digest.rank.features import FeatureSpace
    from digest.rank.select import LIKED_REASON_SIMILARITY

    judged = load_judged(FIXTURE)
    settings = load_settings(None)
    # The default install's meaning: the bundled static vectors (the suite's environment says none).
    settings = settings.model_copy(update={"model": settings.model.model_copy(update={"encoder": "static"})})
    result = few_stars(settings, judged)
    protein = result.per_query["q06"]
    assert protein.counts and len(protein.stars) == 2
    assert protein.with_feedback.ndcg >= protein.without.ndcg - 1e-9
    assert not result.worse()
    liked = [p for p in protein.picks_with if "Like the paper you starred" in p.reason]
    assert liked, "the stars explain at least one pick"
    # Every pick named after a starred paper shares its topic's words (the reason's threshold).
    by_id = {p.id: p for p in judged.papers}
    titles = {by_id[s].title: s for s in protein.stars}
    space = FeatureSpace.from_texts([f"{p.title}. {p.title}. {p.abstract}" for p in judged.papers])
    for pick in liked:
        star = titles[pick.reason.split("Like the paper you starred: ", 1)[1]]
        a, b = (Paper(canonical_id=x, title=by_id[x].title, abstract=by_id[x].abstract) for x in (pick.paper_id, star))
        assert float((space.paper_vectors([a]) @ space.paper_vectors([b]).T).toarray()[0, 0]) >= LIKED_REASON_SIMILARITY


def test_the_rating_protocol_rates_a_dozen_by_the_judgments_and_scores_day_two(tmp_path: Path) -> None:
    out = tmp_path / "judged.json"
    result = CliRunner().invoke(main, ["eval", "--judged", str(FIXTURE), "--rankers", "digest", "--rating",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "sign-up rating" in result.output and "after rating" in result.output
    rating = json.loads(out.read_text())["rating"]
    qrels = json.loads((FIXTURE / "qrels.json").read_text())
    for q, r in rating["per_query"].items():
        shown = r["wanted"] + r["not_for_me"]
        assert 0 < len(shown) <= 12 and len(set(shown)) == len(shown)
        assert all(qrels[q].get(p, 0) > 0 for p in r["wanted"])  # "want these": judged relevant, no other
        assert all(qrels[q].get(p, 0) == 0 for p in r["not_for_me"])
    assert any(r["wanted"] for r in rating["per_query"].values())


def test_unjudged_pairs_include_the_papers_the_rating_showed(tmp_path: Path) -> None:
    """The rating protocol says "not for me" to a paper nobody judged: --unjudged lists those, so
    they can be judged and added, and the next run rates them by their grade."""
    out, unjudged = tmp_path / "judged.json", tmp_path / "unjudged.jsonl"
    result = CliRunner().invoke(main, ["eval", "--judged", str(FIXTURE), "--rankers", "digest", "--rating",
                                       "--json", str(out), "--unjudged", str(unjudged)])
    assert result.exit_code == 0, result.output
    rating = json.loads(out.read_text())["rating"]["per_query"]
    qrels = json.loads((FIXTURE / "qrels.json").read_text())
    shown_unjudged = {(q, p) for q, r in rating.items() for p in r["not_for_me"] if p not in qrels[q]}
    assert shown_unjudged, "the fixture's rating page shows papers nobody judged"
    listed = {(r["query"], r["paper"]) for r in map(json.loads, unjudged.read_text().splitlines())}
    assert shown_unjudged <= listed

    # Judged and added, they are rated by their grade: one graded 2 is now "want these".
    q, paper = sorted(shown_unjudged)[0]
    extra = tmp_path / "more.json"
    extra.write_text(json.dumps({q: {paper: 2}}))
    again = CliRunner().invoke(main, ["eval", "--judged", str(FIXTURE), "--judgments", str(extra), "--rankers",
                                      "digest", "--rating", "--json", str(out)])
    assert again.exit_code == 0, again.output
    assert paper in json.loads(out.read_text())["rating"]["per_query"][q]["wanted"]
