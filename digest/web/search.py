"""The search page: every stored paper, by its words (digest.store.search).

/search is open to anyone when web.public_search is on; otherwise only to a reader with a session
(digest.web.session: they opened their manage link), and not found for the rest. The query is free
text of any length or content (the store cuts it to words); the page number is bounded.

A reader may sort by their taste: the TASTE_POOL best text matches ordered by the digest's own
scores for them (digest.pipeline.taste), paged from that pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.domain import Paper
from digest.store.search import MAX_QUERY_CHARS, SearchPage, search_papers
from digest.store.subscribers import get_subscriber_by_id
from digest.text import author_line, clean_text, safe_url
from digest.web import session
from digest.web.pages import PageError, Site
from digest.web.paper import paper_path
from digest.web.signup import Endpoint

PER_PAGE = 20
TASTE_POOL = 100  # text matches a reader's taste re-orders: scoring is per paper, so bounded
MAX_PAGES = 50  # deep pages cost the index more and no reader goes there: refine the words instead
AUTHORS_SHOWN = 6
ABSTRACT_CHARS = 400


@dataclass(frozen=True)
class ResultView:
    title: str
    page: str  # the paper's own page here (digest.web.paper)
    url: str | None
    authors: str
    arxiv_id: str | None
    published: str | None
    abstract: str


def result_view(paper: Paper) -> ResultView:
    shown = author_line(paper.authors, AUTHORS_SHOWN)
    published = paper.published.date().isoformat() if paper.published else None
    return ResultView(title=clean_text(paper.title, 500), page=paper_path(paper), url=safe_url(paper.url),
                      authors=shown,
                      arxiv_id=paper.arxiv_id, published=published, abstract=clean_text(paper.abstract, ABSTRACT_CHARS))


class SearchPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def endpoints(self) -> list[Endpoint]:
        return [("/search", self.search, ["GET"])]

    async def search(self, request: Request) -> Response:
        return await run_in_threadpool(self._page, request)

    def _page(self, request: Request) -> Response:
        reader = session.reader_or_public(request, self.site, "Search is for readers",
                                          "Open the manage link in your latest digest: you can search from that page.")
        path = "/search"
        q = request.query_params.get("q", "")[:MAX_QUERY_CHARS]  # what the store reads, and the links carry
        page = _page_number(request.query_params.get("page", "1"))
        by_taste = reader is not None and request.query_params.get("order") == "taste"
        found: SearchPage | None = None
        pool_full = False
        if q.strip() and by_taste and reader is not None:
            found, pool_full = self._taste_page(reader, q, page)
        elif q.strip():
            found = self._text_page(q, page)
        results = [result_view(p) for p in found.papers] if found else []
        more = found is not None and found.has_more and page < MAX_PAGES
        keep = {"q": q, **({"order": "taste"} if by_taste else {})}
        return self.site.page(
            "search.html.j2", action=path, q=q, page=page, results=results, searched=found is not None,
            first=(page - 1) * PER_PAGE + 1, back=self.site.paths.manage_url(reader) if reader else None,
            can_sort=reader is not None, by_taste=by_taste, pool=TASTE_POOL,
            pool_full=pool_full,
            previous_url=f"{path}?{urlencode({**keep, 'page': page - 1})}" if page > 1 else None,
            next_url=f"{path}?{urlencode({**keep, 'page': page + 1})}" if more else None)

    def _text_page(self, q: str, page: int) -> SearchPage:
        with self.site.engine.connect() as conn:
            return search_papers(conn, q, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)

    def _taste_page(self, reader: int, q: str, page: int) -> tuple[SearchPage, bool]:
        """The page of the pool ordered by taste, and whether more matched than the pool holds."""
        from digest.pipeline.taste import taste_scores  # numpy and the ranker: only when a reader asks

        with self.site.engine.connect() as conn:
            pool = search_papers(conn, q, limit=TASTE_POOL)
            sub = get_subscriber_by_id(conn, reader)
        if sub is None:
            raise PageError(404, "Subscription not found", "This subscription no longer exists.")
        scores = taste_scores(self.site.engine, sub, pool.papers)
        ordered = [p for _, p in sorted(zip(scores, pool.papers, strict=True), key=lambda sp: -sp[0])]
        start = (page - 1) * PER_PAGE
        return SearchPage(pool.query, ordered[start:start + PER_PAGE], start, start + PER_PAGE < len(ordered)), \
            pool.has_more


def _page_number(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 4 or not 1 <= int(raw) <= MAX_PAGES:
        raise PageError(400, "Not a page of results", f"Pages go from 1 to {MAX_PAGES}: refine the words instead.")
    return int(raw)
