"""The web app behind the links in a digest: tracked paper redirects, star, less like this, unsubscribe.

Every link carries a signed, purpose-bound token with opaque ids (see digest.links). A forged,
altered or wrong-purpose token gets a 400 page and records nothing. Redirects go only to the
paper's stored http(s) URL, looked up by id. HEAD requests and clicks within seconds of delivery
(mail scanners) are recorded flagged, so the learner never takes them as labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.domain import Paper, Subscriber
from digest.mail.render import bundled_templates_dir, clean_text, safe_url
from digest.store import events as event_store
from digest.store.papers import papers_by_ids
from digest.store.subscribers import deactivate, get_subscriber_by_id, reactivate
from digest.web.tokens import InvalidToken, LinkSigner

log = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 1000
MAX_BODY_BYTES = 16 * 1024  # a one-click unsubscribe body is 26 bytes
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    # Every page acts on a token: nothing may be cached and replayed by a proxy or the back button.
    "Cache-Control": "no-store",
}
_STATUS_TEXT = {
    400: ("This link is not valid", "The link may have been cut short or changed. Try the link in the email again."),
    403: ("Not allowed", "This action is not available."),
    404: ("Page not found", "There is nothing at this address."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    413: ("Request too large", "The request was larger than this page accepts."),
    500: ("Something went wrong", "Please try again in a minute."),
    503: ("Temporarily unavailable", "The service cannot reach its database. Please try again in a minute."),
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def _naive_utc(value: datetime) -> datetime:
    """The store keeps naive UTC datetimes."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _mask_email(address: str) -> str:
    # The page is open to anyone holding the link (a forwarded email): show just enough to recognise it.
    local, _, domain = address.partition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}"


HealthSource = Callable[[], tuple[int, dict[str, Any]]]
MetricsSource = Callable[[], tuple[bytes, str]]


class PageError(Exception):
    """Stops a request with a short error page."""

    def __init__(self, status: int, heading: str | None = None, message: str | None = None) -> None:
        default = _STATUS_TEXT.get(status, _STATUS_TEXT[500])
        super().__init__(heading or default[0])
        self.status = status
        self.heading = heading or default[0]
        self.message = message or default[1]


