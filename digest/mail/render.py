"""Render one subscriber's digest (DigestContent) into a subject, a plain-text body and an HTML body.

Templates: ``email/digest.txt.j2`` and ``email/digest.html.j2``, looked up first in the operator's
``digest.templates_dir`` (if set) and then in the bundled ``templates/`` directory. The context the
templates receive is documented on :meth:`DigestRenderer.context`.

Paper text comes from feeds and is untrusted: the HTML template is autoescaped and nothing here
marks paper text safe; links are kept only when they are http(s).
"""

from __future__ import annotations

import functools
import logging
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import jinja2

import digest
from digest.code_links import paper_links
from digest.domain import DigestContent, Pick, PickLinks
from digest.errors import ConfigError
from digest.gist import gist
from digest.text import clean_text, cut_at_word, safe_url

log = logging.getLogger(__name__)

HTML_TEMPLATE = "email/digest.html.j2"
TEXT_TEMPLATE = "email/digest.txt.j2"
MAX_AUTHORS = 5
TEXT_WIDTH = 78

# Fixed English names: strftime's %a/%b follow the process locale, the email must not.
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Texts of one paper are cleaned, shortened and wrapped once for all the subscribers it goes to.
# Sized for a day of a few thousand papers; a paper's title is wrapped once per list number.
_PAPER_CACHE = 4096
_WRAP_CACHE = 16384


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class PickView:
    """One pick as the templates show it: cleaned, shortened, links checked."""

    number: int
    title: str
    authors: str
    abstract: str
    open_url: str | None
    pdf_url: str | None
    reason: str
    pick: Pick  # the raw pick, for operator templates that want more
    star_url: str | None = None  # signed feedback links (digest.signing.links), http(s) only
    dislike_url: str | None = None
    gist: str = ""  # the sentence saying what the paper does (digest.gist); "" where the abstract opens with it
    code_url: str | None = None  # found in the abstract or comment (digest.code_links)
    data_url: str | None = None


def bundled_templates_dir() -> Path:
    """templates/ inside the package (wheel installs) or next to it (source checkout)."""
    here = Path(digest.__file__).resolve().parent
    inside = here / "templates"
    return inside if inside.is_dir() else here.parent / "templates"


def shorten_abstract(text: str, limit: int) -> str:
    """At most ``limit`` characters cut at a word boundary, then an ellipsis when anything was cut."""
    return cut_at_word(clean_text(text), limit)


def format_authors(authors: Iterable[str], limit: int = MAX_AUTHORS) -> str:
    names = [n for n in (clean_text(a) for a in authors) if n]
    if len(names) > limit:
        return ", ".join(names[:limit]) + " et al."
    return ", ".join(names)


def long_date(d: date) -> str:
    return f"{_WEEKDAYS[d.weekday()]}, {d.day} {_MONTHS[d.month - 1]} {d.year}"


def short_date(d: date) -> str:
    return f"{d.day} {_MONTHS[d.month - 1][:3]} {d.year}"


def make_subject(content: DigestContent) -> str:
    n = len(content.picks)
    what = "nothing new today" if content.quiet or n == 0 else f"{n} pick" if n == 1 else f"{n} picks"
    return f"Your paper digest for {short_date(content.digest_date)}: {what}"


