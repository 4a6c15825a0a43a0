"""Followed authors recognised however a paper writes the name: on the real author lists of the feed
samples (arXiv RSS and API, Hugging Face, journal feeds) and on hand-picked tricky names."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import defaultdict
from pathlib import Path

import pytest
from nameparser import HumanName

from digest.author_names import (
    MAX_FOLLOWED,
    AuthorKey,
    FollowedAuthors,
    author_key,
    parse_followed,
    same_person,
)
from digest.ingest.sources import FeedError, parse_feed

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
ARXIV_DAY = FEEDS / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"
DASH = re.compile(r"[-\u2010]")


def _feed_authors() -> list[str]:
    """Every distinct author string of the feed samples that parse, in file order."""
    seen: dict[str, None] = {}
    for path in sorted(FEEDS.iterdir()):
        if path.suffix not in (".xml", ".json"):
            continue
        try:
            papers = parse_feed(path.read_bytes(), source_name=path.name).papers
        except FeedError:
            continue  # the error and truncated samples
        for paper in papers:
            seen.update(dict.fromkeys(paper.authors))
    return list(seen)


REAL = _feed_authors()


def _plain(text: str) -> str:
    """Letters only, lower case, no accents: the test's own idea of "the same letters"."""
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if c.isalpha() and not unicodedata.combining(c))


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _parts(name: str) -> tuple[list[str], str] | None:
    """(given names as written, surname as written) of a real "First Middle Last" author with a whole
    first name, or None for the others (initials first, titles, suffixes, one-word names, groups)."""
    if "Ã" in name:
        return None  # mojibake in the arXiv API recording ("RamÃ\xadrez"): no accents to strip
    parsed = HumanName(name)
    given = parsed.first_list + parsed.middle_list
    if parsed.title or parsed.suffix or parsed.nickname or not parsed.last or not given:
        return None
    first = DASH.split(given[0])[0]
    if "." in first or len(first) < 2 or not first.isalpha() or any(c.isdigit() for c in name):
        return None
    if re.fullmatch(r"(?:[A-Z]\.?)+", parsed.last) or author_key(name) is None:
        return None  # "Koushik MV", "Brandão S": which word is the surname is not known
    return given, parsed.last


def _initials(given: list[str], dot: str) -> str:
    """"Jean-Pierre A." -> "J.-P. A." (dot ".") or "J-P A" (dot "")."""
    return " ".join("-".join(piece[0] + dot for piece in DASH.split(word) if piece) for word in given)


def _variants(given: list[str], surname: str) -> list[str]:
    """How the same person is written elsewhere: initials, "Last, First", PubMed style, capitals,
    without accents, hyphens split or joined, the surname's spaces closed, an affiliation, no middle."""
    full = " ".join(given)
    out = [
        f"{_initials(given, '.')} {surname}",
        f"{given[0][0]}. {surname}",
        f"{_initials(given, '')} {surname}",
        f"{surname}, {full}",
        f"{surname}, {_initials(given, '.')}",
        f"{surname} {''.join(_plain(piece)[0].upper() for piece in DASH.split(full.replace(' ', '-')))[:3]}",
        f"{full} {surname}".upper(),
        f"{full} {surname} (Department of Physics, University of Somewhere)",
        f"{full} {surname}1,*",
        _strip_accents(f"{full} {surname}"),
    ]
    if DASH.search(full):
        out.append(f"{DASH.sub(' ', full)} {surname}")  # Jean Pierre
        joined = DASH.sub("", given[0])
        out.append(f"{joined[0]}{joined[1:].lower()} {surname}")  # Shusheng
    if " " in surname:
        out.append(f"{full} {surname.replace(' ', '')}")  # LeCun for Le Cun
    if len(given) > 1:
        out.append(f"{given[0]} {surname}")  # middle name left out
    return out


def _key(name: str) -> AuthorKey:
    key = author_key(name)
    assert key is not None, name
    return key


def test_the_same_real_author_written_another_way_is_recognised() -> None:
    pairs = 0
    authors = 0
    for name in REAL:
        parts = _parts(name)
        if parts is None:
            continue
        authors += 1
        original = _key(name)
        followed = FollowedAuthors([name])
        for variant in _variants(*parts):
            written = _key(variant)
            assert same_person(original, written), (name, variant, original, written)
            assert same_person(written, original), (variant, name)
            assert followed.match(["Someone Else", variant]) == name, (name, variant)
            pairs += 1
    assert authors > 6_000  # 7,045 of the 7,770 distinct author strings
    assert pairs > 60_000  # 72,386


