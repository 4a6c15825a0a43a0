"""Canonical ids: the dedup key that makes the same paper from two feeds one paper."""

from __future__ import annotations

import pytest

from digest.identity import (
    arxiv_id_and_version,
    arxiv_id_from_doi,
    canonical_id,
    doi_in_text,
    normalise_doi,
    normalise_title,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oai:arXiv.org:2411.17700v1", ("2411.17700", 1)),
        ("https://arxiv.org/abs/2411.17697v12", ("2411.17697", 12)),
        ("https://arxiv.org/abs/2411.17700", ("2411.17700", None)),
        ("https://arxiv.org/pdf/2202.12139v1.pdf", ("2202.12139", 1)),
        ("arXiv:0704.0001", ("0704.0001", None)),
        ("http://arxiv.org/abs/hep-ex/0605012v1", ("hep-ex/0605012", 1)),
        ("cond-mat/0412498", ("cond-mat/0412498", None)),
        ("math.GT/0309136v2", ("math/0309136", 2)),  # the subject class is not part of the id
        ("Title. (arXiv:1805.06430v2 [nucl-th] UPDATED)", ("1805.06430", 2)),
    ],
)
def test_arxiv_ids_are_found_in_ids_urls_and_titles(text: str, expected: tuple[str, int | None]) -> None:
    assert arxiv_id_and_version(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "10.1109/ICSTW55395.2022.00035",  # a DOI whose tail looks like YYMM.NNNNN
        "2413.12345",  # month 13
        "12411.12345",
        "https://example.com/abs/1234567",
        "version 2.0 of the dataset",
        "",
        None,
    ],
)
def test_things_that_are_not_arxiv_ids(text: str | None) -> None:
    assert arxiv_id_and_version(text) is None


def test_arxiv_doi_names_the_arxiv_paper() -> None:
    assert arxiv_id_from_doi("10.48550/arXiv.2411.17700") == "2411.17700"
    assert arxiv_id_from_doi("10.1002/tax.12650") is None


@pytest.mark.parametrize(
    "raw",
    [
        "10.1093/zoolinnean/zlab078",
        "https://doi.org/10.1093/ZOOLINNEAN/zlab078",
        "http://dx.doi.org/10.1093/zoolinnean/zlab078",
        "doi:10.1093/zoolinnean/zlab078",
        "  DOI: 10.1093/zoolinnean/zlab078. ",
        "https://doi.org/10.1093%2Fzoolinnean%2Fzlab078",
    ],
)
def test_doi_spellings_normalise_to_one_key(raw: str) -> None:
    assert normalise_doi(raw) == "10.1093/zoolinnean/zlab078"


@pytest.mark.parametrize("raw", ["", None, "zlab078", "https://academic.oup.com/zoolinnean", "11.1000/x", "10.12/x"])
def test_non_dois_are_rejected(raw: str | None) -> None:
    assert normalise_doi(raw) is None


def test_doi_in_a_publisher_link() -> None:
    assert doi_in_text("https://onlinelibrary.wiley.com/doi/10.1002/tax.12650?af=R") == "10.1002/tax.12650"
    assert doi_in_text("https://pubmed.ncbi.nlm.nih.gov/34929406/") is None


def test_normalise_title_ignores_case_accents_punctuation_and_spacing() -> None:
    a = normalise_title("Élan vital:  A Study — of *Things*!")
    b = normalise_title("elan VITAL a study of things")
    assert a == b == "elan vital a study of things"
    assert normalise_title("$H^3$Fusion: LLMs") == "h 3 fusion llms"
    assert normalise_title(None) == ""


def test_canonical_id_prefers_arxiv_then_doi_then_title() -> None:
    assert canonical_id("2411.17700v3", "10.1/x", "T") == "arxiv:2411.17700"
    assert canonical_id("hep-ex/0605012v1", None, None) == "arxiv:hep-ex/0605012"
    assert canonical_id(None, "https://doi.org/10.1002/TAX.12650", "T") == "doi:10.1002/tax.12650"
    assert canonical_id(None, "not a doi", "The  Title!") == "title:the title"
    # The same paper from an RSS guid and an API URL gets the same key, whatever the version.
    assert canonical_id("oai:arXiv.org:2411.17700v1", None, "a") == canonical_id(
        "http://arxiv.org/abs/2411.17700v2", None, "b"
    )


def test_canonical_id_needs_something() -> None:
    with pytest.raises(ValueError):
        canonical_id(None, None, " ... ")
