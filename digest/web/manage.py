"""The manage page, reached from the signed, expiring link in every digest: edit the subscription,
pause or resume, email or feed only, see and remove starred papers, export the data as JSON, delete it
all; the private feed's address and a new one.

The link's token (purpose "manage", with its expiry inside) is the reader's only credential, so an
expired or altered one gets a clear 4xx page and changes nothing. Forms carry the CSRF token too.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.addresses import address_key
from digest.domain import Subscriber
from digest.signing.links import epoch
from digest.store import events as event_store
from digest.store import personal_data
from digest.store import subscribers as sub_store
from digest.text import clean_text, safe_url
from digest.web import session
from digest.web.channels import KIND_CHOICES, ChannelForms
from digest.web.feed import FEED_DAYS, feed_address
from digest.web.forms import Form, first, form_values, parse_email, parse_preferences, subscriber_values
from digest.web.pages import SECURITY_HEADERS, PageError, Site, is_int, mask_email, positive_int
from digest.web.signup import Endpoint, SignupPages, form_context
from digest.web.starred import paper_to_remove, starred_papers, unstar

log = logging.getLogger(__name__)
NOTICES = {
    "saved": "Saved. Your next digest follows these settings.",
    "paused": "Paused. No digest is sent until you resume.",
    "resumed": "Resumed. The digest comes again at your chosen time.",
    "unstarred": "Removed from your starred papers.",
    "channel": "Chat channel added: your next digest goes there too.",
    "unchannel": "Chat channel removed.",
    "feed": "A new feed address: the old one no longer works. Put this one in your feed reader.",
    "email_on": "Email is on: your next digest comes by email, and to your feed.",
    "email_off": "Feed only: no more email. Your picks go on in your feed.",
    "address": "Saved. We sent a confirmation link to the new address; until it is confirmed, the digest goes "
               "to the current one.",
}


class ManagePages:
    def __init__(self, site: Site, signup: SignupPages) -> None:
        self.site = site
        self.signup = signup  # an address change is confirmed like a sign-up
        self.channels = ChannelForms(site)

    def endpoints(self) -> list[Endpoint]:
        return [
            ("/manage/{token}", self.manage, ["GET", "POST"]),
            ("/manage/{token}/pause", self.pause, ["POST"]),
            ("/manage/{token}/unstar", self.unstar, ["POST"]),
            ("/manage/{token}/export", self.export, ["GET"]),
            ("/manage/{token}/delete", self.delete, ["GET", "POST"]),
            ("/manage/{token}/signout", self.sign_out, ["POST"]),
            ("/manage/{token}/channels", self.add_channel, ["POST"]),
            ("/manage/{token}/channels/remove", self.remove_channel, ["POST"]),
            ("/manage/{token}/feed", self.new_feed_address, ["POST"]),
            ("/manage/{token}/email", self.email_choice, ["POST"]),
        ]

    # ---- helpers -----------------------------------------------------------------------------
    def _verify(self, token: str) -> int:
        invalid = PageError(400, "This manage link is not valid",
                            "It may have been cut short or changed. Use the link in your latest digest.")
        data = self.site.signed("manage", token, {"s": positive_int, "e": is_int}, invalid)
        sid: int = data["s"]
        expires: int = data["e"]
        self.site.check_link_key(sid, data)
        if expires < epoch(self.site.now()):
            raise PageError(410, "This manage link has expired",
                            f"For your safety a manage link works for {self.site.options.manage_days} days. Use the "
                            "link in your latest digest, or sign up again with the same address: the confirmation "
                            "leads back here.")
        return sid

    def _subscriber(self, sid: int) -> Subscriber:
        with self.site.engine.connect() as conn:
            sub = sub_store.get_subscriber_by_id(conn, sid)
        if sub is None:
            raise PageError(404, "Subscription not found", "This subscription no longer exists.")
        return sub

    def _starred(self, sid: int) -> list[dict[str, Any]]:
        return [{"id": p.id, "title": clean_text(p.title) or "(untitled)",
                 "url": safe_url(p.url) or safe_url(p.pdf_url)} for p in starred_papers(self.site.engine, sid)]

    def _page(self, request: Request, token: str, sub: Subscriber, values: dict[str, Any], errors: dict[str, str],
              status: int = 200, notice: str | None = None, hook_values: dict[str, str] | None = None) -> Response:
        base = f"/manage/{token}"
        response = self.site.form_page(
            request, "manage.html.j2", status, address=mask_email(sub.email), sub=sub, values=values, errors=errors,
            notice=notice, starred=self._starred(sub.id), action=base, export_href=f"{base}/export",
            delete_href=f"{base}/delete", signout_action=f"{base}/signout", search_href="/search",
            feed_url=feed_address(self.site, sub.id), feed_days=FEED_DAYS,
            unsubscribe_href=self.site.paths.unsubscribe_url(sub.id),
            channels=self.channels.listed(sub.id), hook_values=hook_values or self.channels.values(),
            hook_kinds=KIND_CHOICES, **form_context(self.site))
        session.start(request, response, self.site, sub.id)  # the reader's other pages need no link
        return response

    def _back(self, token: str, done: str) -> Response:
        # Post/redirect/get: reloading the page does not send the form again.
        return RedirectResponse(f"/manage/{token}?done={done}", status_code=303, headers=SECURITY_HEADERS)

    # ---- routes ------------------------------------------------------------------------------
    async def manage(self, request: Request) -> Response:
        token = request.path_params["token"]
        sid = self._verify(token)
        if request.method == "POST":
            form = await self.site.read_form(request)
            return await run_in_threadpool(self._save, request, token, sid, form)
        sub = await run_in_threadpool(self._subscriber, sid)
        notice = NOTICES.get(request.query_params.get("done", ""))
        values = subscriber_values(sub, self.site.options.defaults)
        return await run_in_threadpool(self._page, request, token, sub, values, {}, 200, notice)

    def _save(self, request: Request, token: str, sid: int, form: Form) -> Response:
        sub = self._subscriber(sid)
        errors: dict[str, str] = {}
        address = parse_email(form, errors)
        prefs = parse_preferences(form, self.site.options.defaults, errors)
        if prefs is None or address is None:
            return self._page(request, token, sub, form_values(form), errors, 400)
        moving = address_key(address) != address_key(sub.email)
        if moving:
            # The new address must confirm before anything goes there; the rest is saved now.
            problem = self.signup.send_confirmation(request, address, {**prefs.as_json(), "replaces": sid})
            if problem is not None:
                return self._page(request, token, sub, form_values(form), {"email": problem}, 400)
        with self.site.engine.begin() as conn:
            sub_store.update_preferences(
                conn, sid, keywords=prefs.keywords, exclude=prefs.exclude, top_k=prefs.top_k,
                timezone=prefs.timezone, delivery_hour=prefs.delivery_hour, cadence=prefs.cadence,
                sources=prefs.sources, trending=prefs.trending, authors=prefs.authors, now=self.site.db_now())
            if (list(sub.keywords), list(sub.exclude)) != (prefs.keywords, prefs.exclude):
                event_store.forget_model(conn, sid)  # the keyword profile is part of the model
        log.info("subscriber %s changed their settings", sid)
        return self._back(token, "address" if moving else "saved")

    async def add_channel(self, request: Request) -> Response:
        token = request.path_params["token"]
        sid = self._verify(token)
        form = await self.site.read_form(request)
        errors = await run_in_threadpool(self.channels.add, sid, form)
        if not errors:
            return self._back(token, "channel")
        sub = await run_in_threadpool(self._subscriber, sid)
        values = subscriber_values(sub, self.site.options.defaults)
        return await run_in_threadpool(self._page, request, token, sub, values, errors, 400, None,
                                       self.channels.values(form))

    async def remove_channel(self, request: Request) -> Response:
        token = request.path_params["token"]
        sid = self._verify(token)
        form = await self.site.read_form(request)
        await run_in_threadpool(self.channels.remove, sid, form)
        return self._back(token, "unchannel")

    async def pause(self, request: Request) -> Response:
        token = request.path_params["token"]
        sid = self._verify(token)
        form = await self.site.read_form(request)
        paused = first(form, "action") != "resume"
        await run_in_threadpool(self._set_paused, sid, paused)
        return self._back(token, "paused" if paused else "resumed")

    def _set_paused(self, sid: int, paused: bool) -> None:
        self._subscriber(sid)
        with self.site.engine.begin() as conn:
            sub_store.set_paused(conn, sid, paused, self.site.db_now())

    async def unstar(self, request: Request) -> Response:
        token = request.path_params["token"]
        sid = self._verify(token)
        paper_id = paper_to_remove(await self.site.read_form(request))
        await run_in_threadpool(unstar, self.site.engine, sid, paper_id)
        return self._back(token, "unstarred")

    def export(self, request: Request) -> Response:
        sid = self._verify(request.path_params["token"])
        with self.site.engine.connect() as conn:
            data = personal_data.export_subscriber(conn, sid)
        if data is None:
            raise PageError(404, "Subscription not found", "This subscription no longer exists.")
        body = json.dumps(data, indent=2, ensure_ascii=False, default=str)
        return Response(body, media_type="application/json", headers={
            **SECURITY_HEADERS, "Content-Disposition": 'attachment; filename="paper-digest-my-data.json"'})

    async def delete(self, request: Request) -> Response:
        token = request.path_params["token"]
        sid = self._verify(token)
        if request.method != "POST":
            sub = await run_in_threadpool(self._subscriber, sid)
            return self.site.form_page(request, "delete.html.j2", state="ask", address=mask_email(sub.email),
                                       back_href=f"/manage/{token}", export_href=f"/manage/{token}/export")
        await self.site.read_form(request)  # CSRF
        return await run_in_threadpool(self._delete, sid)

    async def sign_out(self, request: Request) -> Response:
        """Every link mailed so far stops working (a forwarded digest, a shared inbox); the next digest
        brings new ones."""
        sid = self._verify(request.path_params["token"])
        await self.site.read_form(request)  # CSRF
        return await run_in_threadpool(self._sign_out, sid)

    def _sign_out(self, sid: int) -> Response:
        with self.site.engine.begin() as conn:
            if not sub_store.renew_link_key(conn, sid, self.site.db_now()):
                raise PageError(404, "Subscription not found", "This subscription no longer exists.")
        log.info("subscriber %s signed out all their links", sid)
        response = self.site.page("signed_out.html.j2")
        session.end(response)
        return response

    async def new_feed_address(self, request: Request) -> Response:
        """A new feed key: the old feed address answers 410 (someone else has it, or it was shared)."""
        token = request.path_params["token"]
        sid = self._verify(token)
        await self.site.read_form(request)  # CSRF
        await run_in_threadpool(self._new_feed_key, sid)
        return self._back(token, "feed")

    def _new_feed_key(self, sid: int) -> None:
        with self.site.engine.begin() as conn:
            if sub_store.renew_feed_key(conn, sid, self.site.db_now()) is None:
                raise PageError(404, "Subscription not found", "This subscription no longer exists.")
        log.info("subscriber %s took a new feed address", sid)

    async def email_choice(self, request: Request) -> Response:
        """Email on, or feed only (the digests are still recorded, for the feed)."""
        token = request.path_params["token"]
        sid = self._verify(token)
        form = await self.site.read_form(request)
        return await run_in_threadpool(self._set_email, request, token, sid, first(form, "email"))

    def _set_email(self, request: Request, token: str, sid: int, choice: str) -> Response:
        sub = self._subscriber(sid)
        if choice not in ("on", "off"):
            errors = {"email_channel": "Choose email, or the feed only."}
            return self._page(request, token, sub, subscriber_values(sub, self.site.options.defaults), errors, 400)
        with self.site.engine.begin() as conn:
            sub_store.set_email_enabled(conn, sid, choice == "on", self.site.db_now())
        log.info("subscriber %s turned email %s", sid, choice)
        return self._back(token, f"email_{choice}")

    def _delete(self, sid: int) -> Response:
        with self.site.engine.begin() as conn:
            if not personal_data.delete_subscriber(conn, sid):
                raise PageError(404, "Subscription not found", "This subscription no longer exists.")
        log.info("subscriber %s deleted their data", sid)
        response = self.site.page("delete.html.j2", state="done")
        session.end(response)
        return response
