"""Followed authors: one person recognised however a paper's author list writes the name.

A name is reduced to an AuthorKey: the surname and the given names, lower case, accents folded, hyphens
and apostrophes handled, each given name kept whole or as an initial. Two keys are the same person when
the surnames are equal (spaces ignored: "Le Cun" is "LeCun") and the given names are compatible, position by
position: a full name equals a full name, an initial any name with that letter; the shorter list is
compared with the start of the longer ("M. Welling" is "Max A. Welling"; "Max Welling" is not "Mark Welling").
Initials cannot tell people apart: "J. Smith" is both John and Jane Smith.

A hyphenated given name compares part by part ("Jean-Pierre" is "Jean Pierre", "J.-P." and "JP"; "Shu-Sheng"
is "Shusheng"), but a whole name is not the start of it: "Yu Wang" is not "Yu-Xiang Wang" (a different
person, in Chinese names nearly always), while "Y. Wang" may be.

Where the surname starts is not always clear from "First Middle Last", so a key is also read with the
boundary moved: the surname's leading particles as given names ("Dung Van Vu" is "D. V. Vu"), or its last
one or two given names as part of the surname ("C. Ramos Almeida" is "Ramos Almeida, C."); and without a
first initial before a whole name, the name its bearer goes by ("J. Trevor Mendel" is "Trevor Mendel").

Not handled: transliteration variants (Müller / Mueller), surname-first order without a comma ("Li Bin"
for Bin Li, except initials after the surname: "Brandt A." and "Smith JA", the PubMed style), and a bare
surname: it matches nobody, since any initial would match anyone with that surname.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from nameparser import HumanName

from digest.text import one_line

MAX_NAME_CHARS = 100
MAX_FOLLOWED = 50
# Paper authors seen in about three days of arXiv: each is parsed once, then looked up.
_CACHE_SIZE = 32_768

# Titles dropped. nameparser's own title list also holds given names ("Mahdi", "Wing", "Gen") and
# abbreviations ("Ch.", "Yu.", "Md."), which are kept as given names here.
_TITLES = frozenset({"dr", "prof", "professor", "mr", "mrs", "ms", "miss", "mx", "sir", "dame", "rev", "reverend"})
# Words that start a surname: "van der Waals", "de la Cruz", "Van Vu", "Bin Yang".
_PARTICLES = frozenset({
    "van", "von", "der", "den", "de", "del", "della", "dello", "degli", "dei", "di", "da", "das", "dos", "do", "du",
    "la", "le", "les", "lo", "ten", "ter", "te", "het", "t", "vant", "st", "saint", "bin", "ibn", "al", "el", "ben",
})
# Case matters: "JR" after a surname is PubMed's initials ("Navarro-Madrid JR"), "Jr" a suffix.
_SUFFIXES = frozenset({"Jr", "jr", "Sr", "sr", "II", "III", "IV", "PhD", "Ph.D"})
# An author string naming a group, not a person.
_GROUP = re.compile(r"\b(?:collaboration|consortium|committee|group|team|members|project|et al|others)\b", re.I)
# Letters NFKD does not decompose into a base letter and a mark.
_FOLD = str.maketrans({"ø": "o", "đ": "d", "ð": "d", "ł": "l", "æ": "ae", "œ": "oe", "þ": "th", "ı": "i",
                       "ħ": "h", "ŧ": "t", "ŀ": "l", "ĸ": "k", "ŋ": "n", "ß": "ss"})
_DASHES = re.compile(r"[-\u2010-\u2015\u2212]")
_APOSTROPHES = re.compile(r"['`\u00b4\u2018\u2019\u02bb\u02bc]")
_TRAILING_PARENS = re.compile(r"\s*[(\[][^()\[\]]*[)\]]\s*$")
_TRAILING_MARKS = re.compile(r"[\s\d*\u2020\u2021\u00a7\u00b6,;:]+$")  # footnote marks: "Jane Doe1,*"
# parse_followed: pieces, each one name or names separated by commas.
_PIECES = re.compile(r"[;\n\r&]+|\band\b", re.IGNORECASE)
# "A.", "A", "JA", "J.A.": initials, as in "Brandt A." and "Smith JA" (PubMed's surname-first style).
_INITIALS = re.compile(r"(?:[A-Z]\.?){1,3}")


@dataclass(frozen=True)
class AuthorKey:
    """A person's name normalised: surname words separated by spaces ("van der waals", "le cun"), given
    names in order, each a whole name ("max") or one letter for an initial ("m"), a hyphenated one with its
    parts joined by "-" ("jean-pierre", "j-p")."""

    surname: str
    given: tuple[str, ...]


@dataclass(frozen=True)
class _Reading:
    surname: str  # spaces removed
    given: tuple[tuple[str, bool], ...]  # the given names' parts, each with "ends a given name"


def fold(text: str) -> str:
    """Lower case without accents: "Łukasz Müller-Ørsted" -> "lukasz muller-orsted"."""
    text = text.lower().translate(_FOLD)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _strip_extras(name: str) -> str:
    """Without an affiliation in parentheses at the end, footnote marks and stray punctuation."""
    name = one_line(name)
    while True:
        cut = _TRAILING_MARKS.sub("", _TRAILING_PARENS.sub("", name))
        if cut == name:
            return name
        name = cut


def _without_suffixes(words: list[str]) -> list[str]:
    while words and words[-1].strip(".,") in _SUFFIXES:
        words = words[:-1]
    return words


def _split_by_hand(text: str) -> tuple[list[str], list[str]] | None:
    """(surname words, given words) of the forms read here, not by nameparser: "Surname, Given" (it
    takes "Rabin, Md Rafiqul" for a suffix "Md") and PubMed's initials after the surname without a comma,
    "Brandt A.", "Smith JA", "De Miranda G" (it takes "Poskitt CM" for a suffix "CM"). Suffixes dropped."""
    parts = [words for words in (_without_suffixes(part.split()) for part in text.split(",")) if words]
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) != 1 or not any(c.islower() for c in text):
        return None
    words = parts[0]
    n = len(words)
    while n > 0 and _INITIALS.fullmatch(words[n - 1]):
        n -= 1
    if n == len(words) or n == 0:
        return None
    return words[:n], words[n:]


def _given_names(words: Sequence[str], shouting: bool) -> tuple[str, ...]:
    """Each given name whole, or an initial: "Jean-Pierre" -> (jean-pierre), "J.-P." and arXiv's "J. -P."
    -> (j-p), "J.A." -> (j, a), "Yu." -> (y), "JA" -> (j, a) unless the whole name is in capitals."""
    names: list[str] = []
    for word in words:
        parts: list[str] = []
        for piece in _DASHES.split(_APOSTROPHES.sub("", word)):
            if "." in piece:  # "M.", "J.A.", "Ch.": abbreviations, read as initials
                parts.extend(fold(part)[0] for part in piece.split(".") if part)
            elif not shouting and 1 < len(piece) <= 3 and piece.isupper():
                parts.extend(fold(piece))
            elif piece:
                parts.append(fold(piece))
        parts = [part for part in parts if any(c.isalpha() for c in part)]
        if not parts:
            continue
        if _DASHES.match(word) and names:  # "-P." continues "J."
            names[-1] += "-" + "-".join(parts)
        elif _DASHES.search(word):
            names.append("-".join(parts))
        else:
            names.extend(parts)
    return tuple(names)


def _bare(word: str) -> str:
    """A word folded without apostrophes: "van`t" -> "vant"."""
    return fold(_APOSTROPHES.sub("", word))


def _surname(words: Sequence[str]) -> str:
    text = fold(_APOSTROPHES.sub("", " ".join(words)))
    return " ".join(_DASHES.sub(" ", text).replace(".", " ").split())


def _is_initial(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return len(letters) <= 1 or (word.endswith(".") and len(letters) <= 3)


@lru_cache(maxsize=_CACHE_SIZE)
def author_key(name: str) -> AuthorKey | None:
    """The key of one author string ("Yann LeCun", "LeCun, Yann", "Jane Doe (MIT)", "Smith JA"), or None
    when it is not a person's name: no letters, digits, initials only, a group ("ATLAS Collaboration").
    A bare surname gives a key without given names."""
    text = _strip_extras(name)
    if not any(c.isalpha() for c in text) or any(c.isdigit() for c in text) or _GROUP.search(text):
        return None
    if all(_is_initial(word) for word in text.replace(",", " ").split()):
        return None
    by_hand = _split_by_hand(text)
    if by_hand is not None:
        surname_words, given_words = by_hand
    else:
        parsed = HumanName(text)
        given_words = [t for t in parsed.title_list if fold(t).rstrip(".") not in _TITLES]
        given_words += parsed.first_list + parsed.middle_list
        surname_words = list(parsed.last_list)
        if not given_words and len(surname_words) > 1:  # "Zu Xing Yang": "Zu" taken for a particle
            given_words, surname_words = surname_words[:-1], surname_words[-1:]
    # "van der Waals" alone: nameparser reads "van" as a first name. "King Li": "King" as a title.
    while given_words and given_words[-1].islower() and _bare(given_words[-1]) in _PARTICLES:
        surname_words.insert(0, given_words.pop())
    if not surname_words and given_words:
        surname_words = [given_words.pop()]
    surname = _surname(surname_words)
    if sum(c.isalpha() for c in surname) < 2:
        return None
    return AuthorKey(surname, _given_names(given_words, shouting=not any(c.islower() for c in text)))


def _whole(name: str) -> bool:
    return all(len(part) > 1 for part in name.split("-"))


def _parts(given: Sequence[str]) -> tuple[tuple[str, bool], ...]:
    """("jean-pierre", "a") -> ((jean, False), (pierre, True), (a, True))."""
    out: list[tuple[str, bool]] = []
    for name in given:
        parts = name.split("-")
        out.extend((part, k == len(parts) - 1) for k, part in enumerate(parts))
    return tuple(out)


@lru_cache(maxsize=_CACHE_SIZE)
def _readings(key: AuthorKey) -> tuple[_Reading, ...]:
    """The key read with the surname boundary where written, after the leading particles, and one or two
    given names to the left; and without a leading initial before a whole name, the name its bearer goes by
    ("J. Trevor Mendel" is "Trevor Mendel"). A reading without given names is left out (it would match
    anyone)."""
    words = key.surname.split()
    surname = "".join(words)
    out = [(surname, key.given)]
    if len(key.given) > 1 and len(key.given[0]) == 1 and _whole(key.given[1]):
        out.append((surname, key.given[1:]))
    moved = 0
    while moved < len(words) - 1 and words[moved] in _PARTICLES:
        moved += 1
        out.append(("".join(words[moved:]), key.given + tuple(words[:moved])))
    for k in (1, 2):
        cut = len(key.given) - k
        if cut >= 1 and all(_whole(name) for name in key.given[cut:]):
            out.append(("".join(key.given[cut:]).replace("-", "") + surname, key.given[:cut]))
    return tuple(_Reading(s, _parts(given)) for s, given in out if given)


def _compatible(a: tuple[tuple[str, bool], ...], b: tuple[tuple[str, bool], ...]) -> bool:
    """Given names agree over the shorter list, part by part. A whole name may be written split into
    consecutive parts on the other side ("Shusheng" and "Shu Sheng"). The shorter list may end inside the
    other's hyphenated name only on an initial ("J." and "Jean-Pierre", not "Jean" and "Jean-Pierre")."""
    i = j = 0
    while i < len(a) and j < len(b):
        x, y = a[i][0], b[j][0]
        if len(x) == 1 or len(y) == 1:
            if x[0] != y[0]:
                return False
        elif x != y:
            if x.startswith(y):
                j = _joined(x, b, j)
            elif y.startswith(x):
                i = _joined(y, a, i)
            else:
                return False
            if i < 0 or j < 0:
                return False
        i += 1
        j += 1
    if i == len(a) and j < len(b) and not b[j - 1][1]:  # a ended inside one of b's names
        return len(a[i - 1][0]) == 1
    if j == len(b) and i < len(a) and not a[i - 1][1]:
        return len(b[j - 1][0]) == 1
    return True