def test_real_authors_with_the_same_surname_and_other_first_names_are_told_apart() -> None:
    by_surname: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    for name in REAL:
        parts = _parts(name)
        if parts is not None:
            by_surname[_plain(parts[1])].append((name, parts[0]))
    pairs = prefixes = 0
    for people in by_surname.values():
        for (a, given_a), (b, given_b) in itertools.combinations(people, 2):
            first_a, first_b = _plain(given_a[0]), _plain(given_b[0])  # "Yu-Xiang": yuxiang
            whole_a, whole_b = _plain("".join(given_a)), _plain("".join(given_b))
            # "Shu Sheng" and "Shusheng" are one first name written two ways.
            if first_a == first_b or (len(first_b) > len(first_a) and whole_a.startswith(first_b)) or (
                    len(first_a) > len(first_b) and whole_b.startswith(first_a)):
                continue
            assert not same_person(_key(a), _key(b)), (a, b)
            assert FollowedAuthors([a]).match([b]) is None, (a, b)
            pairs += 1
            prefixes += first_a.startswith(first_b) or first_b.startswith(first_a)  # Yu, Yu-Xiang; Bo, Bob
    assert pairs > 50_000  # 79,100: Wang (194 people), Zhang, Li, Liu, Chen, ...
    assert prefixes > 300  # 384
    assert len(by_surname["wang"]) > 150


@pytest.mark.parametrize(("followed", "written"), [
    ("Yann LeCun", "Y. LeCun"),
    ("Yann LeCun", "Yann Le Cun"),
    ("Yann LeCun", "LeCun, Yann"),
    ("Yann LeCun", "LECUN, YANN"),
    ("M. Welling", "Max Welling"),
    ("M. Welling", "Max A. Welling"),
    ("Welling, M.", "M Welling"),
    ("Max Welling", "Max A. Welling"),
    ("Max Welling", "Welling M"),  # PubMed: surname, then initials
    ("Max Welling", "Welling MA"),
    ("Jean-Pierre Serre", "Jean Pierre Serre"),
    ("Jean-Pierre Serre", "J.-P. Serre"),
    ("Jean-Pierre Serre", "J. -P. Serre"),  # arXiv's spacing
    ("Jean-Pierre Serre", "JP Serre"),
    ("Jean-Pierre Serre", "J. Serre"),
    ("Jean-Pierre Serre", "Jean P. Serre"),
    ("Yu-Xiang Wang", "Y. Wang"),
    ("Shu-Sheng Xu", "Shusheng Xu"),
    ("Shu-Sheng Xu", "Shu‐Sheng Xu"),  # U+2010, as Wiley writes it
    ("Conan O'Brien", "Conan OBrien"),
    ("Conan O'Brien", "Conan O’Brien"),
    ("Johannes D. van der Waals", "J. D. van der Waals"),
    ("Johannes D. van der Waals", "van der Waals, Johannes"),
    ("Johannes D. van der Waals", "Johannes Van Der Waals"),
    ("Juan de la Cruz", "Juan De La Cruz"),
    ("Juan de la Cruz", "de la Cruz, J."),
    ("Adrian Del Maestro", "A. Del Maestro"),
    ("Adrian Del Maestro", "Del Maestro, Adrian"),
    ("Martin Luther King Jr.", "Martin L. King"),
    ("Kenneth M. Merz Jr", "Kenneth M. Merz, Jr."),
    ("Henry Ford III", "H. Ford"),
    ("Hans Straße", "Hans Strasse"),
    ("Lasse Møldrup", "Lasse Moldrup"),
    ("Łukasz Kaiser", "Lukasz Kaiser"),
    ("Æsa Sigurjónsdóttir", "Aesa Sigurjonsdottir"),
    ("José Raúl Romero", "Jose Raul Romero"),
    ("Jane Doe", "Jane Doe (MIT)"),
    ("Jane Doe", "Jane Doe [Stanford University]"),
    ("Jane Doe", "Dr. Jane Doe"),
    ("Yu. B. Ivanov", "Yuri B. Ivanov"),  # "Yu." is taken for a title by nameparser
    ("Christiane Helling", "Ch. Helling"),
    ("Mahdi Zamani", "M. Zamani"),  # "Mahdi" too
    ("Dung Van Vu", "D. V. Vu"),  # Vietnamese middle name read as a particle
    ("Cristina Ramos Almeida", "Ramos Almeida, C."),  # a two-word Spanish surname
    ("Brandão S.", "Sara Brandão"),  # OUP's style, no comma
    ("De Miranda G", "Gabriel De Miranda"),
    ("Esra D. van`t Westende", "E. D. van 't Westende"),
    ("Trevor Mendel", "J. Trevor Mendel"),  # known by the middle name
    ("J. Smith", "John Smith"),
    ("J. Smith", "Jane Smith"),  # initials cannot tell them apart: accepted
])
def test_the_same_person(followed: str, written: str) -> None:
    assert same_person(_key(followed), _key(written))
    assert FollowedAuthors([followed]).match([written]) == followed


