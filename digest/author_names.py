"""Telling whether an author of a paper is a person a reader follows, however either is written.

"Max Welling", "M. Welling", "Welling, Max" and "WELLING, M." are one person; "Andrés R.
Vindas-Meléndez" is "Vindas-Melendez, Andres R."; "Max Welling" is not "Mark Welling". nameparser
splits a name into its parts (given names, surname with its particles, suffixes and titles left
out); here they are folded to plain lowercase letters and compared: surnames equal, and given names
compatible position by position (a full name equals a full name, an initial matches any name it
begins). An initial cannot tell "John" from "Jane": following "J. Smith" follows both, as a reader
who types an initial expects.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from nameparser import HumanName

MAX_NAMES = 50
MAX_NAME_CHARS = 100

# Letters NFKD does not take apart into a base letter and a mark.
_UNFOLDED = str.maketrans({"ß": "ss", "ø": "o", "ł": "l", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "þ": "th",
                           "ı": "i", "ħ": "h"})
_PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "du", "la", "le", "ter",
                        "ten", "af", "zu", "bin", "ibn", "al", "el", "st", "mac"})
_AFFILIATION = re.compile(r"\s*[(\[][^()\[\]]*[)\]]\s*$")  # "Jane Doe (MIT)"


@dataclass(frozen=True)
class AuthorKey:
    surname: str  # folded letters, no spaces or hyphens: "lecun" for "Le Cun", "LeCun" and "LECUN"
    given: tuple[str, ...]  # folded given names in order; one letter for an initial
    # Per given name: joined to the next by a hyphen ("Jian-Peng", "J.-P."): one name in two parts,
    # so "Jian Wang" is not "Jian-Peng Wang", while "Max Welling" is "Max A. Welling".
    joined: tuple[bool, ...] = ()


def fold(text: str) -> str:
    """Lowercase ASCII letters and digits, accents and the marks between letters dropped, spaces kept."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_UNFOLDED))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = re.sub(r"['’`´]", "", plain)  # O'Brien is OBrien
    # Letters and digits of any script; hyphens of every kind, stray marks of a mis-decoded feed
    # ("Ã©"), dots and commas are word breaks.
    return " ".join("".join(ch if ch.isalnum() else " " for ch in plain).split())


def _given(parts: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """Given names and whether each is hyphen-joined to the next: "J.-P." and "Jean-Pierre" are two
    parts of one name, "N.C" and "P.M." two initials."""
    names: list[str] = []
    joined: list[bool] = []
    for m in re.finditer(r"[^\s.\-‐]+|[\-‐]", parts):
        if m.group(0) in "-‐":
            if joined:
                joined[-1] = True
            continue
        word = "".join(fold(m.group(0)).split())  # one name, whatever marks a garbled feed left inside it
        if word:
            names.append(word)
            joined.append(False)
    return tuple(names), tuple(joined)


@lru_cache(maxsize=65536)
def author_key(name: str) -> AuthorKey | None:
    """The comparable parts of a person's name; None for something that names no one."""
    text = _AFFILIATION.sub("", " ".join(name.split()))
    if not text or len(text) > MAX_NAME_CHARS * 2:
        return None
    parsed = HumanName(text)
    last, given_text = parsed.last, f"{parsed.first} {parsed.middle}"
    if not parsed.first and parsed.suffix and text.count(",") == 1:
        # "Dede, Cem", "Rabin, Md Rafiqul", "Neves, V.": given names that look like a suffix (CEM,
        # M.D., the numeral V) are taken for one; surname first, they are the given names.
        last, given_text = text.split(",")
    surname = "".join(fold(last).split())
    if not surname or not any(ch.isalpha() for ch in surname):
        return None
    given, joined = _given(given_text)
    return AuthorKey(surname, given, joined)


def same_person(followed: AuthorKey, written: AuthorKey) -> bool:
    """Whether a name written on a paper can be the followed person's."""
    if followed.surname != written.surname or not followed.given or not written.given:
        return False
    if "".join(followed.given) == "".join(written.given):  # "Zhongjian" and "Zhong-Jian"
        return True
    if not all(a[0] == b[0] if len(a) == 1 or len(b) == 1 else a == b
               for a, b in zip(followed.given, written.given, strict=False)):
        return False
    # The shorter list may stop before the other's middle names, not inside a hyphenated name,
    # unless it ends in an initial ("Z. Liu" for Zhong-Jian Liu).
    short, long_ = sorted((followed, written), key=lambda k: len(k.given))
    n = len(short.given)
    return n == len(long_.given) or len(short.given[-1]) == 1 or not long_.joined[n - 1]


def _bare_surname(part: str) -> bool:
    """One word (with particles: "van der Waals", "Le Cun"), the first half of "Surname, Given"."""
    words = [w for w in fold(re.sub(r"[-‐]", "", part)).split() if w not in _PARTICLES]
    return len(words) == 1 and len(words[0]) > 1


def parse_followed(text: str) -> tuple[str, ...]:
    """The names a reader typed, split and checked; ValueError naming the one that cannot be used.

    Names are separated by semicolons, new lines or commas; a comma after a bare surname belongs to
    the name, written surname first ("LeCun, Yann" is one name, "Yann LeCun, M. Welling" two, and
    "Welling, M., LeCun, Y." two)."""
    names: list[str] = []
    for piece in re.split(r"[;\n]", text):
        parts = [" ".join(p.split()) for p in piece.split(",")]
        parts = [p for p in parts if p]
        i = 0
        while i < len(parts):
            if _bare_surname(parts[i]) and i + 1 < len(parts):
                names.append(f"{parts[i]}, {parts[i + 1]}")
                i += 2
            else:
                names.append(parts[i])
                i += 1
    if not names:
        raise ValueError('give at least one name, e.g. "Yann LeCun, M. Welling"')
    out: list[str] = []
    keys: list[AuthorKey] = []
    for name in names:
        key = _checked(name)
        if key not in keys:  # the same person written twice is followed once
            keys.append(key)
            out.append(name)
    if len(out) > MAX_NAMES:
        raise ValueError(f"at most {MAX_NAMES} authors (got {len(out)})")
    return tuple(out)


def _checked(name: str) -> AuthorKey:
    shown = name if len(name) <= 60 else name[:57] + "..."
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f'author "{shown}": longer than {MAX_NAME_CHARS} characters')
    if not any(ch.isalpha() for ch in name):
        raise ValueError(f'author "{shown}": not a name')
    key = author_key(name)
    if key is None and _bare_surname(name) or key is not None and not key.given:
        raise ValueError(f'author "{shown}": give a first name or initial too, e.g. "M. Welling"')
    if key is None or len(key.surname) < 2:
        raise ValueError(f'author "{shown}": give a surname too, e.g. "M. Welling"')
    return key
