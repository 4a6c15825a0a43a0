"""What every page of the web app shares: error pages, security headers, templates, forms with CSRF.

Site holds the objects the route modules (app, signup, manage, view) work with: the engine, the
link signer, the clock, the templates and the options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse

from digest.domain import naive_utc
from digest.mail.render import bundled_templates_dir
from digest.signing.links import LinkBuilder
from digest.signing.tokens import SIGNED_AT, InvalidToken, LinkSigner
from digest.store import subscribers as sub_store
from digest.store.link_keys import StoredLinkKeys
from digest.web import csrf
from digest.web.forms import Form, FormDefaults
from digest.web.ratelimit import SignupLimits

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
STATUS_TEXT = {
    400: ("This link is not valid", "The link may have been cut short or changed. Try the link in the email again."),
    403: ("Not allowed", "This action is not available."),
    404: ("Page not found", "There is nothing at this address."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    410: ("This link has expired", "Open the link in your latest email instead."),
    413: ("Request too large", "The request was larger than this page accepts."),
    429: ("Please wait a little", "Too many requests in a short time. Try again later."),
    500: ("Something went wrong", "Please try again in a minute."),
    503: ("Temporarily unavailable", "The service cannot reach its database. Please try again in a minute."),
}
MAX_FORM_FIELDS = 80
# The tokens this app signs are a few hundred characters at most: a longer one is refused unread.
MAX_TOKEN_CHARS = 1000


def positive_int(value: Any) -> bool:
    """An id: an int above zero (JSON's true is an int to Python, and is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def utc_now() -> datetime:
    return datetime.now(UTC)


def mask_email(address: str) -> str:
    # The page is open to anyone holding the link (a forwarded email): show just enough to recognise it.
    local, _, domain = address.partition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class PageError(Exception):
    """Stops a request with a short error page."""

    def __init__(self, status: int, heading: str | None = None, message: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        default = STATUS_TEXT.get(status, STATUS_TEXT[500])
        super().__init__(heading or default[0])
        self.status = status
        self.headers = headers or {}  # such as a 429's Retry-After
        self.heading = heading or default[0]
        self.message = message or default[1]


def csrf_error() -> PageError:
    return PageError(403, "This form has expired",
                     "Go back, reload the page and send the form again. (This site needs its cookie to accept "
                     "a form: it proves the form came from this site.)")


@dataclass(frozen=True)
class WebOptions:
    """What the pages need from the settings (digest serve builds it)."""

    base_url: str = "http://localhost:8000"  # for the links in emails; never taken from the request
    defaults: FormDefaults = field(default_factory=FormDefaults)
    signup_enabled: bool = True
    signup_expiry: timedelta = timedelta(hours=48)
    limits: SignupLimits = field(default_factory=SignupLimits)
    manage_days: int = 30
    templates_dir: str | None = None
    public_search: bool = False  # /search open to anyone; else only from a reader's manage page
    webhooks_allow_private: bool = False  # chat channels on private addresses (fetch.allow_private: tests)


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


class Site:
    def __init__(self, engine: Engine, signer: LinkSigner, now: Callable[[], datetime],
                 templates: jinja2.Environment, options: WebOptions) -> None:
        self.engine = engine
        self.signer = signer
        self.now = now
        self.templates = templates
        self.options = options
        # Root-relative links ("/star/<token>"): the pages work whatever host name the reader used.
        self.paths = LinkBuilder("", signer, manage_days=options.manage_days, now=now,
                                 key_of=StoredLinkKeys(engine))

    def link_key_matches(self, subscriber_id: int, data: dict[str, Any]) -> bool:
        """Whether the link's key ("k") is this subscriber's: a link of a row that is gone, or from
        before the reader signed out all their links, does not match."""
        with self.engine.connect() as conn:
            state = sub_store.link_key_state(conn, subscriber_id)
        if state is None:
            return False
        key, legacy, created_at = state
        if key is None:  # a row written by hand, not through the store: it accepts no link
            return False
        given = data.get("k")
        if given is not None:
            return bool(given == key)
        # Mailed before link keys (migration 0015): only by a row that was there when it was signed,
        # so the links of a reader whose id an older version handed out again stay dead.
        signed_at = data.get(SIGNED_AT)
        return legacy and isinstance(signed_at, int) and signed_at >= int(created_at.replace(tzinfo=UTC).timestamp())

    def signed(self, purpose: str, token: str, fields: Mapping[str, Callable[[Any], bool]],
               invalid: PageError | None = None, *, linked: bool = True) -> dict[str, Any]:
        """A token's payload: capped in length, verified for this purpose (no max age: old digests keep
        working), each of `fields` present and of its kind; else `invalid` (default: a plain 400).
        linked: a link that names a subscriber, read with when it was signed (for check_link_key)."""
        error = invalid or PageError(400)
        if len(token) > MAX_TOKEN_CHARS:
            raise error
        try:
            data = self.signer.verify_link(purpose, token) if linked else self.signer.verify(purpose, token)
        except InvalidToken:
            raise error from None
        if not all(check(data.get(name)) for name, check in fields.items()):
            raise error
        return data

    def check_link_key(self, subscriber_id: int, data: dict[str, Any]) -> None:
        """PageError 404 unless the link's key is this subscriber's (link_key_matches)."""
        if self.link_key_matches(subscriber_id, data):
            return
        raise PageError(404, "This link no longer works",
                        "The subscription it belonged to was deleted, or its links were signed out. Use the links "
                        "in your latest digest.")

    def db_now(self) -> datetime:
        return naive_utc(self.now())

    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def form_page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page with forms: each carries the CSRF token; the cookie is set when the browser has none."""
        token, new_cookie = csrf.issue(request, self.signer)
        response = self.page(template, status, csrf_token=token, **context)
        if new_cookie:
            csrf.set_cookie(response, new_cookie, secure=request.url.scheme == "https")
        return response

    async def read_form(self, request: Request, *, check_csrf: bool = True) -> Form:
        """The urlencoded or multipart fields (no files); PageError 403 when the CSRF token does not match."""
        async with request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=16 * 1024) as data:
            form: Form = {}
            for key, value in data.multi_items():
                if isinstance(value, str):
                    form.setdefault(key, []).append(value)
        if check_csrf and not csrf.is_valid(request, self.signer, (form.get(csrf.FIELD) or [""])[0]):
            raise csrf_error()
        return form
