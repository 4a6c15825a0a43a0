"""The reader's private Atom feed through Starlette's TestClient, on a real database holding a real
arXiv day and digests recorded in the ledger: read back with feedparser, as a feed reader reads it."""

from __future__ import annotations

import html
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest

from digest.config import Settings
from digest.domain import Pick
from digest.ingest.sources import parse_feed
from digest.signing.links import LinkBuilder
from digest.signing.tokens import LinkSigner
from digest.store import deliveries as ledger
from digest.store import papers as paper_store
from digest.store import personal_data
from digest.store import subscribers as sub_store
from digest.store.link_keys import StoredLinkKeys
from digest.web.app import create_app
from digest.web.feed import FEED_LIMIT
from digest.web.serve import web_options
from digest.wiring import App, secret_keys
from tests.clock import Clock
from tests.web_helpers import csrf_of

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

BASE = "https://digest.example.org"
NOW = datetime(2026, 12, 5, 9, 0)
TODAY = NOW.date()
ARXIV = Path(__file__).parent.parent / "fixtures" / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"
DAY = parse_feed(ARXIV.read_bytes(), source_name="arxiv").papers


@dataclass
class Reader:
    app: App
    clock: Clock
    links: LinkBuilder
    client: TestClient
    sid: int
    papers: list[Any]  # stored Papers, in the order of the day

    def feed_url(self) -> str:
        with self.app.engine.connect() as conn:
            key = sub_store.feed_key(conn, self.sid)
        assert key is not None
        return self.links.feed_url(self.sid, key)

    def record(self, digest_date: date, papers: list[Any], reason: str = "Matches: surface codes",
               created: datetime | None = None) -> int:
        with self.app.engine.begin() as conn:
            row = ledger.create_delivery(
                conn, subscriber_id=self.sid, digest_date=digest_date,
                picks=[Pick(p, 0.9 - i / 100, ("surface codes",), f"{reason} ({i + 1})") for i, p in enumerate(papers)],
                now=created or datetime.combine(digest_date, datetime.min.time()) + timedelta(hours=7))
        assert row is not None
        return row.id

    def manage(self) -> str:
        return urlsplit(self.links.manage_url(self.sid)).path


@pytest.fixture
def reader_site(tmp_path: Path) -> Iterator[Callable[[str], Reader]]:
    apps: list[App] = []

    def make(db_url: str) -> Reader:
        app = App.open(Settings(**{
            "state_dir": str(tmp_path / "state"), "database": {"url": db_url}, "sources": [],
            "web": {"base_url": BASE, "secret_key": "s" * 32}}))
        apps.append(app)
        clock = Clock(NOW)
        signer = LinkSigner(secret_keys(app.settings))
        links = LinkBuilder(BASE, signer, now=clock, key_of=StoredLinkKeys(app.engine))
        client = TestClient(create_app(app.engine, signer, scanner_window_s=0, now=clock,
                                       options=web_options(app.settings)), base_url=BASE)
        with app.engine.begin() as conn:
            sub, _ = sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["surface codes"],
                                                 now=NOW - timedelta(days=30))
            paper_store.upsert_papers(conn, DAY[:40], NOW - timedelta(days=30))
            stored = paper_store.papers_by_ids(conn, list(range(1, 41)))
        ordered = sorted(stored.values(), key=lambda p: p.id or 0)
        return Reader(app, clock, links, client, sub.id, ordered)

    yield make
    for app in apps:
        app.close()


def _path(url: str) -> str:
    return urlsplit(url).path


