"""The one-line gist: the abstract's sentence that says what the paper does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from digest.gist import GIST_CHARS, gist, sentences
from digest.ingest.sources import parse_feed

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "tests" / "fixtures" / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"
DAY = {p.arxiv_id: p for p in parse_feed(FEED.read_bytes(), source_name="arxiv").papers}


def test_sentences_do_not_end_at_abbreviations_initials_or_decimals() -> None:
    text = ("Prior work (Smith et al. 2020) used Fig. 3 of J. Doe, e.g. Monte Carlo with 0.5 s steps. "
            "We propose Xnet. Does it work? Yes!")
    assert sentences(text) == [
        "Prior work (Smith et al. 2020) used Fig. 3 of J. Doe, e.g. Monte Carlo with 0.5 s steps.",
        "We propose Xnet.", "Does it work?", "Yes!"]


def test_the_contribution_not_the_background_of_real_abstracts() -> None:
    # Background first, the contribution later: the reader gets the later sentence.
    assert gist(DAY["2411.17820"].abstract).startswith("To overcome these obstacles, we propose a scalable")
    assert gist(DAY["2411.18380"].abstract) == (
        "This paper explores correlations between personal attributes and properties of shoulder surfing "
        "protection mechanisms.")
    # "Additionally, we construct ..." adds to the main statement: the first sentence says it.
    assert gist(DAY["2411.18140"].abstract).startswith("We investigate the inverse scattering problem")


def test_an_abstract_without_a_contribution_sign_falls_back_to_its_own_work_then_its_start() -> None:
    assert gist("Cats are common. Our survey counts them. Dogs too.") == "Our survey counts them."
    assert gist("Cats are common. Dogs too.") == "Cats are common."
    assert gist("") == "" and gist("   ") == ""


def test_a_question_poses_the_problem_and_the_answer_is_chosen() -> None:
    text = ("Testing is hard: can we develop a strategy for it? In this paper, we describe an approach to "
            "modelling such systems.")
    assert gist(text).startswith("In this paper, we describe an approach")


def test_a_long_sentence_is_cut_at_a_word() -> None:
    long = "We propose " + " ".join(["a very long method"] * 100) + "."
    out = gist(long)
    assert len(out) <= GIST_CHARS + 1 and out.endswith("\u2026") and not out[:-1].endswith(" ")
    assert long.startswith(out[:-1])


def test_the_review_table_shows_what_the_code_chooses_now() -> None:
    # docs/gist-review.md holds our reading of 50 choices; a changed rule must be read again.
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "gist_review.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    table = (ROOT / "docs" / "gist-review.md").read_text(encoding="utf-8")
    assert "**States the contribution: 47 of 50.**" in table
