"""The reader's private Atom feed (/feed/<token>.atom): their picks of the last FEED_DAYS days from the
deliveries ledger, newest first, with the reasons and the signed links of the email.

The address is a signed token (purpose "feed") naming the subscriber with their link key and their
feed key. It never expires (feed readers poll for ever); "new feed address" on the manage page gives
a new feed key and the old address answers 410, "sign out all my links" (a new link key) retires it
as it does every link. A forged, cut or garbled token is a plain 404 that tells nothing.

Polls are cheap: the ETag and Last-Modified come from the ledger rows and the papers' update times,
read before anything is rendered, and a matching If-None-Match (or, without one, If-Modified-Since)
answers 304. Each feed may be fetched FEED_LIMIT times an hour (429 past it).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response

from digest.domain import DigestContent, Paper, Pick, Subscriber
from digest.mail.render import DigestRenderer, long_date
from digest.signing.links import LinkBuilder
from digest.store import deliveries as ledger
from digest.store import subscribers as sub_store
from digest.store.link_keys import StoredLinkKeys
from digest.store.papers import last_updated, papers_by_ids
from digest.text import clean_text
from digest.web.atom import ATOM_TYPE, FeedEntry, FeedHead, atom_document, entry_id, feed_id
from digest.web.pages import PageError, Site, is_str, positive_int
from digest.web.ratelimit import RecentRequests
from digest.web.signup import Endpoint

log = logging.getLogger(__name__)

FEED_DAYS = 14
FEED_LIMIT = 60  # fetches of one feed per hour: a reader polling every minute still gets through
ABSTRACT_CHARS = 1500  # as the web view: a feed reader has room
# Changes whenever what a feed shows changes shape, so that readers refetch after an upgrade.
FORMAT = "1"
# Public, but not shared: the feed names one reader's picks and carries their signed links.
CACHE_CONTROL = "private, no-cache"
_NOT_FOUND = PageError(404)


def feed_address(site: Site, subscriber_id: int) -> str | None:
    """The reader's feed address as the manage page and the CLI show it (absolute); None when the row
    is gone or has no feed key."""
    with site.engine.connect() as conn:
        key = sub_store.feed_key(conn, subscriber_id)
    if key is None:
        return None
    links = LinkBuilder(site.options.base_url, site.signer, key_of=StoredLinkKeys(site.engine))
    return links.feed_url(subscriber_id, key)


@dataclass(frozen=True)
class _Version:
    """What a response's validators are made of: read before anything is rendered."""

    etag: str
    last_modified: datetime  # aware UTC, whole seconds


