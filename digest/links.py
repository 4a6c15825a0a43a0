"""The URLs placed in a digest: tracked paper links, feedback links and unsubscribe, all signed.

Tokens carry opaque ids only: subscriber id, paper id, delivery id. The web app resolves the
paper's stored URL by id, so a link can never be turned into a redirect to somewhere else.
"""

from __future__ import annotations

from digest.domain import Paper, PickLinks
from digest.mail.render import safe_url
from digest.web.tokens import LinkSigner


class LinkBuilder:
    def __init__(self, base_url: str, signer: LinkSigner) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer

    def _url(self, route: str, purpose: str, payload: dict[str, int | str]) -> str:
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
