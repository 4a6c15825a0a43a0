"""A digest in the browser ("view in browser"): the picks recorded in the deliveries ledger, with the
same signed star / less-like-this links as the email. The view link never expires, so the page offers
no manage link (that one must expire: it can export and delete).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from digest.domain import DigestContent, Pick
from digest.mail.render import DigestRenderer, long_date
from digest.signing.links import LinkBuilder
from digest.store import events as event_store
from digest.store.deliveries import TRENDING_RANK_BASE, delivered_digest
from digest.store.link_keys import StoredLinkKeys
from digest.store.papers import papers_by_ids
from digest.store.subscribers import get_subscriber_by_id
from digest.web import session
from digest.web.pages import PageError, Site, positive_int
from digest.web.paper import paper_path
from digest.web.signup import Endpoint

ABSTRACT_CHARS = 1500  # more than the email: the page has room


class DigestView:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.renderer = DigestRenderer(templates_dir=site.options.templates_dir, abstract_chars=ABSTRACT_CHARS)
        self.keys = StoredLinkKeys(site.engine)

    def endpoints(self) -> list[Endpoint]:
        return [("/view/{token}", self.view, ["GET"])]

    def view(self, request: Request) -> Response:
        token = request.path_params["token"]
        data = self.site.signed("view", token, {"s": positive_int, "d": positive_int})
        sid, did = data["s"], data["d"]
        self.site.check_link_key(sid, data)
        # The paper pages (similar papers) open to this reader's session, or to anyone when public.
        browse = self.site.options.public_search or session.reader(request, self.site) == sid
        # Absolute links, as in the email (the renderer keeps http(s) links only), with the reader's
        # key read once for the page, not once for each of its fifty-odd links.
        key = self.keys(sid)
        links = LinkBuilder(self.site.options.base_url, self.site.signer, key_of=lambda _: key)
        with self.site.engine.connect() as conn:
            sub = get_subscriber_by_id(conn, sid)
            found = delivered_digest(conn, sid, did) if sub is not None else None
            if sub is None or found is None:
                raise PageError(404, "Digest not found", "This digest is no longer kept.")
            digest_date, items = found
            papers = papers_by_ids(conn, [i.paper_id for i in items])
            opinions = event_store.list_events(conn, sid, kinds=["star", "dislike"])
        starred = {e.paper_id for e in opinions if e.kind == "star" and not e.flagged}
        disliked = {e.paper_id for e in opinions if e.kind == "dislike" and not e.flagged}
        chosen = [(i.rank, Pick(papers[i.paper_id], i.score, i.matched, i.reason)) for i in items
                  if i.paper_id in papers]
        picks = tuple(p for r, p in chosen if r < TRENDING_RANK_BASE)
        trending = tuple(p for r, p in chosen if r >= TRENDING_RANK_BASE)
        content = DigestContent(
            to_addr=sub.email, digest_date=digest_date, picks=picks,
            links=tuple(links.pick_links(sid, p.paper, did) for p in picks),
            trending=trending, trending_links=tuple(links.pick_links(sid, p.paper, did) for p in trending),
            unsubscribe_url=None, keywords=sub.keywords)
        return self.site.page("view.html.j2", date_long=long_date(digest_date),
                              picks=self.renderer.pick_views(content), trending=self.renderer.trending_views(content),
                              starred=starred, disliked=disliked, active=sub.active,
                              paper_pages={p.paper.id: paper_path(p.paper) for p in picks} if browse else {})

