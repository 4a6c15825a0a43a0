"""Untrusted feed text to bounded plain text, and untrusted links to http(s) URLs or None."""

from __future__ import annotations

import html
import re
from urllib.parse import quote, urlsplit

import nh3

URL_MAX = 2_000
_URL_SAFE = "/:?#[]@!$&'()*+,;=%~-._"

_HTML_TAGS = (
    "a|abbr|address|article|aside|audio|b|base|bdi|bdo|big|blockquote|body|br|button|canvas|caption|"
    "center|cite|code|col|colgroup|dd|del|details|dfn|dialog|div|dl|dt|em|embed|fieldset|figcaption|"
    "figure|font|footer|form|frame|frameset|h1|h2|h3|h4|h5|h6|head|header|hr|html|i|iframe|img|input|ins|"
    "kbd|label|legend|li|link|main|mark|math|meta|mi|mn|mo|mrow|msub|msup|nav|noscript|object|ol|optgroup|"
    "option|p|param|picture|pre|q|s|samp|script|section|select|small|source|span|strike|strong|style|sub|"
    "summary|sup|svg|table|tbody|td|template|textarea|tfoot|th|thead|time|title|tr|track|tt|u|ul|var|"
    "video|wbr"
)
# A "<" that does not open a known HTML tag is text: arXiv abstracts are full of "$x<y$", which an HTML
# parser would read as a <y ...> tag and swallow.
_NOT_A_TAG = re.compile(r"<(?!!|/?(?:" + _HTML_TAGS + r")[\s/>])", re.IGNORECASE)
_BLOCK_TAG = re.compile(r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|table|blockquote|section|article|pre|hr)\b[^>]*>", re.I)
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")


def html_to_text(raw: str) -> str:
    """HTML (or text that may hold HTML) to plain text; block elements become line breaks."""
    if "<" not in raw and "&" not in raw:
        return raw
    marked = _BLOCK_TAG.sub(lambda m: "\n" + m.group(0), _NOT_A_TAG.sub("&lt;", raw))
    # tags=set(): keep no element at all; script/style lose their content too (nh3's default).
    return html.unescape(nh3.clean(marked, tags=set()))


def collapse(text: str) -> str:
    return " ".join(_INVISIBLE.sub("", text).split())


def bound(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clean_text(value: object, limit: int) -> str:
    """Untrusted text or HTML to one line of plain text of at most limit characters."""
    if not isinstance(value, str) or not value:
        return ""
    return bound(collapse(html_to_text(value[: limit * 8 + 1_000])), limit)


def safe_url(value: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL with a host and nothing odd in it, else None."""
    if not value:
        return None
    url = value.strip()
    if len(url) > URL_MAX or _INVISIBLE.search(url) or any(c in url for c in '\r\n\t<>"`'):
        return None
    url = quote(url, safe=_URL_SAFE)  # PubMed links carry raw spaces ("utm_source=Mobile Safari")
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in {"http", "https"} and parts.hostname else None
