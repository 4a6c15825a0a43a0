"""My library (/library): the reader's starred papers, newest first, with remove; export as BibTeX
or as a list of arXiv ids (digest.library.export); import a BibTeX file or a list of ids, as
`digest star --file` does. For a reader with a session only (digest.web.session): it is their data.

The import is the one route that takes a file: it has a body limit of its own (IMPORT_MAX_BYTES,
counted as the body streams in: a larger upload is cut off with a 413), the other forms keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.domain import Paper
from digest.errors import InputError
from digest.library.export import arxiv_ids, bibtex
from digest.library.references import parse_library
from digest.library.stars import StarImport, import_stars
from digest.store.subscribers import get_subscriber_by_id
from digest.text import author_line, clean_text, safe_url
from digest.web import csrf, session
from digest.web.pages import SECURITY_HEADERS, PageError, Site, csrf_error
from digest.web.paper import paper_path
from digest.web.signup import Endpoint
from digest.web.starred import paper_to_remove, starred_papers, unstar

IMPORT_MAX_BYTES = 5_000_000  # a BibTeX library of a few thousand entries
UNMATCHED_SHOWN = 20
NOTICES = {"removed": "Removed from your library."}


@dataclass(frozen=True)
class Entry:
    id: int
    title: str
    page: str
    url: str | None
    authors: str


class LibraryPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def endpoints(self) -> list[Endpoint]:
        return [("/library", self.library, ["GET", "POST"]), ("/library/export.bib", self.export_bibtex, ["GET"]),
                ("/library/arxiv-ids.txt", self.export_ids, ["GET"])]

    def upload_endpoints(self) -> list[Endpoint]:
        """The routes that take a file, each with the body limit IMPORT_MAX_BYTES."""
        return [("/library/import", self.import_file, ["POST"])]

    # ---- pages -----------------------------------------------------------------------------
    async def library(self, request: Request) -> Response:
        reader = await run_in_threadpool(self._reader, request)
        if request.method == "POST":
            paper_id = paper_to_remove(await self.site.read_form(request))
            await run_in_threadpool(unstar, self.site.engine, reader, paper_id)
            return RedirectResponse("/library?done=removed", status_code=303)
        notice = NOTICES.get(request.query_params.get("done", ""))
        return await run_in_threadpool(self._page, request, reader, notice, None)

    async def import_file(self, request: Request) -> Response:
        reader = await run_in_threadpool(self._reader, request)
        async with request.form(max_files=1, max_fields=5, max_part_size=16 * 1024) as form:
            token = form.get(csrf.FIELD)
            if not isinstance(token, str) or not csrf.is_valid(request, self.site.signer, token):
                raise csrf_error()
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise PageError(400, "No file", "Choose a BibTeX file or a list of arXiv ids to import.")
            name = clean_text(upload.filename, 100) or "the file"
            data = await upload.read()
        result = await run_in_threadpool(self._import, reader, name, data)
        return await run_in_threadpool(self._page, request, reader, None, result)

    def export_bibtex(self, request: Request) -> Response:
        papers = self._starred(self._reader(request))
        return self._download(bibtex(papers), "text/x-bibtex", "paper-digest-library.bib")

    def export_ids(self, request: Request) -> Response:
        papers = self._starred(self._reader(request))
        return self._download(arxiv_ids(papers), "text/plain", "paper-digest-arxiv-ids.txt")

    # ---- helpers -----------------------------------------------------------------------------
    def _reader(self, request: Request) -> int:
        return session.required(request, self.site, "Your library opens from your digest",
                                "Open the manage link in your latest digest: then your library opens here.")

    def _starred(self, reader: int) -> list[Paper]:
        return starred_papers(self.site.engine, reader)

    def _import(self, reader: int, name: str, data: bytes) -> StarImport | str:
        """The import's outcome, or the one line saying why the file was refused (nothing starred)."""
        with self.site.engine.connect() as conn:
            sub = get_subscriber_by_id(conn, reader)
        if sub is None:
            raise PageError(404, "Subscription not found", "This subscription no longer exists.")
        try:
            refs = parse_library(data.decode("utf-8", errors="replace"), name)
            return import_stars(self.site.engine, sub.email, refs, now=self.site.db_now())
        except InputError as exc:
            return str(exc)

    def _page(self, request: Request, reader: int, notice: str | None, result: StarImport | str | None) -> Response:
        entries = [Entry(p.id or 0, clean_text(p.title, 500), paper_path(p), safe_url(p.url),
                         author_line(p.authors, 4, 300))
                   for p in self._starred(reader)]
        imported = result if isinstance(result, StarImport) else None
        return self.site.form_page(
            request, "library.html.j2", 400 if isinstance(result, str) else 200, entries=entries, notice=notice,
            import_error=result if isinstance(result, str) else None, imported=imported,
            unmatched=imported.unmatched[:UNMATCHED_SHOWN] if imported else [],
            more_unmatched=max(0, len(imported.unmatched) - UNMATCHED_SHOWN) if imported else 0,
            back=self.site.paths.manage_url(reader))

    def _download(self, body: str, media_type: str, filename: str) -> Response:
        return Response(body, media_type=media_type, headers={
            **SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'})
