"""The reader's session: once a reader opens a valid manage link, a signed cookie lets them move
between the pages that show their own data (search by their taste, for now) without a link in
every URL.

The cookie holds the subscriber id, their link key and an expiry, signed for purpose "session"
(HttpOnly, SameSite=Lax, Secure over https). It lives as long as a manage link does and dies with
the same things: the row deleted, or the reader signing out all their links (a new link key).
"""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from digest.signing.links import epoch
from digest.store.link_keys import StoredLinkKeys
from digest.web.pages import PageError, Site, is_int, positive_int

COOKIE = "digest_reader"


def start(request: Request, response: Response, site: Site, subscriber_id: int) -> None:
    """Set the session cookie for this reader on the response (a manage link was just verified)."""
    key = StoredLinkKeys(site.engine)(subscriber_id)
    if key is None:  # a row written by hand accepts no link, and so no session
        return
    lifetime = timedelta(days=site.options.manage_days)
    token = site.signer.sign("session", {"s": subscriber_id, "k": key, "e": epoch(site.now() + lifetime)})
    response.set_cookie(COOKIE, token, max_age=int(lifetime.total_seconds()), path="/", httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")


def reader(request: Request, site: Site) -> int | None:
    """The subscriber whose session this request carries, or None (no cookie, forged, expired, or
    their links were signed out)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        data = site.signed("session", token, {"s": positive_int, "e": is_int})
    except PageError:
        return None
    if data["e"] < epoch(site.now()) or not site.link_key_matches(data["s"], data):
        return None
    return int(data["s"])


def required(request: Request, site: Site, heading: str, message: str) -> int:
    """The reader of this session; else a 404 page with heading and message (pages of their own data)."""
    found = reader(request, site)
    if found is None:
        raise PageError(404, heading, message)
    return found


def reader_or_public(request: Request, site: Site, heading: str, message: str) -> int | None:
    """The reader of this session, or None when web.public_search opens the page to anyone; else a
    404 page with heading and message."""
    found = reader(request, site)
    if found is None and not site.options.public_search:
        raise PageError(404, heading, message)
    return found


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")