def _joined(whole: str, parts: tuple[tuple[str, bool], ...], start: int) -> int:
    """The index of the last of parts[start:] whose concatenation is whole, or -1."""
    text = ""
    for k in range(start, len(parts)):
        if len(parts[k][0]) == 1:
            return -1
        text += parts[k][0]
        if text == whole:
            return k
        if not whole.startswith(text):
            return -1
    return -1


def surnames(key: AuthorKey) -> frozenset[str]:
    """Every surname the name may be read with (spaces removed): an index by these finds every name
    same_person could accept."""
    return frozenset(r.surname for r in _readings(key))


def same_person(followed: AuthorKey, written: AuthorKey) -> bool:
    """Whether written may be the person followed names (symmetric). Both need a given name."""
    return any(
        f.surname == w.surname and _compatible(f.given, w.given)
        for f in _readings(followed)
        for w in _readings(written)
    )


def parse_followed(text: str) -> tuple[str, ...]:
    """The subscriber's list of authors to follow, each name cleaned, the same person written twice kept
    once (first spelling). Names are separated by ";", new lines, "&", "and" and commas, except that a
    comma inside a piece that is exactly "Surname, Given names" is part of that one name: a surname
    (particles allowed: "van der Waals") before it, at most two given names and any initials after it
    ("LeCun, Yann", "Welling, M.", "García, José Luis"). "Yann LeCun, M. Welling" is two names.
    ValueError, one line naming the culprit, for an empty list, more than MAX_FOLLOWED names, or a name
    that is too long, has no letters, is only initials, or has no given name or initial (a bare surname
    would follow everyone of that surname)."""
    names: list[tuple[str, bool]] = []  # (name, split off at a comma)
    for piece in _PIECES.split(text):
        parts = [p for p in (" ".join(part.split()) for part in piece.split(",")) if p]
        if len(parts) == 2 and _looks_like_surname(parts[0]) and _looks_like_given(parts[1]):
            names.append((f"{parts[0]}, {parts[1]}", False))
        else:
            names.extend((p, len(parts) > 1) for p in parts)
    return _checked(names)


