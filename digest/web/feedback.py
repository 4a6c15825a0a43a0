"""The links in a digest: tracked paper redirects, star, less like this (each with its undo), and
unsubscribe (a confirm page; mail clients' one-click POST at once).

Every link carries a signed, purpose-bound token with opaque ids (see digest.signing.links). A forged,
altered or wrong-purpose token gets a 400 page and records nothing. Redirects go only to the
paper's stored http(s) URL, looked up by id. HEAD requests and clicks within seconds of delivery
(mail scanners) are recorded flagged, so the learner never takes them as labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from digest.domain import Paper, Subscriber, naive_utc
from digest.store import events as event_store
from digest.store.papers import papers_by_ids
from digest.store.subscribers import deactivate, get_subscriber_by_id, reactivate
from digest.text import clean_text, safe_url
from digest.web import csrf
from digest.web.pages import SECURITY_HEADERS, PageError, Site, csrf_error, mask_email, positive_int
from digest.web.signup import Endpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkData:
    subscriber_id: int
    paper_id: int | None
    delivery_id: int | None
    pdf: bool
    current: bool = True  # the link's key is the subscriber's (open links of old keys still redirect)



class FeedbackPages:
    def __init__(self, site: Site, scanner_window_s: int) -> None:
        self.site = site
        self.window = timedelta(seconds=scanner_window_s)

    def endpoints(self) -> list[Endpoint]:
        return [
            ("/o/{token}", self.open_link, ["GET"]),  # GET routes answer HEAD too
            ("/star/{token}", self.star, ["GET"]),
            ("/star/{token}/undo", self.star_undo, ["POST"]),
            ("/less/{token}", self.less, ["GET"]),
            ("/less/{token}/undo", self.less_undo, ["POST"]),
            ("/unsubscribe/{token}", self.unsubscribe, ["GET", "POST"]),
            ("/resubscribe/{token}", self.resubscribe, ["POST"]),
        ]

    # ---- helpers -------------------------------------------------------------------------------
    def verify(self, purpose: str, token: str) -> LinkData:
        needs = {"s": positive_int} if purpose == "unsubscribe" else {"s": positive_int, "p": positive_int}
        data = self.site.signed(purpose, token, needs)
        sub: int = data["s"]
        paper: int | None = data.get("p") if positive_int(data.get("p")) else None
        delivery: int | None = data.get("d")
        kind = data.get("t")
        if ("d" in data and not positive_int(delivery)) or kind not in (None, "pdf"):
            raise PageError(400)
        if purpose != "open":
            self.site.check_link_key(sub, data)
            return LinkData(sub, paper, delivery, kind == "pdf")
        # An open link still takes the reader to the paper; only a current one is recorded.
        return LinkData(sub, paper, delivery, kind == "pdf", self.site.link_key_matches(sub, data))

    def scanner_check(self, conn: Connection, link: LinkData, method: str, now: datetime) -> tuple[bool, int | None]:
        """(flagged, delivery id to store). A delivery that no longer exists is left out of the event."""
        ref = None
        if link.delivery_id is not None:
            ref = event_store.find_delivery(conn, link.delivery_id, subscriber_id=link.subscriber_id)
        delivery_id = ref.id if ref else None
        if method == "HEAD":
            return True, delivery_id
        if not self.window or ref is None:
            return False, delivery_id
        # Not marked sent yet: a scanner can fetch the links before the ledger records the send, so
        # the window then starts when the send was claimed.
        return now - (ref.sent_at or ref.updated_at) < self.window, delivery_id

    def load(self, conn: Connection, link: LinkData, *, active: bool) -> tuple[Subscriber, Paper]:
        sub = get_subscriber_by_id(conn, link.subscriber_id)
        if sub is None:
            raise PageError(404, "Subscription not found", "This subscription no longer exists.")
        if active and not sub.active:
            raise PageError(403, "You are unsubscribed",
                            "You no longer get the digest, so it no longer learns from your clicks.")
        paper = papers_by_ids(conn, [link.paper_id or 0]).get(link.paper_id or 0)
        if paper is None:
            raise PageError(404, "Paper not found", "This paper is no longer in the digest's library.")
        return sub, paper

    # ---- routes --------------------------------------------------------------------------------
    def open_link(self, request: Request) -> Response:
        link = self.verify("open", request.path_params["token"])
        pid = link.paper_id or 0
        try:
            with self.site.engine.connect() as conn:
                paper = papers_by_ids(conn, [pid]).get(pid)
                sub = get_subscriber_by_id(conn, link.subscriber_id)
        except SQLAlchemyError:
            log.exception("open link: cannot look up paper %s", pid)
            raise PageError(503) from None
        if paper is None:
            raise PageError(404, "Paper not found", "This paper is no longer in the digest's library.")
        target = safe_url(paper.pdf_url if link.pdf else paper.url)
        if target is None:
            raise PageError(404, "No link for this paper", "The feed gave no web address we can open for it.")
        # Unsubscribed (or deleted) subscribers still reach their paper; only the record is skipped.
        if sub is not None and sub.active and link.current:
            self._record_click(link, request.method, "web:pdf" if link.pdf else "web:open")
        return RedirectResponse(target, status_code=302, headers=SECURITY_HEADERS)

    def _record_click(self, link: LinkData, method: str, origin: str) -> None:
        # Tracking never breaks the redirect for the reader: a failed record is logged, not shown.
        try:
            now = naive_utc(self.site.now())
            with self.site.engine.begin() as conn:
                flagged, delivery_id = self.scanner_check(conn, link, method, now)
                event_store.record_event(conn, subscriber_id=link.subscriber_id, paper_id=link.paper_id,
                                         kind="click", origin=origin + (":head" if method == "HEAD" else ""),
                                         delivery_id=delivery_id, flagged=flagged, now=now)
        except Exception:
            log.exception("open link: could not record the click of subscriber %s on paper %s",
                          link.subscriber_id, link.paper_id)

    def _opinion(self, request: Request, kind: str) -> Response:
        token = request.path_params["token"]
        link = self.verify(kind, token)
        now = naive_utc(self.site.now())
        with self.site.engine.begin() as conn:
            _sub, paper = self.load(conn, link, active=True)
            flagged, delivery_id = self.scanner_check(conn, link, request.method, now)
            origin = f"web:{kind}" + (":head" if request.method == "HEAD" else "")
            event_store.set_opinion(conn, subscriber_id=link.subscriber_id, paper_id=paper.id or 0, kind=kind,
                                    origin=origin, delivery_id=delivery_id, flagged=flagged, now=now)
        if request.method == "HEAD":
            return Response(status_code=200, headers=SECURITY_HEADERS)
        return self.site.form_page(request, "feedback.html.j2", kind=kind, state="done",
                              title=clean_text(paper.title) or "(untitled)",
                              paper_url=safe_url(paper.url) or safe_url(paper.pdf_url), undo_action=f"{token}/undo")

    async def _undo(self, request: Request, kind: str) -> Response:
        token = request.path_params["token"]
        link = self.verify(kind, token)
        await self.site.read_form(request)  # CSRF
        return await run_in_threadpool(self._undone, link, token, kind)

    def _undone(self, link: LinkData, token: str, kind: str) -> Response:
        with self.site.engine.begin() as conn:
            _sub, paper = self.load(conn, link, active=False)  # taking an opinion back is always allowed
            event_store.remove_events(conn, subscriber_id=link.subscriber_id, paper_id=paper.id or 0, kind=kind)
        return self.site.page("feedback.html.j2", kind=kind, state="undone",
                              title=clean_text(paper.title) or "(untitled)",
                              paper_url=safe_url(paper.url) or safe_url(paper.pdf_url), again_href=f"../{token}")

    def star(self, request: Request) -> Response:
        return self._opinion(request, "star")

    def less(self, request: Request) -> Response:
        return self._opinion(request, "dislike")

    async def star_undo(self, request: Request) -> Response:
        return await self._undo(request, "star")

    async def less_undo(self, request: Request) -> Response:
        return await self._undo(request, "dislike")

    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        link = self.verify("unsubscribe", token)
        if request.method != "POST":  # GET never unsubscribes: mail scanners prefetch links
            return await run_in_threadpool(self._subscription_page, request, link, token)
        form = await self.site.read_form(request, check_csrf=False)
        # RFC 8058 one-click: the mail client posts this body (no cookies) and shows nothing to the reader.
        # Exempt from CSRF: the signed token in the URL is the authority.
        one_click = (form.get("List-Unsubscribe") or [""])[0] == "One-Click"
        if not one_click and not csrf.is_valid(request, self.site.signer, (form.get(csrf.FIELD) or [""])[0]):
            raise csrf_error()
        return await run_in_threadpool(self._set_active, request, link, token, False, one_click)

    async def resubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        link = self.verify("unsubscribe", token)
        await self.site.read_form(request)  # CSRF
        return await run_in_threadpool(self._set_active, request, link, token, True, False)

    def _subscription_page(self, request: Request, link: LinkData, token: str) -> Response:
        with self.site.engine.connect() as conn:
            sub = get_subscriber_by_id(conn, link.subscriber_id)
        if sub is None:
            raise PageError(404, "Subscription not found", "This subscription no longer exists.")
        return self.site.form_page(request, "unsubscribe.html.j2", state="subscribed" if sub.active else "unsubscribed",
                              address=mask_email(sub.email), keywords=[clean_text(k) for k in sub.keywords],
                              token=token)

    def _set_active(self, request: Request, link: LinkData, token: str, active: bool, one_click: bool) -> Response:
        now = naive_utc(self.site.now())
        with self.site.engine.begin() as conn:
            sub = get_subscriber_by_id(conn, link.subscriber_id)
            if sub is None:
                raise PageError(404, "Subscription not found", "This subscription no longer exists.")
            changed = reactivate(conn, sub.id, now) if active else deactivate(conn, sub.id, now)
            if changed:
                event_store.record_event(conn, subscriber_id=sub.id, paper_id=None,
                                         kind="resubscribe" if active else "unsubscribe",
                                         origin="web:one-click" if one_click else "web:page", now=now)
        if changed:
            log.info("subscriber %s %s", sub.id, "subscribed again" if active else "unsubscribed")
        if one_click:
            return PlainTextResponse("You are unsubscribed.\n", headers=SECURITY_HEADERS)
        return self.site.form_page(request, "unsubscribe.html.j2", state="resubscribed" if active else "unsubscribed",
                              address=mask_email(sub.email), keywords=[clean_text(k) for k in sub.keywords],
                              token=token)
