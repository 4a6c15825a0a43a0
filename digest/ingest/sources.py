"""Parse feed bytes into Papers: arXiv RSS (2024 and legacy RDF), arXiv API Atom, HF daily papers JSON, RSS/Atom.

Feeds are untrusted: every text field comes out as bounded plain text and every link as http(s) or None.
The output is plain text, not HTML: whoever renders it as HTML must escape it (Jinja2 autoescape does).
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from xml.sax import SAXException

import feedparser

from digest.domain import Paper
from digest.errors import FeedError
from digest.identity import arxiv_id_and_version, arxiv_id_from_doi, canonical_id, doi_in_text, normalise_doi
from digest.ingest import latex
from digest.ingest.text import feed_text, html_to_text
from digest.text import bound, feed_url, one_line

log = logging.getLogger(__name__)

KINDS = ("auto", "arxiv_rss", "arxiv_api", "hf_daily", "rss")
MAX_ENTRIES = 20_000
TITLE_MAX, ABSTRACT_MAX = 500, 10_000
COMMENT_MAX = 1_000  # "12 pages, 5 figures; code: https://..." is far less
AUTHORS_MAX, AUTHOR_MAX = 100, 200
CATEGORIES_MAX, CATEGORY_MAX = 20, 64


@dataclass(frozen=True)
class ParsedFeed:
    papers: list[Paper]
    kind: str  # the detected (or given) kind
    empty: bool = False  # a valid feed with no items, e.g. an arXiv day without announcements
    skipped: int = 0  # entries dropped as unusable (no title, no id, over the entry cap)
    warning: str | None = None  # feedparser's complaint when it parsed the feed anyway


def parse_feed(data: bytes, *, kind: str = "auto", source_name: str) -> ParsedFeed:
    """Parse one feed; raise FeedError (message starting with source_name) when nothing usable is in it."""
    if kind not in KINDS:
        raise FeedError(f"{source_name}: unknown feed kind {kind!r} (use one of {', '.join(KINDS)})")
    first = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if not first:
        raise FeedError(f"{source_name}: empty response, not a feed")
    if kind == "hf_daily" or (kind == "auto" and first in (b"[", b"{")):
        return _parse_hf(data, source_name)
    # A file-like object, never bytes: feedparser opens a bytes argument as a local path when one exists.
    parsed = feedparser.parse(io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False)
    feed: Mapping[str, Any] = parsed.get("feed", {})
    entries: list[Mapping[str, Any]] = list(parsed.get("entries", []))
    title = feed_text(feed.get("title"), TITLE_MAX)
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    warning = one_line(f"{type(problem).__name__}: {problem}", 300) if problem is not None else None
    # Zero items after broken XML is a truncated or wrong document, never an empty announcement day.
    broken = isinstance(problem, SAXException) or (warning is not None and not title)
    if not entries and (not parsed.get("version") or broken):
        raise FeedError(f"{source_name}: not a feed ({warning or 'no RSS, Atom or RDF structure'})")
    if title.startswith("Feed error for query"):
        detail = feed_text(feed.get("description") or feed.get("subtitle"), 300)
        raise FeedError(f"{source_name}: arXiv reports an error: {title}" + (f": {detail}" if detail else ""))
    if warning:
        log.warning("%s: feed is not well-formed, parsed anyway: %s", source_name, warning)
    if kind == "auto":
        kind = _detect(parsed, feed, entries)
    if not entries:
        return ParsedFeed([], kind, empty=True, warning=warning)
    skipped = _over_cap(len(entries), source_name)
    if isinstance(problem, SAXException) and _CUT_OFF.search(str(problem)):
        entries, skipped = entries[:-1], skipped + 1  # the document ends early: its last entry is cut off
    fallback_date = _when(feed) if kind == "arxiv_rss" else None
    papers: list[Paper] = []
    for entry in entries[:MAX_ENTRIES]:
        paper = _entry_paper(entry, kind, source_name, fallback_date)
        if paper is None:
            skipped += 1
        else:
            papers.append(paper)
    if not papers and problem is not None:
        # Nothing usable out of a document that could not be parsed: that source failed, it is not a quiet day.
        raise FeedError(f"{source_name}: malformed feed, no usable entry ({warning})")
    return ParsedFeed(papers, kind, skipped=skipped, warning=warning)


# --- kinds ---------------------------------------------------------------------------------------

_OPENSEARCH_NS = "http://a9.com/-/spec/opensearch/1.1/"
_ARXIV_NS = "http://arxiv.org/schemas/atom"
_ARXIV_URL = re.compile(r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/", re.IGNORECASE)
# Legacy RDF titles: "Title. (arXiv:1805.08213v1 [hep-ex] CROSS LISTED)"
_LEGACY_TITLE = re.compile(
    r"^(?P<title>.*?)\.?\s*\(arXiv:(?P<id>[^\s()\[\]]+)\s*(?:\[(?P<cat>[^\]]*)\])?\s*(?P<flag>[A-Z][A-Z ]*)?\)\s*$",
    re.DOTALL,
)
_CUT_OFF = re.compile(r"no element found|unclosed token")  # expat's words for a premature end
_ANNOUNCE_IN_TEXT = re.compile(r"Announce Type:\s*([a-z-]{1,20})")


def _detect(parsed: Mapping[str, Any], feed: Mapping[str, Any], entries: list[Mapping[str, Any]]) -> str:
    namespaces = set(dict(parsed.get("namespaces", {})).values())
    feed_id = _s(feed.get("id"))
    if "arxiv.org/api" in feed_id or {_OPENSEARCH_NS, _ARXIV_NS} <= namespaces:
        return "arxiv_api"
    host = (urlsplit(_s(feed.get("link"))).hostname or "").lower()
    if host == "arxiv.org" or host.endswith(".arxiv.org") or any("arxiv_announce_type" in e for e in entries[:50]):
        return "arxiv_rss"
    return "rss"


def _entry_paper(entry: Mapping[str, Any], kind: str, source: str, fallback_date: datetime | None) -> Paper | None:
    raw_title = _s(entry.get("title"))
    link, guid = _s(entry.get("link")), _s(entry.get("id"))
    categories = [_s(t.get("term")) for t in entry.get("tags") or [] if isinstance(t, Mapping)]
    names = [_s(a.get("name")) for a in entry.get("authors") or [] if isinstance(a, Mapping)]
    abstract = _abstract_text(entry)
    found: tuple[str, int | None] | None = None
    announce: str | None = None
    doi: str | None = None
    authors: list[str]
    comment: str | None = None
    if kind == "arxiv_rss":
        legacy = _LEGACY_TITLE.match(feed_text(raw_title, TITLE_MAX * 2))
        legacy_id = None
        if legacy:
            raw_title = legacy.group("title")
            legacy_id = arxiv_id_and_version(legacy.group("id"))
            categories = categories or [legacy.group("cat") or ""]
            flag = legacy.group("flag") or ""
            announce = ("replace-" if "UPDATED" in flag else "") + ("cross" if "CROSS" in flag else "")
            announce = announce.rstrip("-") or "new"
        # The 2024 guid carries the version; legacy items only have it in the title.
        ids = [i for i in (arxiv_id_and_version(guid), legacy_id, arxiv_id_and_version(link)) if i]
        found = next((i for i in ids if i[1] is not None), ids[0] if ids else None)
        type_in_text = _ANNOUNCE_IN_TEXT.search(_s(entry.get("summary"))[:300])
        announce = _s(entry.get("arxiv_announce_type")).strip().lower() or announce
        announce = announce or (type_in_text.group(1) if type_in_text else None)
        authors = _split_names(names, arxiv=True)
    elif kind == "arxiv_api":
        found = arxiv_id_and_version(guid) if _ARXIV_URL.match(guid) else None
        announce = "new" if found else None
        doi = normalise_doi(_s(entry.get("arxiv_doi")))
        primary = entry.get("arxiv_primary_category")
        if isinstance(primary, Mapping):
            categories.insert(0, _s(primary.get("term")))
        authors = _split_names(names, arxiv=False)
        comment = feed_text(_s(entry.get("arxiv_comment")), COMMENT_MAX) or None
    else:
        doi = _entry_doi(entry, link, guid)
        arxiv_url = next((u for u in (link, guid) if _ARXIV_URL.match(u)), "")
        found = arxiv_id_and_version(arxiv_url) if arxiv_url else None
        doi_arxiv = arxiv_id_from_doi(doi)  # arXiv's own DOIs, 10.48550/arXiv.<id>
        if not found and doi_arxiv:
            found = (doi_arxiv, None)
        authors = _split_names(names, arxiv=False) or _authors_in_text(_s(entry.get("summary")))
    title = feed_text(raw_title, TITLE_MAX)
    if not title:
        return None
    return _paper(
        source=source,
        title=title,
        abstract=abstract,
        authors=authors,
        found=found,
        doi=doi,
        url=link,
        pdf_url=_pdf_link(entry),
        categories=categories,
        published=_when(entry) or fallback_date,
        announce=announce,
        comment=comment,
    )


def _paper(
    *,
    source: str,
    title: str,
    abstract: str,
    authors: Iterable[str],
    found: tuple[str, int | None] | None,
    doi: str | None,
    url: str | None,
    pdf_url: str | None,
    categories: Iterable[str],
    published: datetime | None,
    announce: str | None,
    upvotes: int | None = None,
    comment: str | None = None,
) -> Paper:
    arxiv_id, version = found if found else (None, None)
    if arxiv_id:
        # One URL form per arXiv paper, without a version: the abstract page always shows the latest.
        url, pdf_url = f"https://arxiv.org/abs/{arxiv_id}", f"https://arxiv.org/pdf/{arxiv_id}"
    clean_authors = [a for a in (feed_text(a, AUTHOR_MAX) for a in authors) if a]
    clean_categories = list(dict.fromkeys(c for c in (feed_text(c, CATEGORY_MAX) for c in categories) if c))
    if announce is not None and not re.fullmatch(r"[a-z-]{1,20}", announce):
        announce = None
    paper = Paper(
        canonical_id=canonical_id(arxiv_id, doi, title),
        title=title,
        abstract=abstract,
        authors=tuple(clean_authors[:AUTHORS_MAX]),
        url=feed_url(url),
        pdf_url=feed_url(pdf_url),
        arxiv_id=arxiv_id,
        version=version,
        doi=doi,
        categories=tuple(clean_categories[:CATEGORIES_MAX]),
        published=published,
        announce_type=announce,
        upvotes=upvotes,
        source=source,
        comment=comment,
    )
    # arXiv's titles, abstracts and names are the authors' LaTeX source: shown and ranked as text.
    return latex.readable_paper(paper) if arxiv_id else paper


def _parse_hf(data: bytes, source: str) -> ParsedFeed:
    """Hugging Face daily papers: a JSON list of {"paper": {"id", "title", "summary", "authors", ...}, ...}."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise FeedError(f"{source}: not valid JSON ({one_line(str(exc), 120)})") from None
    items = doc if isinstance(doc, list) else None
    if items is None or (items and not any(isinstance(i, dict) and isinstance(i.get("paper"), dict) for i in items)):
        raise FeedError(f'{source}: JSON is not a Hugging Face daily papers list of {{"paper": {{...}}}} items')
    if not doc:
        return ParsedFeed([], "hf_daily", empty=True)
    skipped = _over_cap(len(doc), source)
    papers: list[Paper] = []
    for item in doc[:MAX_ENTRIES]:
        paper = item.get("paper") if isinstance(item, dict) else None
        if not isinstance(paper, dict):
            skipped += 1
            continue
        # Daily papers are arXiv papers; an entry without an arXiv id has nowhere to link to.
        found = arxiv_id_and_version(_s(paper.get("id")))
        title = feed_text(paper.get("title") or item.get("title"), TITLE_MAX)
        if not found or not title:
            skipped += 1
            continue
        upvotes = paper.get("upvotes", item.get("upvotes"))
        listed = paper.get("authors")
        authors: list[Any] = listed if isinstance(listed, list) else []
        papers.append(
            _paper(
                source=source,
                title=title,
                abstract=feed_text(paper.get("summary"), ABSTRACT_MAX),
                authors=[_s(a.get("name")) for a in authors[: AUTHORS_MAX * 2] if isinstance(a, dict)],
                found=found,
                doi=None,
                url=None,
                pdf_url=None,
                categories=(),
                published=_iso(paper.get("publishedAt") or item.get("publishedAt")),
                announce=None,
                upvotes=upvotes if type(upvotes) is int and upvotes >= 0 else None,  # bool is not a count
            )
        )
    return ParsedFeed(papers, "hf_daily", skipped=skipped)


