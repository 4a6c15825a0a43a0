"""Which arXiv categories a keyword names: whole names and codes only."""

from __future__ import annotations

import pytest

from digest.rank.arxiv_categories import NAMES, label, named_by


@pytest.mark.parametrize(("keyword", "codes"), [
    ("combinatorics", ("math.CO",)),
    ("Superconductivity", ("cond-mat.supr-con",)),
    ("number theory", ("math.NT",)),
    ("dynamical system", ("math.DS",)),  # other word forms of "Dynamical Systems"
    ("math.co", ("math.CO",)),  # a code, in any case
    (" hep-th ", ("hep-th",)),
    ("machine learning", ("cs.LG", "stat.ML")),  # one name, two classes
    ("partial differential equations", ("math.AP",)),  # "Analysis of PDEs": its subject spelt out
    ("PDEs", ("math.AP",)),
    ("classical analysis and ordinary differential equations", ("math.CA",)),
])
def test_a_whole_name_or_a_code_names_its_categories(keyword: str, codes: tuple[str, ...]) -> None:
    assert named_by(keyword) == codes


@pytest.mark.parametrize("keyword", [
    "vision",  # a word of "Computer Vision and Pattern Recognition" is not the class
    "computer vision and pattern",
    "graph theory",
    "differential equations",  # a part of a subject spelt out
    "computation",  # stat.CO's name is a word of ordinary prose: only its code names it
    "applications",
    "",
    "math",
])
def test_a_part_of_a_name_or_a_plain_word_names_none(keyword: str) -> None:
    assert named_by(keyword) == ()
    assert named_by("stat.CO") == ("stat.CO",)


def test_the_label_names_the_class_and_its_code_when_it_is_one() -> None:
    assert label(("math.CO",)) == "Combinatorics (math.CO)"
    assert label(("cs.LG", "stat.ML")) == "Machine Learning"
    assert label(()) == ""
    assert all(code and name for code, name in NAMES.items())
