"""The rating page (/rate): a dozen recent papers chosen for the reader's keywords
(digest.pipeline.rating), each with "Want these" / "Not for me" / "Skip". What is chosen is recorded
as the email's links record it (stars and "less like this", origin web:rate), so the first digests
learn from it. Offered after a sign-up is confirmed and from the manage page; a reader may skip it.
For a reader with a session only (digest.web.session).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.domain import Paper
from digest.store import events as event_store
from digest.store.papers import papers_by_ids
from digest.store.subscribers import get_subscriber_by_id
from digest.text import author_line, clean_text, safe_url
from digest.web import session
from digest.web.forms import Form
from digest.web.pages import PageError, Site
from digest.web.paper import paper_path
from digest.web.signup import Endpoint

CHOICES = {"want": "star", "not": "dislike"}  # "skip" records nothing
MAX_RATED = 30  # fields a rating form may carry: the page shows 12
ABSTRACT_CHARS = 600
_FIELD = re.compile(r"^rate-([1-9]\d{0,17})$")


@dataclass(frozen=True)
class ToRate:
    id: int
    title: str
    page: str
    url: str | None
    authors: str
    abstract: str


def to_rate(p: Paper) -> ToRate:
    return ToRate(p.id or 0, clean_text(p.title, 500), paper_path(p), safe_url(p.url), author_line(p.authors, 6),
                  clean_text(p.abstract, ABSTRACT_CHARS))


def ratings(form: Form) -> dict[int, str]:
    """paper id -> "star" or "dislike", from the form's rate-<id> fields; PageError 400 when it is not
    a rating form."""
    out: dict[int, str] = {}
    fields = [(k, v) for k, v in form.items() if k.startswith("rate-")]
    if not fields or len(fields) > MAX_RATED:
        raise PageError(400, "Not a rating", "Use the rating page's buttons.")
    for key, values in fields:
        m = _FIELD.match(key)
        choice = values[-1] if values else ""
        if m is None or choice not in (*CHOICES, "skip"):
            raise PageError(400, "Not a rating", "Use the rating page's buttons.")
        if choice in CHOICES:
            out[int(m.group(1))] = CHOICES[choice]
    return out


class RatePages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def endpoints(self) -> list[Endpoint]:
        return [("/rate", self.rate, ["GET", "POST"])]

    async def rate(self, request: Request) -> Response:
        reader = await run_in_threadpool(self._reader, request)
        if request.method == "POST":
            form = await self.site.read_form(request)
            chosen = ratings(form)
            counts = await run_in_threadpool(self._record, reader, chosen)
            return await run_in_threadpool(self._done, request, reader, counts)
        return await run_in_threadpool(self._page, request, reader)

    def _reader(self, request: Request) -> int:
        return session.required(request, self.site, "Rating opens from your digest",
                                "Open the link of your confirmation or of your latest digest's manage page.")

    def _page(self, request: Request, reader: int) -> Response:
        from digest.pipeline.rating import papers_to_rate  # numpy and the ranker: only on this page

        with self.site.engine.connect() as conn:
            sub = get_subscriber_by_id(conn, reader)
        if sub is None:
            raise PageError(404, "Subscription not found", "This subscription no longer exists.")
        papers = papers_to_rate(self.site.engine, sub, self.site.now())
        return self.site.form_page(request, "rate.html.j2", state="ask", papers=[to_rate(p) for p in papers],
                                   keywords=sub.keywords, back=self.site.paths.manage_url(reader))

    def _record(self, reader: int, chosen: dict[int, str]) -> dict[str, int]:
        now = self.site.db_now()
        counts = {"star": 0, "dislike": 0}
        with self.site.engine.begin() as conn:
            known = papers_by_ids(conn, list(chosen))
            for pid, kind in chosen.items():
                if pid in known:  # an id the form was not given names no paper: passed over
                    event_store.set_opinion(conn, subscriber_id=reader, paper_id=pid, kind=kind, origin="web:rate",
                                            now=now)
                    counts[kind] += 1
        return counts

    def _done(self, request: Request, reader: int, counts: dict[str, int]) -> Response:
        return self.site.page("rate.html.j2", state="done", wanted=counts["star"], not_for_me=counts["dislike"],
                              back=self.site.paths.manage_url(reader))