# --- fields --------------------------------------------------------------------------------------

_ABSTRACT_MARK = re.compile(r"(?:^|\s)(?:Abstract|ABSTRACT|Summary|SUMMARY)(?:\s*:|[ \t]*\n)")
_AUTHORS_IN_TEXT = re.compile(r"Author\(s\):\s*([^\n]+)")


def _abstract_text(entry: Mapping[str, Any]) -> str:
    """The longest text among content:encoded / content and summary, from its "Abstract" heading on."""
    candidates = [_s(c.get("value")) for c in entry.get("content") or [] if isinstance(c, Mapping)]
    candidates.append(_s(entry.get("summary")))
    best = ""
    for raw in candidates:
        text = html_to_text(raw[: ABSTRACT_MAX * 8])
        mark = _ABSTRACT_MARK.search(text[:800])
        if mark:
            text = text[mark.end() :]
        text = one_line(text)
        if len(text) > len(best):
            best = text
    return bound(best, ABSTRACT_MAX)


def _entry_doi(entry: Mapping[str, Any], link: str, guid: str) -> str | None:
    for value in (entry.get("prism_doi"), entry.get("dc_identifier"), guid):
        doi = normalise_doi(_s(value))
        if doi:
            return doi
    for href in [_s(x.get("href")) for x in entry.get("links") or [] if isinstance(x, Mapping)] + [link, guid]:
        host = (urlsplit(href).hostname or "").lower() if href.startswith("http") else ""
        if host.endswith("doi.org") or "/doi/" in href:
            doi = doi_in_text(href)
            if doi:
                return doi
    return None


