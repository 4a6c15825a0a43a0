"""The subscribe page and double opt-in: a pending sign-up, a confirmation email, a signed link.

Nothing becomes a subscriber (so nothing is ever sent but the confirmation) until the link in the
confirmation email is followed and its button pressed: a GET only shows the button, because mail
scanners prefetch links. A link works once, until its sign-up expires.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.domain import DeliveryOutcome
from digest.errors import DeliveryError
from digest.signing.links import epoch
from digest.store import consent as consent_store
from digest.store import events as event_store
from digest.store import signups
from digest.store import subscribers as sub_store
from digest.web import session
from digest.web.consent import CONSENT_SHA256, CONSENT_TEXT, CONSENT_VERSION
from digest.web.forms import (
    MAX_TOP_K,
    Form,
    Preferences,
    default_values,
    first,
    form_values,
    parse_email,
    parse_preferences,
    timezones,
)
from digest.web.pages import PageError, Site, client_ip, is_int, is_str, positive_int
from digest.web.ratelimit import refusal

log = logging.getLogger(__name__)
Endpoint = tuple[str, Callable[[Request], Any], list[str]]


def _already_confirmed() -> PageError:
    return PageError(409, "Already confirmed", "This link has been used already, so nothing was changed. To change "
                     "your settings, use the \u201cManage your subscription\u201d link in your digest.")


def _replaced() -> PageError:
    return PageError(410, "This link was replaced by a newer one", "A newer confirmation email was sent to this "
                     "address after this one, so this link no longer works and nothing was changed. Use the link "
                     "in the newest email.")


class ConfirmationSender(Protocol):
    def send(self, *, key: int, to_addr: str, confirm_url: str, expires_hours: int, now: datetime,
             updating: bool = False) -> DeliveryOutcome: ...


def form_context(site: Site) -> dict[str, Any]:
    """What the preference fields need besides the values and errors."""
    return {"source_names": list(site.options.defaults.sources), "timezones": timezones(), "hours": range(24),
            "max_top_k": MAX_TOP_K}


class SignupPages:
    def __init__(self, site: Site, mailer: ConfirmationSender | None) -> None:
        self.site = site
        self.mailer = mailer

    def endpoints(self) -> list[Endpoint]:
        return [
            ("/", self.subscribe, ["GET"]),
            ("/subscribe", self.subscribe, ["GET", "POST"]),
            ("/confirm/{token}", self.confirm, ["GET", "POST"]),
        ]

    @property
    def _expiry_hours(self) -> int:
        return int(self.site.options.signup_expiry.total_seconds() // 3600)

    # ---- subscribe ---------------------------------------------------------------------------
    def _form(self, request: Request, values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Response:
        return self.site.form_page(request, "subscribe.html.j2", status, values=values, errors=errors,
                                   consent_text=CONSENT_TEXT, consent_checked=bool(values.get("consent")),
                                   expiry_hours=self._expiry_hours, **form_context(self.site))

    async def subscribe(self, request: Request) -> Response:
        if not self.site.options.signup_enabled or self.mailer is None:
            raise PageError(404, "Sign-ups are closed", "This digest does not take new subscribers on the web.")
        if request.method != "POST":
            return self._form(request, default_values(self.site.options.defaults), {})
        form = await self.site.read_form(request)
        return await run_in_threadpool(self._signup, request, form)

    def _signup(self, request: Request, form: Form) -> Response:
        errors: dict[str, str] = {}
        address = parse_email(form, errors)
        prefs = parse_preferences(form, self.site.options.defaults, errors)
        if first(form, "consent") != "yes":
            errors["consent"] = "Tick the box to agree to receive the digest."
        values = {**form_values(form), "consent": first(form, "consent") == "yes"}
        if errors or address is None or prefs is None:
            return self._form(request, values, errors, 400)
        problem = self.send_confirmation(request, address, prefs.as_json())
        if problem is not None:
            errors["email"] = problem
            return self._form(request, values, errors, 400)
        return self.site.page("signup_sent.html.j2", address=address, expiry_hours=self._expiry_hours)

    def send_confirmation(self, request: Request, address: str, preferences: dict[str, Any]) -> str | None:
        """Store a pending sign-up and mail its link. A message for the email field when the address is
        refused for good; PageError for the rate limit (429) or a mail server that is down (503)."""
        if self.mailer is None:
            raise PageError(503, "We could not send the confirmation email", "This server sends no email.")
        now, ip, opts = self.site.db_now(), client_ip(request), self.site.options
        nonce = secrets.token_urlsafe(16)
        expires = now + opts.signup_expiry
        with self.site.engine.begin() as conn:
            # Used and expired sign-ups go once nothing needs them: not for the rate limit, not to tell a
            # replayed link from a forged one (an expired link is refused by its signed expiry).
            signups.purge(conn, now - opts.limits.window)
            why = refusal(conn, opts.limits, ip=ip, email=address, now=now)
            existing = sub_store.get_subscriber(conn, address)
            # The mail says so when confirming changes a subscription this address already has.
            updating = existing is not None and existing.active and "replaces" not in preferences
            if why is None:
                signup_id = signups.create_signup(
                    conn, email=address, nonce=nonce, preferences=preferences, ip=ip,
                    consent_version=CONSENT_VERSION, consent_sha256=CONSENT_SHA256, now=now, expires_at=expires)
        if why is not None:
            log.info("sign-up refused by the rate limit (%s)", ip)
            raise PageError(429, "Please wait a little", why + " Try again in an hour.")
        url = opts.base_url + self.site.paths.confirm_url(signup_id, nonce, expires)
        try:
            outcome = self.mailer.send(key=signup_id, to_addr=address, confirm_url=url,
                                       expires_hours=self._expiry_hours, now=self.site.now(), updating=updating)
        except ValueError as exc:  # the mailer refuses what the form let through: a field error, no row left
            log.error("sign-up %s: the mailer refused the address: %s", signup_id, exc)
            with self.site.engine.begin() as conn:
                signups.delete_signup(conn, signup_id)
            return "Our mail server cannot send to this address. Please check it."
        except DeliveryError as exc:
            log.error("sign-up %s: confirmation email not sent: %s", signup_id, exc)
            raise PageError(503, "We could not send the confirmation email",
                            "The mail server is not reachable right now. Please try again later.") from None
        if outcome.status == "failed":
            log.warning("sign-up %s: confirmation refused: %s", signup_id, outcome.detail)
            return "Our mail server could not deliver to this address. Please check it."
        if outcome.status != "sent":
            raise PageError(503, "We could not send the confirmation email", "Please try again in a few minutes.")
        log.info("sign-up %s: confirmation sent", signup_id)
        return None

    # ---- confirm -----------------------------------------------------------------------------
    def _verify(self, token: str) -> tuple[int, str]:
        invalid = PageError(400, "This confirmation link is not valid",
                            "It may have been cut short or changed. Copy the whole link from the email, "
                            "or sign up again.")
        data = self.site.signed("confirm", token, {"g": positive_int, "n": is_str, "e": is_int}, invalid, linked=False)
        sid, nonce, expires = data["g"], data["n"], data["e"]
        if expires < epoch(self.site.now()):
            raise self._expired()
        return sid, nonce

    def _expired(self) -> PageError:
        return PageError(410, "This confirmation link has expired",
                         f"A sign-up waits {self._expiry_hours} hours for its confirmation. Please sign up again.")

    def _pending(self, conn: Connection, sid: int, nonce: str) -> signups.Signup:
        signup = signups.get_signup(conn, sid)
        if signup is None or not secrets.compare_digest(signup.nonce, nonce):
            raise self._expired()
        if signup.confirmed_at is not None:
            raise _already_confirmed()
        if signups.newest_id(conn, signup.email) != sid:  # only the newest confirmation link acts
            raise _replaced()
        return signup

    async def confirm(self, request: Request) -> Response:
        sid, nonce = self._verify(request.path_params["token"])
        if request.method == "POST":
            await self.site.read_form(request)  # CSRF
            return await run_in_threadpool(self._confirm, request, sid, nonce)
        return await run_in_threadpool(self._ask, request, sid, nonce)

    def _ask(self, request: Request, sid: int, nonce: str) -> Response:
        with self.site.engine.connect() as conn:
            signup = self._pending(conn, sid, nonce)
            before = sub_store.get_subscriber(conn, signup.email)
        prefs = Preferences.from_json(signup.preferences)
        moving = "replaces" in signup.preferences
        return self.site.form_page(request, "confirm.html.j2", state="ask", address=signup.email, prefs=prefs,
                                   moving=moving, before=before if before and before.active and not moving else None)

    def _confirm(self, request: Request, sid: int, nonce: str) -> Response:
        now = self.site.db_now()
        with self.site.engine.begin() as conn:
            signup = self._pending(conn, sid, nonce)
            if not signups.mark_confirmed(conn, sid, now):  # a second click racing this one won
                raise _already_confirmed()
            prefs = Preferences.from_json(signup.preferences)
            moving = signup.preferences.get("replaces")
            # An address change asked for on the manage page moves that subscription and its history.
            if isinstance(moving, int) and not sub_store.change_email(conn, moving, signup.email, now):
                raise PageError(409, "This address cannot take over the subscription",
                                    "It already has a subscription of its own, or the old one was deleted. "
                                    "Nothing was changed.")
            if isinstance(moving, int):  # the old mailbox's links no longer control the subscription
                sub_store.renew_link_key(conn, moving, now)
            before = sub_store.get_subscriber(conn, signup.email)
            sub, created = sub_store.upsert_subscriber(
                conn, email=signup.email, keywords=prefs.keywords, exclude=prefs.exclude, top_k=prefs.top_k,
                timezone=prefs.timezone, delivery_hour=prefs.delivery_hour, cadence=prefs.cadence,
                sources=prefs.sources, trending=prefs.trending, authors=prefs.authors, now=now)
            if before is not None and not isinstance(moving, int):
                sub_store.set_paused(conn, sub.id, False, now)  # signing up again means: send it
                if (before.keywords, before.exclude) != (sub.keywords, sub.exclude):
                    event_store.forget_model(conn, sub.id)  # the keyword profile is part of the model
            same_wording = signup.consent_sha256 == CONSENT_SHA256
            consent_store.record_consent(
                conn, subscriber_id=sub.id, signed_up_at=signup.created_at, signup_ip=signup.ip, confirmed_at=now,
                confirm_ip=client_ip(request), wording_version=signup.consent_version,
                wording_sha256=signup.consent_sha256,
                wording=CONSENT_TEXT if same_wording else f"(wording version {signup.consent_version})")
        log.info("sign-up %s confirmed: subscriber %s %s", sid, sub.id, "created" if created else "updated")
        updated = before is not None and before.active and not isinstance(moving, int)
        response = self.site.page("confirm.html.j2", state="done", address=sub.email, prefs=prefs,
                                  moving=isinstance(moving, int), updated=updated,
                                  manage_href=self.site.paths.manage_url(sub.id))
        # The confirmation proves the address as a manage link does: the reader's pages (the rating
        # offered next) open without another link.
        session.start(request, response, self.site, sub.id)
        return response