def _checked(entries: Sequence[tuple[str, bool]]) -> tuple[str, ...]:
    if not entries:
        raise ValueError('no authors given: name at least one, e.g. "Yann LeCun"')
    if len(entries) > MAX_FOLLOWED:
        raise ValueError(f"too many authors: {len(entries)} (at most {MAX_FOLLOWED})")
    kept: list[str] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for written, from_commas in entries:
        name = one_line(written)
        shown = name if len(name) <= 40 else name[:39] + "…"
        if len(name) > MAX_NAME_CHARS:
            raise ValueError(f'author "{shown}": longer than {MAX_NAME_CHARS} characters')
        if not any(c.isalpha() for c in name):
            raise ValueError(f'author "{shown}": not a name (no letters)')
        if all(_is_initial(word) for word in name.replace(",", " ").split()):
            raise ValueError(f'author "{shown}": only initials; give the surname too, e.g. "{shown} Welling"')
        key = author_key(name)
        if key is None:
            raise ValueError(f'author "{shown}": not a person\'s name')
        if not key.given:
            hint = ' (a comma separates names: end a "Last, First" name with ";")' if from_commas else ""
            raise ValueError(f'author "{shown}": give a first name or initial too, e.g. "A. {shown}"{hint}')
        identity = (key.surname.replace(" ", ""), tuple(part for part, _ in _parts(key.given)))
        if identity not in seen:
            seen.add(identity)
            kept.append(name)
    return tuple(kept)