def _wrap(value: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    """Fill to ``width``; ``first`` replaces the indent on the first line (a "1.  " number)."""
    if type(value) is str and type(width) is int and type(indent) is str and type(first) in (str, type(None)):
        return _wrap_str(value, width, indent, first)
    return _fill(value, width, indent, first)  # whatever an operator template passes, uncached


@functools.lru_cache(maxsize=_WRAP_CACHE)
def _wrap_str(value: str, width: int, indent: str, first: str | None) -> str:
    # The same titles and abstracts go to many subscribers: wrapped once each.
    return _fill(value, width, indent, first)


def _fill(value: str, width: int, indent: str, first: str | None) -> str:
    # Never split a word: a URL or a long identifier stays whole on its line.
    return textwrap.fill(value, width=width, initial_indent=indent if first is None else first,
                         subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


@functools.lru_cache(maxsize=_PAPER_CACHE)
def _paper_texts(title: str, authors: tuple[str, ...], abstract: str, abstract_chars: int) -> tuple[str, str, str]:
    """A paper's title, author line and shortened abstract as shown, computed once per paper."""
    return clean_text(title) or "(untitled)", format_authors(authors), shorten_abstract(abstract, abstract_chars)


def _gist_shown(abstract: str, shown: str) -> str:
    """The gist, unless the abstract as shown opens with it (saying it twice tells nothing)."""
    line = clean_text(gist(abstract))
    opening = shown.removesuffix("\u2026")
    return "" if not line or opening.startswith(line[:80]) or line.startswith(opening) else line


class DigestRenderer:
    """Builds the Jinja2 environment once; render() is then cheap and thread-safe."""

    def __init__(self, *, templates_dir: str | None = None, abstract_chars: int = 420) -> None:
        search: list[Path] = []
        if templates_dir:
            operator = Path(templates_dir).expanduser()
            if not operator.is_dir():
                raise ConfigError(f"config error: digest.templates_dir: not a directory: {operator}")
            search.append(operator)
        search.append(bundled_templates_dir())
        self.abstract_chars = abstract_chars
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(p) for p in search]),
            # .html.j2 escaped; .txt.j2 is plain text and must not get &amp; entities.
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "html.j2"),
                                                default_for_string=False, default=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["wrap"] = _wrap
        self.env.filters["safe_url"] = safe_url
        self.env.filters["clean"] = clean_text
        try:
            self._html = self.env.get_template(HTML_TEMPLATE)
            self._text = self.env.get_template(TEXT_TEMPLATE)
        except jinja2.TemplateError as exc:
            raise ConfigError(f"config error: email template: {_describe(exc)}") from None

    def pick_views(self, content: DigestContent) -> list[PickView]:
        return self._views(content.picks, content.links)

    def trending_views(self, content: DigestContent) -> list[PickView]:
        return self._views(content.trending, content.trending_links)

    def _views(self, chosen: tuple[Pick, ...], all_links: tuple[PickLinks, ...]) -> list[PickView]:
        views = []
        for i, pick in enumerate(chosen):
            paper = pick.paper
            # links is parallel to picks; fall back to the paper's own URLs if it is short.
            links = all_links[i] if i < len(all_links) else PickLinks(paper.url, paper.pdf_url)
            reason = clean_text(pick.reason)
            if not reason and pick.matched:
                reason = "Matches: " + ", ".join(clean_text(m) for m in pick.matched)
            title, authors, abstract = _paper_texts(paper.title, tuple(paper.authors), paper.abstract,
                                                    self.abstract_chars)
            found = paper_links(paper.abstract, paper.comment or "")
            views.append(PickView(
                number=i + 1,
                title=title,
                authors=authors,
                abstract=abstract,
                open_url=safe_url(links.open_url),
                pdf_url=safe_url(links.pdf_url),
                reason=reason,
                pick=pick,
                star_url=safe_url(links.star_url),
                dislike_url=safe_url(links.dislike_url),
                gist=_gist_shown(paper.abstract, abstract),
                code_url=found.code,
                data_url=found.data,
            ))
        return views

    def context(self, content: DigestContent) -> dict[str, Any]:
        """What the templates see.

        subject, date_long ("Friday, 29 November 2026"), digest_date (a date), picks (PickView list),
        count, candidates, quiet, keywords (cleaned tuple), unsubscribe_url (http(s) or None),
        preheader (inbox preview line), to_addr, extras (DigestContent.extras, untouched),
        trending (PickView list: most upvoted new papers not picked; reason holds the upvotes),
        manage_url (the signed manage page) and view_url (this digest in a browser), http(s) or None.
        Filters: wrap(width=78, indent="", first=None), safe_url, clean.
        """
        picks = self.pick_views(content)
        quiet = content.quiet or not picks
        keywords = tuple(k for k in (clean_text(k) for k in content.keywords) if k)
        preheader = "No new papers matched your interests today." if quiet else f"Today's top pick: {picks[0].title}"
        return {
            "subject": make_subject(content),
            "date_long": long_date(content.digest_date),
            "digest_date": content.digest_date,
            "picks": [] if quiet else picks,
            "count": 0 if quiet else len(picks),
            "candidates": content.candidates,
            "quiet": quiet,
            "keywords": keywords,
            "unsubscribe_url": safe_url(content.unsubscribe_url),
            "preheader": preheader,
            "to_addr": clean_text(content.to_addr),
            "extras": content.extras,
            "trending": [] if quiet else self.trending_views(content),
            "manage_url": safe_url(content.manage_url),
            "view_url": safe_url(content.view_url),
        }

    def render(self, content: DigestContent) -> RenderedDigest:
        ctx = self.context(content)
        try:
            text = self._text.render(ctx)
            html = self._html.render(ctx)
        except jinja2.TemplateError as exc:
            raise ConfigError(f"config error: email template: {_describe(exc)}") from None
        return RenderedDigest(subject=ctx["subject"], text=text, html=html)


def _describe(exc: jinja2.TemplateError) -> str:
    where = ""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = f"{exc.name or exc.filename or '?'} line {exc.lineno}: "
    return f"{where}{exc.message or type(exc).__name__}"
