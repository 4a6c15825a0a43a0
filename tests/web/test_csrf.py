"""The forms' CSRF check (digest.web.csrf) on its own: a signed token bound to a random cookie."""

from __future__ import annotations

import time

import pytest
from starlette.requests import Request
from starlette.responses import Response

from digest.signing.tokens import LinkSigner
from digest.web import csrf

SIGNER = LinkSigner(["a-csrf-test-key-of-enough-length"])


def _request(cookie: str | None) -> Request:
    headers = [(b"cookie", f"{csrf.COOKIE}={cookie}".encode())] if cookie is not None else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""})


def test_a_browser_without_the_cookie_gets_one_and_a_token_bound_to_it() -> None:
    token, cookie = csrf.issue(_request(None), SIGNER)
    assert cookie is not None and len(cookie) >= 32
    assert csrf.is_valid(_request(cookie), SIGNER, token)
    again, none = csrf.issue(_request(cookie), SIGNER)  # the cookie it has is kept
    assert none is None and csrf.is_valid(_request(cookie), SIGNER, again)
    response = Response()
    csrf.set_cookie(response, cookie, secure=True)
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "secure" in header


def test_a_token_fails_with_another_cookie_none_another_key_or_its_age(monkeypatch: pytest.MonkeyPatch) -> None:
    token, cookie = csrf.issue(_request(None), SIGNER)
    assert cookie is not None
    other, _ = csrf.issue(_request(None), SIGNER)
    assert not csrf.is_valid(_request(cookie), SIGNER, other)  # a token for another browser's cookie
    assert not csrf.is_valid(_request(None), SIGNER, token)
    assert not csrf.is_valid(_request("short"), SIGNER, token)  # not a cookie this app sets
    assert not csrf.is_valid(_request(cookie), LinkSigner(["another-key-of-enough-length-000"]), token)
    assert not csrf.is_valid(_request(cookie), SIGNER, token + "x" * 600)  # over the length cap, unread
    assert not csrf.is_valid(_request(cookie), SIGNER, None)
    link = SIGNER.sign("manage", {"c": cookie})  # right value, wrong purpose
    assert not csrf.is_valid(_request(cookie), SIGNER, link)
    later = time.time() + csrf.MAX_AGE_S + 60
    monkeypatch.setattr(time, "time", lambda: later)  # the fault: a form left open for more than a day
    assert not csrf.is_valid(_request(cookie), SIGNER, token)
