"""CSRF protection for the forms: a signed double-submit token.

The browser holds a random value in a cookie; each form carries that value signed (purpose "csrf",
with the time), so a page on another site can neither read nor forge the pair. The RFC 8058
one-click unsubscribe POST is exempt: the mail client sends no cookies, and its signed URL token is
the authority.
"""

from __future__ import annotations

import hmac
import re
import secrets

from starlette.requests import Request
from starlette.responses import Response

from digest.signing.tokens import InvalidToken, LinkSigner

COOKIE = "digest_csrf"
FIELD = "csrf_token"
MAX_AGE_S = 24 * 3600  # a form left open longer asks for a reload
_VALUE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def _cookie(request: Request) -> str | None:
    value = request.cookies.get(COOKIE, "")
    return value if _VALUE.match(value) else None


def issue(request: Request, signer: LinkSigner) -> tuple[str, str | None]:
    """(the token for the form, a new cookie value to set or None when the browser has one)."""
    current = _cookie(request)
    value = current or secrets.token_urlsafe(32)
    return signer.sign("csrf", {"c": value}), None if current else value


def set_cookie(response: Response, value: str, *, secure: bool) -> None:
    # Lax: sent when the reader follows a link from their mail, never with a cross-site POST.
    response.set_cookie(COOKIE, value, max_age=30 * 86400, path="/", secure=secure, httponly=True, samesite="lax")


def is_valid(request: Request, signer: LinkSigner, submitted: str | None) -> bool:
    cookie = _cookie(request)
    if not cookie or not submitted or len(submitted) > 500:
        return False
    try:
        data = signer.verify("csrf", submitted, max_age_s=MAX_AGE_S)
    except InvalidToken:
        return False
    return hmac.compare_digest(str(data.get("c", "")), cookie)
