"""Followed authors' names against the real author lists of the feed samples (tests/fixtures/feeds):
every real author written the other ways a reader or a journal writes them is the same person, and
real authors who share a surname but not a first name are not."""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import pytest
from nameparser import HumanName
from nameparser.config import CONSTANTS

from digest.author_names import AuthorKey, author_key, parse_followed, same_person
from digest.ingest.sources import parse_feed

PARTICLES = CONSTANTS.prefixes  # "de", "bin", "le", ...: see test_a_given_name_that_is_also_a_particle

FEEDS = Path(__file__).parent.parent / "fixtures" / "feeds"
SAMPLES = ["arxiv_api_atom_2026_search-testing_100results.xml", "arxiv_api_atom_legacy_2016_au-del_maestro.xml",
           "arxiv_rss_legacy_rdf_hep-ex_2018-05-23_excerpt.xml", "arxiv_rss_new2024_multi-archive_2024-11-28.xml",
           "journal_atom_ojs_contributions-to-entomology_2021-12-21.xml", "journal_rss2_oup_zoolinnean_2021-12-21.xml",
           "journal_rss2_prism_wiley_taxon_2021-12-21.xml", "journal_rss2_pubmed_search_2021-12-21.xml",
           "journal_rss2_sciencedirect_mpe_2021-12-21.xml"]


@pytest.fixture(scope="module")
def real_authors() -> list[str]:
    names: set[str] = set()
    for sample in SAMPLES:
        for paper in parse_feed((FEEDS / sample).read_bytes(), source_name=sample).papers:
            names.update(paper.authors)
    assert len(names) > 5000
    return sorted(names)


def _key(name: str) -> AuthorKey:
    key = author_key(name)
    assert key is not None, name
    return key


def _plain(text: str) -> str:
    """Accents dropped, word by word (a stray spacing accent in a garbled name leaves no new space)."""
    return " ".join("".join(c for c in unicodedata.normalize("NFKD", word) if c.isalnum() or c in ".-'")
                    for word in text.split())


def _variants(name: str) -> list[str]:
    """The same person as readers and journals write them: surname first, initials, no accents,
    capitals, a hyphenated first name split."""
    h = HumanName(name)
    given = f"{h.first} {h.middle}".strip()
    initials = " ".join(part[0] + "." for part in given.replace("-", " ").split())
    out = [f"{h.last}, {given}", f"{initials} {h.last}", f"{h.last}, {initials}", f"{h.first} {h.last}",
           _plain(name), name.upper()]
    parts = h.first.split("-")
    if len(parts) > 1 and not any(p.lower() in PARTICLES for p in parts):
        out.append(f"{' '.join(parts)} {h.middle} {h.last}")
    return out


def _full_first(key: AuthorKey) -> bool:
    return bool(key.given) and len(key.given[0]) > 1


def test_every_real_author_written_the_other_ways_is_the_same_person(real_authors: list[str]) -> None:
    checked = 0
    missed = []
    for name in real_authors:
        key = author_key(name)
        if key is None or not _full_first(key):
            continue
        for variant in _variants(name):
            other = author_key(variant)
            if other is None or not (same_person(key, other) and same_person(other, key)):
                missed.append((name, variant))
            checked += 1
    assert checked > 20_000
    assert missed == []


def test_real_authors_sharing_a_surname_but_not_a_first_name_are_not_the_same_person(
        real_authors: list[str]) -> None:
    by_surname: dict[str, list[AuthorKey]] = defaultdict(list)
    for name in real_authors:
        key = author_key(name)
        if key is not None and _full_first(key) and key not in by_surname[key.surname]:
            by_surname[key.surname].append(key)
    pairs = [(a, b) for keys in by_surname.values() for a, b in combinations(keys, 2)
             if a.given[0] != b.given[0] and "".join(a.given) != "".join(b.given)]
    assert len(pairs) > 1000  # Wang, Zhang, Li, Liu, Chen ... and the rest
    assert [(a, b) for a, b in pairs if same_person(a, b)] == []