def _pdf_link(entry: Mapping[str, Any]) -> str | None:
    for x in entry.get("links") or []:
        if isinstance(x, Mapping) and (x.get("type") == "application/pdf" or x.get("title") == "pdf"):
            return _s(x.get("href")) or None
    return None


def _split_names(raw_names: list[str], *, arxiv: bool) -> list[str]:
    """Author names. arXiv's dc:creator is one comma-separated string, with affiliations in parentheses."""
    out: list[str] = []
    for raw in raw_names[: AUTHORS_MAX * 2]:
        text = html_to_text(raw[:50_000])
        if arxiv or _looks_like_list(text):
            out.extend(_split_top_level(text, drop_parens=arxiv))
        else:
            out.append(text)
        if len(out) >= AUTHORS_MAX:
            break
    return [n for n in (one_line(x) for x in out) if n and n.casefold() not in {"et al.", "et al"}][:AUTHORS_MAX]


def _looks_like_list(text: str) -> bool:
    # "Brandão S, Saeedi H, Brandt A." is a list; "Smith, John" is one inverted name.
    if ";" in text or "\n" in text.strip():
        return True
    parts = [p.strip() for p in text.split(",")]
    return len(parts) > 2 or (len(parts) == 2 and all(" " in p for p in parts))


def _split_top_level(text: str, *, drop_parens: bool) -> list[str]:
    """Split on , ; and newlines outside parentheses; optionally drop parenthesised affiliations."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if drop_parens:
                continue
        elif depth == 0 and ch in ",;\n":
            parts.append("".join(current))
            current = []
            continue
        if not (drop_parens and depth):
            current.append(ch)
    parts.append("".join(current))
    return parts


def _authors_in_text(summary: str) -> list[str]:
    # ScienceDirect puts the authors in the description: "<p>Author(s): A. Smith, B. Jones</p>".
    m = _AUTHORS_IN_TEXT.search(html_to_text(summary[:20_000]))
    return _split_top_level(m.group(1), drop_parens=False) if m else []


def _when(node: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        t = node.get(key)
        if t:
            try:
                return datetime(*t[:6]).replace(tzinfo=UTC)  # feedparser's struct_time is UTC
            except (TypeError, ValueError):
                continue
    return None


def _iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _over_cap(count: int, source: str) -> int:
    if count <= MAX_ENTRIES:
        return 0
    log.warning("%s: %d entries, only the first %d are read", source, count, MAX_ENTRIES)
    return count - MAX_ENTRIES


def _s(value: object) -> str:
    return value if isinstance(value, str) else ""


