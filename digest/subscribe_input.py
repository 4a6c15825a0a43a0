"""Checking what a user types when subscribing: the address, the keyword list, timezone and hour."""

from __future__ import annotations

import re
import zoneinfo

from digest.addresses import AddressError, normalise_address
from digest.author_names import parse_followed
from digest.errors import InputError
from digest.rank.tokens import tokens

MAX_KEYWORDS = 30
MAX_KEYWORD_CHARS = 100


def normalise_email(address: str) -> str:
    """The address as stored and mailed (digest.addresses); InputError naming it and saying why."""
    try:
        return normalise_address(address)
    except AddressError as exc:
        raise InputError(f"not a valid email address: {address[:300]!r} ({exc})") from None


def parse_keywords(text: str | None, *, option: str = "--keywords", required: bool = True) -> list[str]:
    """'sparse attention, diffusion models' -> ['sparse attention', 'diffusion models']."""
    parts = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"[,;\n]", text or "")]
    out: list[str] = []
    for p in parts:
        if not p or p.lower() in (k.lower() for k in out):
            continue
        if len(p) > MAX_KEYWORD_CHARS:
            raise InputError(f"{option}: keyword longer than {MAX_KEYWORD_CHARS} characters: {p[:40]!r}...")
        if not tokens(p):
            raise InputError(f"{option}: keyword {p!r} has no searchable words")
        out.append(p)
    if required and not out:
        raise InputError(f'{option}: give at least one keyword, e.g. {option} "sparse attention, diffusion models"')
    if len(out) > MAX_KEYWORDS:
        raise InputError(f"{option}: at most {MAX_KEYWORDS} keywords (got {len(out)})")
    return out


def parse_authors(text: str | None, *, option: str = "--authors") -> list[str]:
    """'Yann LeCun, Welling, M.' -> ['Yann LeCun', 'Welling, M.'] (digest.author_names splits and
    checks them); an empty text is no authors, so a reader can stop following all of them."""
    if text is None or not text.strip():
        return []
    try:
        return list(parse_followed(text))
    except ValueError as exc:
        raise InputError(f"{option}: {exc}") from None


def parse_timezone(name: str, *, option: str = "--timezone") -> str:
    """An IANA timezone name such as 'Europe/Berlin'; refused with the name when unknown."""
    cleaned = name.strip()
    try:
        if not cleaned or len(cleaned) > 64:
            raise ValueError(cleaned)
        zoneinfo.ZoneInfo(cleaned)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InputError(f"{option}: unknown timezone {name!r} (an IANA name such as Europe/Berlin)") from None
    return cleaned
