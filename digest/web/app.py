"""The web app: the routes of the digest's links (feedback.py), the sign-up, manage and web-view pages
(signup.py, manage.py, view.py), /healthz and /metrics, the error pages, and the middleware
(middleware.py) around them all."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from digest.signing.tokens import LinkSigner
from digest.web.feed import FeedPages
from digest.web.feedback import FeedbackPages
from digest.web.library import IMPORT_MAX_BYTES, LibraryPages
from digest.web.manage import ManagePages
from digest.web.middleware import SecurityHeaders
from digest.web.pages import SECURITY_HEADERS, PageError, Site, WebOptions, templates_environment, utc_now
from digest.web.paper import PaperPages
from digest.web.rate import RatePages
from digest.web.search import SearchPages
from digest.web.signup import ConfirmationSender, SignupPages
from digest.web.view import DigestView

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # a one-click unsubscribe body is 26 bytes; the subscribe form a few kB

__all__ = ["SECURITY_HEADERS", "PageError", "WebOptions", "create_app", "templates_environment", "utc_now"]

HealthSource = Callable[[], tuple[int, dict[str, Any]]]
MetricsSource = Callable[[], tuple[bytes, str]]


class _Service:
    """/healthz, /metrics and the error pages."""

    def __init__(self, site: Site, health: HealthSource | None = None, metrics: MetricsSource | None = None) -> None:
        self.site = site
        self.health = health
        self.metrics_source = metrics

    def healthz(self, request: Request) -> Response:
        if self.health is not None:  # digest serve's: the scheduler and the last run too
            status, body = self.health()
            return JSONResponse(body, status_code=status)
        try:
            with self.site.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.warning("health check: database unreachable: %s", str(exc).splitlines()[0])
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    def metrics(self, request: Request) -> Response:
        assert self.metrics_source is not None
        data, content_type = self.metrics_source()
        return Response(data, media_type=content_type)

    # ---- errors --------------------------------------------------------------------------------
    def error_page(self, status: int, heading: str | None = None, message: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
        err = PageError(status, heading, message)
        response = self.site.page("error.html.j2", status=status, heading=err.heading, message=err.message)
        response.headers.update(headers or {})
        return response

    async def on_page_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return self.error_page(exc.status, exc.heading, exc.message, exc.headers)

    async def on_http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self.error_page(exc.status_code, headers=dict(exc.headers or {}))

    async def on_server_error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, SQLAlchemyError):
            return self.error_page(503)
        return self.error_page(500)


def create_app(
    engine: Engine,
    signer: LinkSigner,
    *,
    scanner_window_s: int,
    now: Callable[[], datetime] = utc_now,
    templates_dir: str | None = None,
    options: WebOptions | None = None,
    mailer: ConfirmationSender | None = None,
    health: HealthSource | None = None,
    metrics: MetricsSource | None = None,
) -> Starlette:
    """The Starlette app serving the links built by digest.signing.links.LinkBuilder, and the subscribe pages.

    mailer sends the sign-up confirmations; without one the subscribe page says sign-ups are closed.
    health: what /healthz answers (status code, JSON body); default: the database check alone.
    metrics: the Prometheus exposition (body, content type) served at /metrics; default: no /metrics.
    """
    opts = options or WebOptions(templates_dir=templates_dir)
    site = Site(engine, signer, now, templates_environment(templates_dir or opts.templates_dir), opts)
    web = _Service(site, health, metrics)
    signup = SignupPages(site, mailer)
    manage = ManagePages(site, signup)
    library = LibraryPages(site)
    endpoints: list[tuple[str, Callable[[Request], Any], list[str]]] = [
        ("/healthz", web.healthz, ["GET"]),
        *FeedbackPages(site, scanner_window_s).endpoints(),
        *signup.endpoints(),
        *manage.endpoints(),
        *SearchPages(site).endpoints(),
        *PaperPages(site).endpoints(),
        *library.endpoints(),
        *RatePages(site).endpoints(),
        *DigestView(site).endpoints(),
        *FeedPages(site).endpoints(),
    ]
    if metrics is not None:
        endpoints.append(("/metrics", web.metrics, ["GET"]))
    # The body limit sits on the routes, inside the middleware, so a 413 gets the security headers too.
    routes = [Route(p, e, methods=m, max_body_size=MAX_BODY_BYTES) for p, e, m in endpoints]
    routes += [Route(p, e, methods=m, max_body_size=IMPORT_MAX_BYTES) for p, e, m in library.upload_endpoints()]
    app = Starlette(
        routes=routes,
        exception_handlers={PageError: web.on_page_error, HTTPException: web.on_http_error,
                            Exception: web.on_server_error},
    )
    app.add_middleware(SecurityHeaders)
    return app