@pytest.mark.parametrize(("followed", "written"), [
    ("Yann LeCun", "Y. LeCun"), ("Yann LeCun", "Yann Le Cun"), ("LeCun, Yann", "YANN LECUN"),
    ("M. Welling", "Max A. Welling"), ("Welling, M.", "Max Welling"), ("M Welling", "Max Welling"),
    ("Vindas-Melendez, Andres R.", "Andrés R. Vindas-Meléndez"), ("Jean-Pierre Sartre", "J.-P. Sartre"),
    ("Jean-Pierre Sartre", "Jean Pierre Sartre"), ("Zhongjian Liu", "Zhong-Jian Liu"), ("Z. Liu", "Zhong-Jian Liu"),
    ("Sean O'Brien", "Sean OBrien"), ("Lars Ørsted", "Lars Orsted"), ("Paul Erdős", "Paul Erdos"),
    ("Grzegorz Łukasiewicz", "Grzegorz Lukasiewicz"), ("Johannes D. van der Waals", "van der Waals, J. D."),
    ("Martin Luther King Jr.", "M. L. King"), ("Jane Doe", "Jane Doe (MIT)"), ("Dr. Max Welling", "Max Welling"),
    ("N. C. Bennett", "N.C Bennett"),
])
def test_the_same_person_written_two_ways(followed: str, written: str) -> None:
    assert same_person(_key(followed), _key(written)) and same_person(_key(written), _key(followed))


@pytest.mark.parametrize(("followed", "written"), [
    ("Max Welling", "Mark Welling"), ("Jian Wang", "Jian-Peng Wang"), ("Jean Sartre", "Jean-Pierre Sartre"),
    ("Yann LeCun", "Yann Lecunn"), ("Max Welling", "Welling"), ("J. D. van der Waals", "J. D. Waals"),
])
def test_different_people(followed: str, written: str) -> None:
    key = author_key(written)
    assert key is None or not same_person(_key(followed), key)


def test_a_given_name_that_is_also_a_particle_needs_its_hyphen() -> None:
    # A known limit: "Xin-De Wang" written "Xin De Wang" reads "De Wang" as a surname with its
    # particle (as in "de la Cruz"); with the hyphen, or surname first, it is the same person.
    assert same_person(_key("Xin-De Wang"), _key("Wang, Xin-De")) and same_person(_key("Xin-De Wang"), _key("X. Wang"))
    assert not same_person(_key("Xin-De Wang"), _key("Xin De Wang"))


def test_the_names_a_reader_types_are_split_as_meant() -> None:
    assert parse_followed("Yann LeCun, M. Welling") == ("Yann LeCun", "M. Welling")
    assert parse_followed("LeCun, Yann") == ("LeCun, Yann",)
    assert parse_followed("Welling, M., LeCun, Y.") == ("Welling, M.", "LeCun, Y.")
    assert parse_followed("de la Cruz, Maria;\n  Vindas-Melendez,  Andres R. ") == (
        "de la Cruz, Maria", "Vindas-Melendez, Andres R.")
    assert parse_followed("Max Welling; Welling, Max, MAX WELLING") == ("Max Welling",)  # one person, once
    assert parse_followed("Max Welling; M. Welling") == ("Max Welling", "M. Welling")  # the initial: more people


@pytest.mark.parametrize(("text", "message"), [
    ("", "give at least one name"), (" ; , ", "give at least one name"),
    ("Welling", 'author "Welling": give a first name or initial too'),
    ("Max Welling, LeCun", 'author "LeCun": give a first name or initial too'),
    ("M.", 'author "M.": give a surname too'), ("1234", 'author "1234": not a name'),
    ("x" * 101 + " Welling", "longer than 100 characters"),
    ("; ".join(f"Ann Author{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(51)), "at most 50 authors"),
])
def test_names_that_cannot_be_used_are_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_followed(text)
    assert "\n" not in str(raised.value)