@pytest.mark.parametrize(("followed", "written"), [
    ("Max Welling", "Mark Welling"),
    ("Max Welling", "M. Wellington"),
    ("Yann LeCun", "Yann Lecunn"),
    ("Jean-Pierre Serre", "Jean-Paul Serre"),
    ("J.-P. Serre", "J.-M. Serre"),
    ("Wei Wang", "Wen Wang"),
    ("Wei Wang", "Li Wei Wang"),
    ("Bo Li", "Bob Li"),
    ("Shu Xu", "Shusheng Xu"),
    ("Yu Wang", "Yu-Xiang Wang"),  # a hyphenated given name is one name: Yu is someone else
    ("Yu Wang", "Y.-X. Wang"),
    ("Jean Serre", "Jean-Pierre Serre"),
    ("Jane Doe", "John Doe (MIT)"),
    ("Johannes D. van der Waals", "Johannes D. van der Wals"),
    ("Max Welling", "Welling"),  # a bare surname in a paper matches nobody
    ("Max A. Welling", "Max B. Welling"),
    ("Trevor Mendel", "J. Thomas Mendel"),
])
def test_not_the_same_person(followed: str, written: str) -> None:
    key = author_key(written)
    assert key is None or not same_person(_key(followed), key)
    assert FollowedAuthors([followed]).match([written]) is None


def test_keys_are_lower_case_without_accents_hyphens_apostrophes_or_suffixes() -> None:
    assert author_key("Jean-Pierre Serre") == AuthorKey("serre", ("jean-pierre",))
    assert author_key("Jean Pierre Serre") == AuthorKey("serre", ("jean", "pierre"))
    assert author_key("J.-P. Serre") == author_key("J. -P. Serre") == AuthorKey("serre", ("j-p",))
    assert author_key("Serre JP") == AuthorKey("serre", ("j", "p"))
    assert author_key("Max A.B. Welling") == AuthorKey("welling", ("max", "a", "b"))
    assert author_key("Conan O'Brien") == AuthorKey("obrien", ("conan",))
    assert author_key("Johannes D. van der Waals") == AuthorKey("van der waals", ("johannes", "d"))
    assert author_key("Smith, John, Jr.") == AuthorKey("smith", ("john",))
    assert author_key("Łukasz Müller-Ørsted") == AuthorKey("muller orsted", ("lukasz",))
    assert author_key("Straße, Hans") == AuthorKey("strasse", ("hans",))
    assert author_key("Welling") == AuthorKey("welling", ())


@pytest.mark.parametrize("text", ["", "  ", "M.", "J. D.", "1234", "ATLAS Collaboration", "The Brazil Flora Group",
                                  "et al.", "Members of the Special‐purpose Committee:"])
def test_not_a_person_name(text: str) -> None:
    assert author_key(text) is None


