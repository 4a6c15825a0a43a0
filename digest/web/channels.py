"""The manage page's chat channels: add a webhook (checked at once, each field's error beside it,
nothing stored when refused) or remove one. The URL and token are never shown back, not even in a
refused form: the reader types them again."""

from __future__ import annotations

import logging
from typing import Any

from digest.hooks.spec import HookInputError, check_hook
from digest.store import channels as channel_store
from digest.web.forms import Form, first
from digest.web.pages import PageError, Site

log = logging.getLogger(__name__)
FIELDS = {"url": "hook_url", "kind": "hook_kind", "room": "hook_room", "token": "hook_token"}
KIND_CHOICES = (("", "Tell from the address"), ("slack", "Slack"), ("discord", "Discord"), ("matrix", "Matrix"),
                ("json", "Any JSON webhook"))


class ChannelForms:
    def __init__(self, site: Site) -> None:
        self.site = site

    def listed(self, sid: int) -> list[dict[str, Any]]:
        """The reader's channels as the page shows them (masked)."""
        with self.site.engine.connect() as conn:
            found = channel_store.list_for(conn, sid)
        return [{"id": c.id, "label": c.label, "paused": c.paused_at is not None, "last_error": c.last_error}
                for c in found]

    def values(self, form: Form | None = None) -> dict[str, str]:
        """What the add form shows again: the kind and room, never the URL or the token."""
        form = form or {}
        return {"hook_kind": first(form, "hook_kind"), "hook_room": first(form, "hook_room")[:300]}

    def add(self, sid: int, form: Form) -> dict[str, str]:
        """Field errors, or {} once the channel is stored."""
        options = self.site.options
        try:
            spec = check_hook(first(form, "hook_url"), kind=first(form, "hook_kind") or None,
                              room=first(form, "hook_room") or None, token=first(form, "hook_token") or None,
                              allow_private=options.webhooks_allow_private)
        except HookInputError as exc:
            return {FIELDS[exc.field]: str(exc)}
        try:
            with self.site.engine.begin() as conn:
                channel_store.add(conn, sid, kind=spec.kind, url=spec.url, room_id=spec.room_id, token=spec.token,
                                  now=self.site.db_now())
        except channel_store.TooMany as exc:
            return {"hook_url": str(exc)}
        log.info("subscriber %s added a chat channel: %s", sid, spec.label)
        return {}

    def remove(self, sid: int, form: Form) -> None:
        try:
            channel_id = int(first(form, "channel"))
        except ValueError:
            raise PageError(400, "Nothing to remove", "The form named no channel.") from None
        with self.site.engine.begin() as conn:
            if channel_store.remove(conn, sid, channel_id, self.site.db_now()) is None:
                raise PageError(404, "Channel not found", "It may have been removed already.")