def test_the_feed_is_valid_atom_with_the_picks_of_the_last_14_days_newest_first(
        reader_site: Callable[[str], Reader], db_url: str) -> None:
    r = reader_site(db_url)
    r.record(TODAY - timedelta(days=14), r.papers[30:33])  # 15 dates ago counting today: out of the window
    r.record(TODAY - timedelta(days=13), r.papers[20:22])  # the oldest day it shows
    r.record(TODAY - timedelta(days=1), r.papers[10:13])
    r.record(TODAY, r.papers[0:3], reason="Like papers you starred")
    resp = r.client.get(_path(r.feed_url()))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/atom+xml")
    assert resp.headers["cache-control"] == "private, no-cache"

    parsed = feedparser.parse(resp.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Your paper digest"
    assert parsed.feed.id.startswith("tag:digest.example.org,") and parsed.feed.updated_parsed is not None
    assert "surface codes" in parsed.feed.subtitle
    assert any(link.rel == "self" and link.href == r.feed_url() for link in parsed.feed.links)
    titles = [e.title for e in parsed.entries]
    wanted = [p.title for p in r.papers[0:3] + r.papers[10:13] + r.papers[20:22]]
    assert titles == wanted  # newest digest first, each in its own order; nothing from 14 days ago
    first = parsed.entries[0]
    assert first.link.startswith(f"{BASE}/o/")  # the tracked open link, as in the email
    assert first.id.startswith("tag:digest.example.org,") and first.id.endswith(f"/{r.papers[0].id}")
    assert [a.name for a in first.authors][:2] == list(r.papers[0].authors)[:2]
    content = first.content[0].value
    assert "Like papers you starred (1)" in content
    assert f'href="{BASE}/star/' in content and f'href="{BASE}/less/' in content
    assert len(first.links) == 1 and f'href="{BASE}/o/' in content.split("PDF")[0]  # the PDF link is in the text
    # The star link of the feed is the email's: following it stars the paper for this reader.
    star = re.search(r'href="([^"]+/star/[^"]+)"', content)
    assert star is not None and r.client.get(_path(html.unescape(star.group(1)))).status_code == 200

    again = feedparser.parse(r.client.get(_path(r.feed_url())).content)
    assert [e.id for e in again.entries] == [e.id for e in parsed.entries]  # stable ids: nothing shows twice
    assert len({e.id for e in parsed.entries}) == len(parsed.entries)
    head = r.client.head(_path(r.feed_url()))
    assert head.status_code == 200 and head.headers["etag"] == resp.headers["etag"]


def test_conditional_get_answers_304_until_a_new_digest_is_recorded(
        reader_site: Callable[[str], Reader], sqlite_url: str) -> None:
    r = reader_site(sqlite_url)
    r.record(TODAY - timedelta(days=1), r.papers[0:3])
    url = _path(r.feed_url())
    full = r.client.get(url)
    etag, modified = full.headers["etag"], full.headers["last-modified"]
    assert etag.startswith('"') and modified.endswith("GMT")

    assert r.client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert r.client.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert r.client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    not_modified = r.client.get(url, headers={"If-None-Match": etag, "If-Modified-Since": modified})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    # If-None-Match decides when both are sent: a stale tag gets the feed whatever the date says.
    assert r.client.get(url, headers={"If-None-Match": '"stale"', "If-Modified-Since": modified}).status_code == 200
    assert r.client.get(url, headers={"If-Modified-Since": "not a date"}).status_code == 200

    r.record(TODAY, r.papers[5:7], created=NOW)
    fresh = r.client.get(url, headers={"If-None-Match": etag, "If-Modified-Since": modified})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    assert r.client.get(url, headers={"If-Modified-Since": modified}).status_code == 200
    assert [e.title for e in feedparser.parse(fresh.content).entries][:2] == [p.title for p in r.papers[5:7]]


def test_a_new_feed_address_retires_the_old_one_and_signing_out_retires_both(
        reader_site: Callable[[str], Reader], sqlite_url: str) -> None:
    r = reader_site(sqlite_url)
    r.record(TODAY, r.papers[0:2])
    old = _path(r.feed_url())
    page = r.client.get(r.manage())
    assert page.status_code == 200 and html.escape(r.feed_url()) in page.text
    refused = r.client.post(f"{r.manage()}/feed", data={})  # no CSRF token: nothing changes
    assert refused.status_code == 403 and r.client.get(old).status_code == 200

    moved = r.client.post(f"{r.manage()}/feed", data=csrf_of(page), follow_redirects=True)
    assert moved.status_code == 200 and "A new feed address" in moved.text
    gone = r.client.get(old)
    assert gone.status_code == 410 and "replaced" in gone.text
    new = _path(r.feed_url())
    assert new != old and html.escape(r.feed_url()) in moved.text
    assert r.client.get(new).status_code == 200

    page = r.client.get(r.manage())
    assert r.client.post(f"{r.manage()}/signout", data=csrf_of(page)).status_code == 200
    assert r.client.get(new).status_code == 404  # every link of the old link key, the feed's included


def test_forged_cut_or_foreign_tokens_are_a_plain_404(reader_site: Callable[[str], Reader], sqlite_url: str) -> None:
    r = reader_site(sqlite_url)
    r.record(TODAY, r.papers[0:2])
    token = _path(r.feed_url()).removeprefix("/feed/").removesuffix(".atom")
    payload, stamp, signature = token.split(".")
    view = _path(r.links.view_url(r.sid, 1)).removeprefix("/view/")  # signed by us, for another purpose
    tries = [f"{payload}.{stamp}.{signature[:-2]}xx", token[:-10], "garbage", "a" * 5000, view,
             f"{payload}x.{stamp}.{signature}"]
    bodies = set()
    for bad in tries:
        resp = r.client.get(f"/feed/{bad}.atom")
        assert resp.status_code == 404, bad
        bodies.add(resp.text)
    assert len(bodies) == 1  # one page for all: it tells nothing of why
    assert "ada" not in bodies.pop()
    with r.app.engine.begin() as conn:  # the reader deleted their data: their signed address is the same 404
        personal_data.delete_subscriber(conn, r.sid)
    assert r.client.get(f"/feed/{token}.atom").status_code == 404


def test_paper_text_is_escaped_and_xml_safe(reader_site: Callable[[str], Reader], sqlite_url: str) -> None:
    r = reader_site(sqlite_url)
    hostile = replace(r.papers[0], canonical_id="arxiv:2412.99999", arxiv_id="2412.99999", id=None,
                      title="<script>alert(1)</script> codes \uffff\x0bfast",
                      abstract='Surface <img src=x onerror="alert(2)"> codes & more',
                      authors=("Eve <eve@evil.example>", "B\u202eob"))
    with r.app.engine.begin() as conn:
        paper_store.upsert_papers(conn, [hostile], NOW)
        stored = paper_store.find_paper_id(conn, hostile)
        assert stored is not None
        paper = paper_store.papers_by_ids(conn, [stored])[stored]
    r.record(TODAY, [paper], reason="Matches: <b>surface</b>")
    resp = r.client.get(_path(r.feed_url()))
    assert resp.status_code == 200
    assert b"<script" not in resp.content and b"<img" not in resp.content and b"<b>" not in resp.content
    entry = feedparser.parse(resp.content).entries[0]
    assert entry.title == "<script>alert(1)</script> codes fast"  # shown as text, never markup
    assert entry.authors[1].name == "Bob"
    raw = re.search(rb"<content type=\"html\">(.*?)</content>", resp.content, re.S)
    assert raw is not None
    markup = html.unescape(raw.group(1).decode())  # the HTML a feed reader renders
    assert "&lt;img src=x" in markup and "<img" not in markup and "&lt;b&gt;surface" in markup


def test_a_feed_polled_too_often_gets_429_with_retry_after(reader_site: Callable[[str], Reader],
                                                           sqlite_url: str) -> None:
    r = reader_site(sqlite_url)
    url = _path(r.feed_url())
    etag = r.client.get(url).headers["etag"]
    for _ in range(FEED_LIMIT - 1):
        assert r.client.get(url, headers={"If-None-Match": etag}).status_code == 304
    too_many = r.client.get(url)
    assert too_many.status_code == 429 and int(too_many.headers["retry-after"]) > 0
    r.clock.advance(timedelta(hours=1))
    assert r.client.get(url).status_code == 200


def test_the_manage_page_turns_email_off_and_on_and_refuses_a_bad_choice(
        reader_site: Callable[[str], Reader], sqlite_url: str) -> None:
    r = reader_site(sqlite_url)
    page = r.client.get(r.manage())
    assert 'name="email" value="on" checked' in page.text and "Feed only, no email" in page.text
    assert r.client.post(f"{r.manage()}/email", data={"email": "off"}).status_code == 403

    off = r.client.post(f"{r.manage()}/email", data={**csrf_of(page), "email": "off"}, follow_redirects=True)
    assert off.status_code == 200 and "Feed only: no more email" in off.text
    assert 'name="email" value="off" checked' in off.text and "feed only: no email is sent" in off.text
    with r.app.engine.connect() as conn:
        sub = sub_store.get_subscriber_by_id(conn, r.sid)
    assert sub is not None and not sub.email_enabled

    bad = r.client.post(f"{r.manage()}/email", data={**csrf_of(off), "email": "sms"})
    assert bad.status_code == 400 and 'id="email_channel-error"' in bad.text
    with r.app.engine.connect() as conn:
        still = sub_store.get_subscriber_by_id(conn, r.sid)
        exported = personal_data.export_subscriber(conn, r.sid)
    assert still is not None and not still.email_enabled
    assert exported is not None
    assert "feed_key" not in exported["subscriber"] and "link_key" not in exported["subscriber"]

    on = r.client.post(f"{r.manage()}/email", data={**csrf_of(bad), "email": "on"}, follow_redirects=True)
    assert on.status_code == 200 and "Email is on" in on.text


def test_an_unsubscribed_reader_s_feed_is_gone(reader_site: Callable[[str], Reader], sqlite_url: str) -> None:
    r = reader_site(sqlite_url)
    r.record(TODAY, r.papers[0:2])
    with r.app.engine.begin() as conn:
        sub_store.deactivate(conn, r.sid, NOW)
    resp = r.client.get(_path(r.feed_url()))
    assert resp.status_code == 410 and "ended" in resp.text