class FeedPages:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.renderer = DigestRenderer(templates_dir=site.options.templates_dir, abstract_chars=ABSTRACT_CHARS)
        self.keys = StoredLinkKeys(site.engine)
        self.limit = RecentRequests(FEED_LIMIT, timedelta(hours=1))

    def endpoints(self) -> list[Endpoint]:
        return [("/feed/{token}.atom", self.feed, ["GET"])]  # GET routes answer HEAD too

    def _reader(self, token: str) -> Subscriber:
        """The subscriber this address belongs to; 404 for anything not signed by us or of a row that
        is gone, 410 for an address replaced by a newer one or a subscription that ended."""
        data = self.site.signed("feed", token, {"s": positive_int, "f": is_str}, _NOT_FOUND)
        sid: int = data["s"]
        if not self.site.link_key_matches(sid, data):
            raise _NOT_FOUND
        with self.site.engine.connect() as conn:
            sub = sub_store.get_subscriber_by_id(conn, sid)
            key = sub_store.feed_key(conn, sid)
        if sub is None or key is None:
            raise _NOT_FOUND
        if key != data["f"]:
            raise PageError(410, "This feed address was replaced",
                            "A newer address took its place. Copy the one on your manage page into your feed reader.")
        if not sub.active:
            raise PageError(410, "This subscription has ended", "Subscribe again to get a feed.")
        return sub

    def feed(self, request: Request) -> Response:
        sub = self._reader(request.path_params["token"])
        wait = self.limit.wait(sub.id, self.site.now())
        if wait is not None:
            log.info("feed of subscriber %s: over %d fetches an hour", sub.id, FEED_LIMIT)
            raise PageError(429, "Please wait a little", "This feed was fetched too often: poll it less often.",
                            headers={"Retry-After": str(max(1, round(wait)))})
        today = self.site.now().astimezone(UTC).date()
        since = today - timedelta(days=FEED_DAYS - 1)
        key = self.keys(sub.id)
        with self.site.engine.connect() as conn:
            digests = ledger.recorded_digests(conn, sub.id, since)
            paper_ids = sorted({p.paper_id for d in digests for p in d.picks})
            changed = last_updated(conn, paper_ids)
            version = self._version(sub, key, digests, changed)
            headers = {"ETag": version.etag, "Last-Modified": format_datetime(version.last_modified, usegmt=True),
                       "Cache-Control": CACHE_CONTROL}
            if _not_modified(request, version):
                return Response(status_code=304, headers=headers)
            papers = papers_by_ids(conn, paper_ids)
            created = self._created(sub.id)
        links = LinkBuilder(self.site.options.base_url, self.site.signer, key_of=lambda _: key)
        entries = [entry for d in digests for entry in self._entries(sub, d, papers, links)]
        head = FeedHead(
            id=feed_id(self.site.options.base_url, sub.id, created),
            title="Your paper digest",
            subtitle=f"Your picks of the last {FEED_DAYS} days: {', '.join(sub.keywords)}",
            self_url=str(request.url), updated=version.last_modified)
        return Response(atom_document(head, entries), media_type=ATOM_TYPE, headers=headers)

    def _created(self, sid: int) -> date:
        with self.site.engine.connect() as conn:
            state = sub_store.link_key_state(conn, sid)
        return state[2].date() if state is not None else date(2000, 1, 1)

    def _version(self, sub: Subscriber, link_key: str | None, digests: Sequence[ledger.RecordedDigest],
                 papers_changed: datetime | None) -> _Version:
        shown = [[d.id, d.digest_date.isoformat(), [[p.rank, p.paper_id, p.reason, list(p.matched)] for p in d.picks]]
                 for d in digests]
        times = [d.created_at for d in digests] + ([papers_changed] if papers_changed else [])
        newest = max(times) if times else datetime(2000, 1, 1)
        state = [FORMAT, self.site.options.base_url, link_key, list(sub.keywords), shown, newest.isoformat()]
        digest = hashlib.sha256(json.dumps(state, ensure_ascii=False).encode()).hexdigest()[:32]
        modified = newest.replace(tzinfo=UTC, microsecond=0) if newest.tzinfo is None else newest.replace(microsecond=0)
        return _Version(f'"{digest}"', modified)

    def _entries(self, sub: Subscriber, d: ledger.RecordedDigest, papers: dict[int, Paper],
                 links: LinkBuilder) -> list[FeedEntry]:
        picks = tuple(Pick(papers[p.paper_id], p.score, p.matched, p.reason) for p in d.picks if p.paper_id in papers)
        content = DigestContent(to_addr=sub.email, digest_date=d.digest_date, picks=picks,
                                links=tuple(links.pick_links(sub.id, p.paper, d.id) for p in picks),
                                unsubscribe_url=None, keywords=sub.keywords)
        when = long_date(d.digest_date)
        template = self.site.templates.get_template("feed_entry.html.j2")
        out = []
        for view in self.renderer.pick_views(content):
            paper = view.pick.paper
            assert paper.id is not None
            out.append(FeedEntry(
                id=entry_id(self.site.options.base_url, sub.id, d.digest_date, paper.id),
                title=view.title, authors=tuple(clean_text(a, 200) for a in paper.authors), link=view.open_url,
                # A second apart by rank: readers that sort by date keep the digest's order.
                updated=d.created_at - timedelta(seconds=view.number - 1),
                content_html=template.render(p=view, date_long=when)))
        return out


def _not_modified(request: Request, version: _Version) -> bool:
    """RFC 9110: If-None-Match decides when present (weak comparison, as for GET); otherwise
    If-Modified-Since against Last-Modified."""
    match = request.headers.get("if-none-match")
    if match is not None:
        wanted = {tag.strip().removeprefix("W/") for tag in match[:2000].split(",")}
        return "*" in wanted or version.etag in wanted
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        moment = parsedate_to_datetime(since[:100])
    except (TypeError, ValueError, IndexError):
        return False  # not a date: answer in full, as RFC 9110 says
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return version.last_modified <= moment
