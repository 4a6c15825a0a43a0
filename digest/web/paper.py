"""A page per stored paper (/p/<arXiv id or paper id>): title, authors, abstract, links, the papers
most similar to it (digest.pipeline.similar), and for a reader with a session, star and "less like
this" (recorded as the email's links record them, so the next digest learns from them).

Open to the same people as the search: anyone with web.public_search, else readers only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.code_links import paper_links
from digest.domain import Paper
from digest.gist import gist
from digest.store import events as event_store
from digest.store.papers import row_to_paper
from digest.store.schema import papers
from digest.text import clean_text, safe_url
from digest.web import session
from digest.web.pages import PageError, Site
from digest.web.signup import Endpoint

_ID = re.compile(r"^[1-9]\d{0,17}$")
_ARXIV = re.compile(r"^(?:\d{4}\.\d{4,5}|[a-z][a-z.-]{1,20}/\d{7})$")
AUTHORS_SHOWN = 50
OPINIONS = {"star": "star", "dislike": "dislike"}


@dataclass(frozen=True)
class Neighbour:
    title: str
    href: str
    similarity: float


def paper_path(paper: Paper) -> str:
    """The page's address: by arXiv id where the paper has one (stable across databases), else by id."""
    return f"/p/{paper.arxiv_id}" if paper.arxiv_id else f"/p/{paper.id}"


class PaperPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def endpoints(self) -> list[Endpoint]:
        return [("/p/{ref:path}", self.paper, ["GET", "POST"])]

    async def paper(self, request: Request) -> Response:
        reader = await run_in_threadpool(self._reader, request)
        paper = await run_in_threadpool(self._find, request.path_params["ref"])
        if request.method == "POST":
            if reader is None:
                raise PageError(403, "Sign in first", "Open the manage link in your latest digest, then come back.")
            form = await self.site.read_form(request)
            kind = OPINIONS.get((form.get("opinion") or [""])[0])
            if kind is None:
                raise PageError(400, "Not an opinion", "Use the Star or Less like this button.")
            await run_in_threadpool(self._record, reader, paper, kind)
            return RedirectResponse(paper_path(paper), status_code=303)
        return await run_in_threadpool(self._page, request, reader, paper)

    def _reader(self, request: Request) -> int | None:
        return session.reader_or_public(request, self.site, "Paper pages are for readers",
                                        "Open the manage link in your latest digest: then paper pages open for you.")

    def _find(self, ref: str) -> Paper:
        ref = ref.strip().lower()
        if _ID.match(ref):
            where = papers.c.id == int(ref)
        elif _ARXIV.match(ref):
            where = papers.c.arxiv_id == ref
        else:
            raise PageError(404, "No such paper", "This address names no paper the digest has seen.")
        with self.site.engine.connect() as conn:
            row = conn.execute(select(papers).where(where)).first()
        if row is None:
            raise PageError(404, "No such paper", "This address names no paper the digest has seen.")
        return row_to_paper(row)

    def _record(self, reader: int, paper: Paper, kind: str) -> None:
        with self.site.engine.begin() as conn:
            event_store.set_opinion(conn, subscriber_id=reader, paper_id=paper.id or 0, kind=kind,
                                    origin="web:paper", now=self.site.db_now())

    def _page(self, request: Request, reader: int | None, paper: Paper) -> Response:
        from digest.pipeline.similar import similar_papers  # numpy and the ranker's vectors: only here

        near = [Neighbour(clean_text(s.paper.title, 500), paper_path(s.paper), s.similarity)
                for s in similar_papers(self.site.engine, paper)]
        opinion = None
        if reader is not None:
            with self.site.engine.connect() as conn:
                mine = event_store.list_events(conn, reader, kinds=["star", "dislike"])
            kinds = {e.kind for e in mine if e.paper_id == paper.id and not e.flagged}
            opinion = "star" if "star" in kinds else "dislike" if "dislike" in kinds else None
        authors = [clean_text(a, 200) for a in paper.authors[:AUTHORS_SHOWN]]
        more = len(paper.authors) - len(authors)
        found = paper_links(paper.abstract, paper.comment or "")
        return self.site.form_page(
            request, "paper.html.j2", title=clean_text(paper.title, 500), authors=authors, more_authors=more,
            abstract=clean_text(paper.abstract), arxiv_id=paper.arxiv_id, url=safe_url(paper.url),
            pdf_url=safe_url(paper.pdf_url), code_url=found.code, data_url=found.data,
            gist=gist(paper.abstract), categories=[clean_text(c, 64) for c in paper.categories],
            published=paper.published.date().isoformat() if paper.published else None,
            similar=near, reader=reader is not None, opinion=opinion, action=paper_path(paper))