@dataclass(frozen=True)
class LinkData:
    subscriber_id: int
    paper_id: int | None
    delivery_id: int | None
    pdf: bool


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class _SecurityHeaders:
    """Adds the security headers to every response and logs one line per request, tokens left out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                parts = str(scope["path"]).split("/")
                shown = "/".join(parts[:2]) + ("/..." if len(parts) > 2 else "")
                log.info("%s %s %s", scope["method"], shown, message["status"])
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Web:
    def __init__(self, engine: Engine, signer: LinkSigner, scanner_window_s: int, now: Callable[[], datetime],
                 templates: jinja2.Environment, health: HealthSource | None = None,
                 metrics: MetricsSource | None = None) -> None:
        self.health = health
        self.metrics_source = metrics
        self.engine = engine
        self.signer = signer
        self.window = timedelta(seconds=scanner_window_s)
        self.now = now
        self.templates = templates

    # ---- helpers -------------------------------------------------------------------------------
    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def verify(self, purpose: str, token: str) -> LinkData:
        if len(token) > MAX_TOKEN_CHARS:
            raise PageError(400)
        try:
            data = self.signer.verify(purpose, token)  # no max age: old digests keep working
        except InvalidToken:
            raise PageError(400) from None
        sub, paper = _positive_int(data.get("s")), _positive_int(data.get("p"))
        delivery = _positive_int(data.get("d"))
        kind = data.get("t")
        if (
            sub is None
            or (purpose != "unsubscribe" and paper is None)
            or ("d" in data and delivery is None)
            or kind not in (None, "pdf")
        ):
            raise PageError(400)
        return LinkData(sub, paper, delivery, kind == "pdf")

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
    def healthz(self, request: Request) -> Response:
        if self.health is not None:  # digest serve's: the scheduler and the last run too
            status, body = self.health()
            return JSONResponse(body, status_code=status)
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.warning("health check: database unreachable: %s", str(exc).splitlines()[0])
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    def metrics(self, request: Request) -> Response:
        assert self.metrics_source is not None
        data, content_type = self.metrics_source()
        return Response(data, media_type=content_type)

    def open_link(self, request: Request) -> Response:
        link = self.verify("open", request.path_params["token"])
        pid = link.paper_id or 0
        try:
            with self.engine.connect() as conn:
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
        if sub is not None and sub.active:
            self._record_click(link, request.method, "web:pdf" if link.pdf else "web:open")
        return RedirectResponse(target, status_code=302, headers=SECURITY_HEADERS)

    def _record_click(self, link: LinkData, method: str, origin: str) -> None:
        # Tracking never breaks the redirect for the reader: a failed record is logged, not shown.
        try:
            now = _naive_utc(self.now())
            with self.engine.begin() as conn:
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
        now = _naive_utc(self.now())
        with self.engine.begin() as conn:
            _sub, paper = self.load(conn, link, active=True)
            flagged, delivery_id = self.scanner_check(conn, link, request.method, now)
            origin = f"web:{kind}" + (":head" if request.method == "HEAD" else "")
            event_store.set_opinion(conn, subscriber_id=link.subscriber_id, paper_id=paper.id or 0, kind=kind,
                                    origin=origin, delivery_id=delivery_id, flagged=flagged, now=now)
        if request.method == "HEAD":
            return Response(status_code=200, headers=SECURITY_HEADERS)
        return self.page("feedback.html.j2", kind=kind, state="done", title=clean_text(paper.title) or "(untitled)",
                         paper_url=safe_url(paper.url) or safe_url(paper.pdf_url), undo_action=f"{token}/undo")

    def _undo(self, request: Request, kind: str) -> Response:
        token = request.path_params["token"]
        link = self.verify(kind, token)
        with self.engine.begin() as conn:
            _sub, paper = self.load(conn, link, active=False)  # taking an opinion back is always allowed
            event_store.remove_events(conn, subscriber_id=link.subscriber_id, paper_id=paper.id or 0, kind=kind)
        return self.page("feedback.html.j2", kind=kind, state="undone", title=clean_text(paper.title) or "(untitled)",
                         paper_url=safe_url(paper.url) or safe_url(paper.pdf_url), again_href=f"../{token}")

    def star(self, request: Request) -> Response:
        return self._opinion(request, "star")

    def less(self, request: Request) -> Response:
        return self._opinion(request, "dislike")

    def star_undo(self, request: Request) -> Response:
        return self._undo(request, "star")

    def less_undo(self, request: Request) -> Response:
        return self._undo(request, "dislike")

    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        link = self.verify("unsubscribe", token)
        if request.method != "POST":  # GET never unsubscribes: mail scanners prefetch links
            return await run_in_threadpool(self._subscription_page, link, token)
        form = await request.form(max_files=0, max_fields=20, max_part_size=4096)
        # RFC 8058 one-click: the mail client posts this body and shows nothing to the reader.
        one_click = form.get("List-Unsubscribe") == "One-Click"
        await form.close()
        return await run_in_threadpool(self._set_active, link, token, False, one_click)

    def resubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        return self._set_active(self.verify("unsubscribe", token), token, True, False)

    def _subscription_page(self, link: LinkData, token: str) -> Response:
        with self.engine.connect() as conn:
            sub = get_subscriber_by_id(conn, link.subscriber_id)
        if sub is None:
            raise PageError(404, "Subscription not found", "This subscription no longer exists.")
        return self.page("unsubscribe.html.j2", state="subscribed" if sub.active else "unsubscribed",
                         address=_mask_email(sub.email), keywords=[clean_text(k) for k in sub.keywords], token=token)

    def _set_active(self, link: LinkData, token: str, active: bool, one_click: bool) -> Response:
        now = _naive_utc(self.now())
        with self.engine.begin() as conn:
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
        return self.page("unsubscribe.html.j2", state="resubscribed" if active else "unsubscribed",
                         address=_mask_email(sub.email), keywords=[clean_text(k) for k in sub.keywords], token=token)

    # ---- errors --------------------------------------------------------------------------------
    def error_page(self, status: int, heading: str | None = None, message: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
        err = PageError(status, heading, message)
        response = self.page("error.html.j2", status=status, heading=err.heading, message=err.message)
        response.headers.update(headers or {})
        return response

    async def on_page_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return self.error_page(exc.status, exc.heading, exc.message)

    async def on_http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self.error_page(exc.status_code, headers=dict(exc.headers or {}))

    async def on_server_error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, SQLAlchemyError):
            return self.error_page(503)
        return self.error_page(500)


def templates_environment(templates_dir: str | None = None) -> jinja2.Environment:
    """web/*.html.j2, from the operator's templates_dir first, then the bundled templates."""
    search = [Path(templates_dir).expanduser()] if templates_dir else []
    search.append(bundled_templates_dir())
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p / "web") for p in search]),
        autoescape=True,  # titles and keywords come from feeds and subscribers
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def create_app(
    engine: Engine,
    signer: LinkSigner,
    *,
    scanner_window_s: int,
    now: Callable[[], datetime] = utc_now,
    templates_dir: str | None = None,
    health: HealthSource | None = None,
    metrics: MetricsSource | None = None,
) -> Starlette:
    """The Starlette app serving the links built by digest.links.LinkBuilder.

    health: what /healthz answers (status code, JSON body); default: the database check alone.
    metrics: the Prometheus exposition (body, content type) served at /metrics; default: no /metrics.
    """
    web = _Web(engine, signer, scanner_window_s, now, templates_environment(templates_dir), health, metrics)
    endpoints: list[tuple[str, Callable[[Request], Any], list[str]]] = [
        ("/healthz", web.healthz, ["GET"]),
        ("/o/{token}", web.open_link, ["GET"]),  # GET routes answer HEAD too
        ("/star/{token}", web.star, ["GET"]),
        ("/star/{token}/undo", web.star_undo, ["POST"]),
        ("/less/{token}", web.less, ["GET"]),
        ("/less/{token}/undo", web.less_undo, ["POST"]),
        ("/unsubscribe/{token}", web.unsubscribe, ["GET", "POST"]),
        ("/resubscribe/{token}", web.resubscribe, ["POST"]),
    ]
    if metrics is not None:
        endpoints.append(("/metrics", web.metrics, ["GET"]))
    # The body limit sits on the routes, inside the middleware, so a 413 gets the security headers too.
    routes = [Route(p, e, methods=m, max_body_size=MAX_BODY_BYTES) for p, e, m in endpoints]
    app = Starlette(
        routes=routes,
        exception_handlers={PageError: web.on_page_error, HTTPException: web.on_http_error,
                            Exception: web.on_server_error},
    )
    app.add_middleware(_SecurityHeaders)
    return app