def _looks_like_surname(part: str) -> bool:
    """One word, hyphenated or not, after any particles: "LeCun", "Gomes-da-Silva", "van der Waals"."""
    words = part.split()
    return all(fold(w) in _PARTICLES for w in words[:-1]) and not _is_initial(words[-1])


def _looks_like_given(part: str) -> bool:
    """Given names or initials only: "Yann", "M.", "J. D.", "Jean-Pierre", "José Luis", "Di" (not a
    particle here: a Chinese given name)."""
    return sum(not _is_initial(word) for word in part.split()) <= 2


class FollowedAuthors:
    """A subscriber's followed authors, indexed by surname for matching many papers' author lists."""

    def __init__(self, names: Sequence[str]) -> None:
        self._index: dict[str, list[tuple[int, str, AuthorKey]]] = {}
        for position, name in enumerate(names):
            key = author_key(name)
            if key is None or not key.given:
                continue  # parse_followed rejects these; a stored list from before a rule change skips them
            for surname in surnames(key):
                self._index.setdefault(surname, []).append((position, name, key))

    @property
    def surnames(self) -> frozenset[str]:
        """Every surname a followed name may be read with: the papers worth matching hold one."""
        return frozenset(self._index)

    def match(self, paper_authors: Sequence[str]) -> str | None:
        """The followed name, as the subscriber wrote it, of the first paper author who is a followed
        person (the first followed name if several fit that author), or None."""
        for author in paper_authors:
            written = author_key(author)
            if written is None:
                continue
            best: tuple[int, str] | None = None
            for reading in _readings(written):
                for position, name, key in self._index.get(reading.surname, ()):
                    if (best is None or position < best[0]) and same_person(key, written):
                        best = (position, name)
            if best is not None:
                return best[1]
        return None