@pytest.mark.parametrize(("text", "names"), [
    ("Yann LeCun, M. Welling", ("Yann LeCun", "M. Welling")),
    ("LeCun, Yann", ("LeCun, Yann",)),
    ("Welling, M.", ("Welling, M.",)),
    ("van der Waals, J. D.", ("van der Waals, J. D.",)),
    ("García, José Luis", ("García, José Luis",)),
    ("LeCun, Yann; Welling, Max", ("LeCun, Yann", "Welling, Max")),
    ("Yann LeCun\nMax Welling\r\n\nGeoffrey Hinton", ("Yann LeCun", "Max Welling", "Geoffrey Hinton")),
    ("Yann LeCun, Max Welling\nLeCun, Geoffrey", ("Yann LeCun", "Max Welling", "LeCun, Geoffrey")),
    ("  Yann   LeCun ,, ;; M.\tWelling ;", ("Yann LeCun", "M. Welling")),
    ("Yann LeCun and Max Welling & Hinton, Geoffrey", ("Yann LeCun", "Max Welling", "Hinton, Geoffrey")),
    ("Alexandra Andersson", ("Alexandra Andersson",)),  # "and" inside a word is no separator
    # The same person twice: the first spelling stays. Initials and a full name are two entries.
    ("Yann LeCun; LeCun, Yann; YANN LECUN; Yann Le Cun; Y. LeCun", ("Yann LeCun", "Y. LeCun")),
])
def test_parse_followed_splits_names(text: str, names: tuple[str, ...]) -> None:
    assert parse_followed(text) == names


@pytest.mark.parametrize(("text", "message"), [
    ("", "no authors given"),
    (" ;, \n", "no authors given"),
    ("Welling", 'author "Welling": give a first name or initial too, e.g. "A. Welling"'),
    ("Yann LeCun, Welling", 'author "Welling": give a first name or initial too'),
    ("van der Waals", 'author "van der Waals": give a first name or initial too'),
    ("LeCun, Yann, Welling, Max", 'author "LeCun": give a first name or initial too, e.g. "A. LeCun" '
                                  '(a comma separates names: end a "Last, First" name with ";")'),
    ("Yann LeCun; M.", 'author "M.": only initials; give the surname too'),
    ("J. D.", 'author "J. D.": only initials'),
    ("Yann LeCun, 42", 'author "42": not a name (no letters)'),
    ("ATLAS Collaboration", 'author "ATLAS Collaboration": not a person\'s name'),
    ("A. " + "b" * 100, 'author "A. bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb…": longer than 100 characters'),
    ("; ".join(f"A. Name{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(MAX_FOLLOWED + 1)),
     f"too many authors: {MAX_FOLLOWED + 1} (at most {MAX_FOLLOWED})"),
])
def test_parse_followed_rejects_bad_input_naming_the_culprit(text: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_followed(text)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_fifty_names_are_accepted() -> None:
    text = "; ".join(f"A. Name{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(MAX_FOLLOWED))
    assert len(parse_followed(text)) == MAX_FOLLOWED


def test_followed_authors_find_their_papers_in_a_real_arxiv_day() -> None:
    day = parse_feed(ARXIV_DAY.read_bytes(), source_name="arxiv").papers
    # Ten prolific authors of the day, followed the way a subscriber types them: initials, "Last, First".
    counts: dict[str, int] = defaultdict(int)
    for paper in day:
        for name in paper.authors:
            if _parts(name) is not None:
                counts[name] += 1
    chosen = sorted(counts, key=lambda n: (-counts[n], n))[:10]
    typed = []
    for i, name in enumerate(chosen):
        given, surname = _parts(name) or ([], "")
        typed.append(f"{surname}, {given[0]}" if i % 2 else f"{_initials(given, '.')} {surname}")
    followed = FollowedAuthors(parse_followed("; ".join(typed)))
    surnames = {_key(name).surname for name in typed}
    found = 0
    for paper in day:
        hit = followed.match(paper.authors)
        if any(name in chosen for name in paper.authors):
            assert hit in typed, (paper.arxiv_id, paper.authors)
            found += 1
        elif hit is not None:
            # Someone else of a followed surname whose given names fit (an initial, a middle name): only that.
            assert any((key := author_key(a)) and key.surname in surnames for a in paper.authors)
    assert found == 32  # papers listing one of the ten (Ginzel and Burkard write together)
    assert FollowedAuthors(["Nobody Atall"]).match(day[0].authors) is None


def test_the_first_matching_author_and_followed_name_win() -> None:
    followed = FollowedAuthors(["Max Welling", "M. Welling", "Yann LeCun"])
    assert followed.match(["Y. LeCun", "Max Welling"]) == "Yann LeCun"
    assert followed.match(["Max Welling"]) == "Max Welling"
    assert followed.match(["Mark Welling"]) == "M. Welling"
    assert followed.match([]) is None
    assert FollowedAuthors([]).match(["Max Welling"]) is None
