"""The URLs placed in a digest: tracked paper links, feedback links and unsubscribe, all signed.

Tokens carry opaque ids only: subscriber id, paper id, delivery id. The web app resolves the
paper's stored URL by id, so a link can never be turned into a redirect to somewhere else.
Manage and confirmation links carry their expiry ("e", Unix seconds) inside the signed payload, so
the web app checks it against its own clock; the feed's address carries the reader's feed key ("f").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from digest.domain import Paper, PickLinks
from digest.signing.tokens import LinkSigner
from digest.text import safe_url


def _utc_now() -> datetime:
    return datetime.now(UTC)


def epoch(moment: datetime) -> int:
    """Unix seconds; a naive datetime is taken as UTC (the store's convention)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp())


class LinkBuilder:
    def __init__(self, base_url: str, signer: LinkSigner, *, manage_days: int = 30,
                 now: Callable[[], datetime] = _utc_now, key_of: Callable[[int], str | None] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.manage_days = manage_days
        self.now = now
        # The subscriber's link key ("k" in every link that names them; see store.link_keys): links
        # die with the row, or when the reader signs them all out.
        self.key_of = key_of

    def _url(self, route: str, purpose: str, payload: dict[str, int | str]) -> str:
        sid = payload.get("s")
        key = self.key_of(sid) if self.key_of is not None and isinstance(sid, int) else None
        if key:
            payload = {**payload, "k": key}
        return f"{self.base_url}/{route}/{self.signer.sign(purpose, payload)}"

    def pick_links(self, subscriber_id: int, paper: Paper, delivery_id: int | None = None) -> PickLinks:
        if paper.id is None:  # not stored: nothing to resolve a token against
            return PickLinks(open_url=safe_url(paper.url), pdf_url=safe_url(paper.pdf_url))
        base: dict[str, int | str] = {"s": subscriber_id, "p": paper.id}
        if delivery_id is not None:
            base["d"] = delivery_id
        return PickLinks(
            open_url=self._url("o", "open", base) if safe_url(paper.url) else None,
            pdf_url=self._url("o", "open", {**base, "t": "pdf"}) if safe_url(paper.pdf_url) else None,
            star_url=self._url("star", "star", base),
            dislike_url=self._url("less", "dislike", base),
        )

    def unsubscribe_url(self, subscriber_id: int) -> str:
        return self._url("unsubscribe", "unsubscribe", {"s": subscriber_id})

    def manage_url(self, subscriber_id: int) -> str:
        """Expires after manage_days: it opens the export and delete buttons, so it must not live forever."""
        expires = self.now() + timedelta(days=self.manage_days)
        return self._url("manage", "manage", {"s": subscriber_id, "e": epoch(expires)})

    def view_url(self, subscriber_id: int, delivery_id: int) -> str:
        """The digest in a browser; like the feedback links it does not expire."""
        return self._url("view", "view", {"s": subscriber_id, "d": delivery_id})

    def feed_url(self, subscriber_id: int, feed_key: str) -> str:
        """The reader's private Atom feed. It does not expire (feed readers poll for ever): a new feed
        key ("new feed address") or a new link key ("sign out all my links") retires it."""
        return self._url("feed", "feed", {"s": subscriber_id, "f": feed_key}) + ".atom"

    def confirm_url(self, signup_id: int, nonce: str, expires_at: datetime) -> str:
        return self._url("confirm", "confirm", {"g": signup_id, "n": nonce, "e": epoch(expires_at)})
