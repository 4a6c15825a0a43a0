"""The Atom 1.0 document of a reader's private feed, written by feedgen.

Everything handed in is display text already (cleaned by digest.text) and http(s) links checked by
safe_url; the XML writer escapes it. What XML 1.0 cannot carry at all (U+FFFE, U+FFFF, the controls
clean_text leaves) is dropped here, so a hostile title can never make the document fail to build.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

from feedgen.feed import FeedGenerator

ATOM_TYPE = "application/atom+xml; charset=utf-8"
# Authors named in an entry's <author> elements; the entry's text names them all in one line.
MAX_ENTRY_AUTHORS = 20
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class FeedEntry:
    id: str
    title: str
    authors: tuple[str, ...]
    link: str | None  # the paper (the signed, tracked open link, as in the email)
    updated: datetime
    content_html: str  # autoescaped HTML from the web templates


@dataclass(frozen=True)
class FeedHead:
    id: str
    title: str
    subtitle: str
    self_url: str
    updated: datetime


def xml_text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _aware(moment: datetime) -> datetime:
    """The store keeps naive UTC; Atom wants the offset."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def tag_authority(base_url: str) -> str:
    """The host name for tag: ids (RFC 4151), from the configured base URL."""
    return urlsplit(base_url).hostname or "localhost"


def feed_id(base_url: str, subscriber_id: int, since: date) -> str:
    """Stable for the reader whatever their feed's address: a new address is the same feed."""
    return f"tag:{tag_authority(base_url)},{since.isoformat()}:feed/{subscriber_id}"


def entry_id(base_url: str, subscriber_id: int, digest_date: date, paper_id: int) -> str:
    """One paper in one digest: stable across polls, so a reader never shows it twice."""
    return f"tag:{tag_authority(base_url)},{digest_date.isoformat()}:digest/{subscriber_id}/{paper_id}"


def atom_document(head: FeedHead, entries: Sequence[FeedEntry]) -> bytes:
    """The feed as UTF-8 XML; entries in the order given (newest first)."""
    fg = FeedGenerator()
    fg.id(xml_text(head.id))
    fg.title(xml_text(head.title))
    fg.subtitle(xml_text(head.subtitle))
    fg.updated(_aware(head.updated))
    fg.author({"name": "Paper digest"})  # Atom wants an author for the feed or every entry
    fg.link(href=head.self_url, rel="self", type="application/atom+xml")
    fg.language("en")
    for item in entries:
        fe = fg.add_entry(order="append")
        fe.id(xml_text(item.id))
        fe.title(xml_text(item.title) or "(untitled)")
        fe.updated(_aware(item.updated))
        fe.published(_aware(item.updated))
        for name in item.authors[:MAX_ENTRY_AUTHORS]:
            if xml_text(name):
                fe.author({"name": xml_text(name)})
        # One link only: feedgen 1.0 writes an entry's links without their rel and type, so a second
        # one (the PDF) would be a second rel="alternate", which Atom forbids. The PDF is in the content.
        if item.link:
            fe.link(href=item.link, rel="alternate")
        fe.content(xml_text(item.content_html), type="html")
    data: bytes = fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    return data
