"""Untrusted text and links made safe to show: one rule each, for the feeds, the email and the web pages.

Text is shown on one line without the characters that hide or reorder what a reader sees (controls,
zero-width characters, bidi overrides, lone surrogates). A link is kept only if it is an absolute
http(s) URL with a host and nothing in it that could break out of an attribute or a header.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

URL_MAX = 2_000
# C0 and C1 controls (but tab and line breaks, which whitespace handling removes), zero-width space,
# bidi embeddings, overrides and isolates, the byte-order mark, lone surrogates.
INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")
_NOT_IN_URL = re.compile(r"\s|[<>\"`]|" + INVISIBLE.pattern)  # one scan, not a check per character
# Plain http(s) URLs with an ASCII host name: every match is one the full check accepts, so it skips
# urlsplit. A digest checks some 130 URLs, most of them signed links of this shape.
_PLAIN_URL = re.compile(r"https?://[a-z0-9.-]+(?::[0-9]*)?(?:[/?#][!#-;=?-_a-~]*)?", re.ASCII | re.IGNORECASE)
# What a feed's link may carry raw and still be repaired by percent-encoding (feed_url).
_URL_SAFE = "/:?#[]@!$&'()*+,;=%~-._"
_NOT_IN_FEED_URL = re.compile(r"[\r\n\t<>\"`]|" + INVISIBLE.pattern)


def one_line(value: str | bytes, limit: int | None = None) -> str:
    """One line: NFC, invisible characters removed, runs of whitespace one space, cut at limit
    (bytes, such as a server's reply, are read as UTF-8)."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    text = " ".join(INVISIBLE.sub("", unicodedata.normalize("NFC", text)).split())
    return text if limit is None else text[:limit]


def bound(text: str, limit: int) -> str:
    """At most limit characters; an ellipsis marks a cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def cut_at_word(text: str, limit: int) -> str:
    """At most limit characters cut between words, then an ellipsis when anything was cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    # A single huge "word" (a formula, a URL) would leave nothing: cut it hard instead.
    cut = cut[:space] if space > limit // 2 else text[:limit]
    return cut.rstrip(" ,;:.-\u2013\u2014([{") + "\u2026"


def clean_text(value: object, limit: int | None = None) -> str:
    """Untrusted text to display text: one line (above), at most limit characters. Not text: ""."""
    if not isinstance(value, str) or not value:
        return ""
    text = one_line(value)
    return text if limit is None else bound(text, limit)


def author_line(authors: Sequence[str], shown: int, limit: int = 400) -> str:
    """The first `shown` names as display text, then "and N more"."""
    line = ", ".join(clean_text(a, 200) for a in authors[:shown])
    if len(authors) > shown:
        line += f" and {len(authors) - shown} more"
    return clean_text(line, limit)


def safe_url(value: str | None) -> str | None:
    """The URL (surrounding whitespace removed) if it is an absolute http(s) URL with a host and no
    whitespace, control, invisible character or any of <>"` in it; else None. Never rewritten."""
    if not value:
        return None
    url = value.strip()
    if len(url) > URL_MAX:
        return None
    if _PLAIN_URL.fullmatch(url):
        return url
    if _NOT_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def feed_url(value: str | None) -> str | None:
    """A feed's link: percent-encoded where feeds leave raw spaces or other characters (PubMed:
    "utm_source=Mobile Safari"), then the safe_url check. Line breaks, controls and <>"` are refused
    before encoding could hide them."""
    if not value:
        return None
    url = value.strip()
    if len(url) > URL_MAX or _NOT_IN_FEED_URL.search(url):
        return None
    return safe_url(quote(url, safe=_URL_SAFE))
