"""The URLs placed in a digest: paper links (http/https only) and signed action links."""

from __future__ import annotations

from urllib.parse import urlsplit

from digest.domain import Paper, PickLinks
from digest.web.tokens import LinkSigner


def safe_http_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


class LinkBuilder:
    def __init__(self, base_url: str, signer: LinkSigner) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer

    def paper_links(self, paper: Paper) -> PickLinks:
        return PickLinks(open_url=safe_http_url(paper.url), pdf_url=safe_http_url(paper.pdf_url))

    def unsubscribe_url(self, subscriber_id: int) -> str:
        return f"{self.base_url}/unsubscribe/{self.signer.sign('unsubscribe', {'s': subscriber_id})}"
