"""The web app behind the email links, through Starlette's TestClient on a real database (SQLite and
PostgreSQL), plus `digest serve` as a real server process. Also the events store it writes to.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from click.testing import CliRunner
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from digest.cli import main
from digest.domain import Paper, Pick
from digest.signing.links import LinkBuilder
from digest.signing.tokens import LinkSigner
from digest.store import deliveries as ledger
from digest.store import events as event_store
from digest.store import lease as lease_store
from digest.store.engine import create_db_engine, open_engine
from digest.store.link_keys import StoredLinkKeys
from digest.store.papers import upsert_papers
from digest.store.schema import subscribers
from digest.store.subscribers import deactivate, upsert_subscriber
from digest.web.app import SECURITY_HEADERS, create_app
from tests.clock import Clock
from tests.smtp_server import free_port
from tests.web_helpers import csrf_of

with warnings.catch_warnings():  # Starlette announces a move from httpx to httpx2; the client works the same
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

BASE = "https://digest.example.org"
KEY, OLD_KEY = "current-secret-key-0123456789", "retired-secret-key-0123456789"
SENT_AT = datetime(2026, 11, 29, 6, 0, 0)
WINDOW = 60
HOSTILE = "<script>alert(1)</script> & friends"


@dataclass
class World:
    engine: Engine
    signer: LinkSigner
    links: LinkBuilder
    clock: Clock
    sub_id: int
    papers: dict[str, Paper]  # a, b, hostile, nolink
    delivery_id: int

    def client(self, *, window: int = WINDOW, signer: LinkSigner | None = None) -> TestClient:
        app = create_app(self.engine, signer or self.signer, scanner_window_s=window, now=self.clock)
        return TestClient(app, base_url=BASE)

    def pick(self, name: str) -> Any:
        return self.links.pick_links(self.sub_id, self.papers[name], self.delivery_id)

    def events(self, *kinds: str) -> list[event_store.StoredEvent]:
        with self.engine.connect() as conn:
            return event_store.list_events(conn, self.sub_id, kinds=kinds or None)

    def active(self) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(select(subscribers.c.active).where(subscribers.c.id == self.sub_id)).scalar())


def path(url: str | None) -> str:
    assert url is not None
    return urlsplit(url).path


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    engine = open_engine(db_url)
    signer = LinkSigner([KEY, OLD_KEY])
    with engine.begin() as conn:
        sub, _ = upsert_subscriber(conn, email="ada@example.org", keywords=["diffusion models"], now=SENT_AT)
        batch = [
            Paper(canonical_id="arxiv:2411.00001", title="Paper A", url="https://arxiv.org/abs/2411.00001",
                  pdf_url="https://arxiv.org/pdf/2411.00001", arxiv_id="2411.00001"),
            Paper(canonical_id="arxiv:2411.00002", title="Paper B", url="https://arxiv.org/abs/2411.00002",
                  arxiv_id="2411.00002"),
            Paper(canonical_id="arxiv:2411.00003", title=HOSTILE, url="https://arxiv.org/abs/2411.00003",
                  arxiv_id="2411.00003"),
            Paper(canonical_id="title:no link", title="No link", url="javascript:alert(1)"),
        ]
        _, fresh = upsert_papers(conn, batch, SENT_AT)
        papers = dict(zip(("a", "b", "hostile", "nolink"), fresh, strict=True))
        d = ledger.create_delivery(conn, subscriber_id=sub.id, digest_date=date(2026, 11, 29),
                                   picks=[Pick(p, 0.5) for p in fresh], now=SENT_AT)
        assert d is not None and ledger.claim(conn, d.id, SENT_AT)
        ledger.finish(conn, d.id, status="sent", now=SENT_AT)
    clock = Clock(SENT_AT + timedelta(hours=2))
    yield World(engine, signer, LinkBuilder(BASE, signer, key_of=StoredLinkKeys(engine)), clock, sub.id, papers, d.id)
    engine.dispose()


# ---- open: the tracked redirect ------------------------------------------------------------------
def test_open_redirects_to_the_stored_url_and_records_a_click(world: World) -> None:
    links = world.pick("a")
    r = world.client().get(path(links.open_url), follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == "https://arxiv.org/abs/2411.00001"
    assert r.headers["referrer-policy"] == "no-referrer"
    (click,) = world.events("click")
    assert (click.paper_id, click.origin, click.delivery_id, click.flagged) == (
        world.papers["a"].id, "web:open", world.delivery_id, False)
    assert click.created_at == world.clock.now


def test_pdf_link_redirects_to_the_pdf(world: World) -> None:
    r = world.client().get(path(world.pick("a").pdf_url), follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://arxiv.org/pdf/2411.00001"
    assert [e.origin for e in world.events("click")] == ["web:pdf"]


def test_head_is_flagged(world: World) -> None:
    r = world.client().head(path(world.pick("a").open_url), follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://arxiv.org/abs/2411.00001"
    (click,) = world.events("click")
    assert click.flagged and click.origin == "web:open:head"


@pytest.mark.parametrize(("after_s", "window", "flagged"), [
    (5, 60, True),     # seconds after delivery: a mail scanner
    (59, 60, True),
    (61, 60, False),   # a reader
    (5, 0, False),     # window 0: flagging off
])
def test_scanner_window(world: World, after_s: int, window: int, flagged: bool) -> None:
    world.clock.now = SENT_AT + timedelta(seconds=after_s)
    assert world.client(window=window).get(path(world.pick("a").open_url), follow_redirects=False).status_code == 302
    assert [e.flagged for e in world.events("click")] == [flagged]
    with world.engine.connect() as conn:
        labels = event_store.labels_for(conn, [world.sub_id])
    assert [lab.kind for lab in labels] == ([] if flagged else ["click"])


def test_click_before_the_ledger_marks_the_send(world: World) -> None:
    # A scanner can fetch a link while the delivery row still says "sending": the window starts at the claim.
    claimed = SENT_AT + timedelta(days=1)
    with world.engine.begin() as conn:
        d = ledger.create_delivery(conn, subscriber_id=world.sub_id, digest_date=date(2026, 11, 30),
                                   picks=[Pick(world.papers["a"], 0.5)], now=claimed)
        assert d is not None and ledger.claim(conn, d.id, claimed)
    url = path(world.links.pick_links(world.sub_id, world.papers["a"], d.id).open_url)
    for after, flagged in ((timedelta(seconds=2), True), (timedelta(hours=2), False)):
        world.clock.now = claimed + after
        world.client().get(url, follow_redirects=False)
        last = world.events("click")[-1]
        assert (last.flagged, last.created_at) == (flagged, world.clock.now)


def test_aware_clock_is_stored_as_naive_utc(world: World) -> None:
    from datetime import UTC

    world.clock.now = (SENT_AT + timedelta(seconds=10)).replace(tzinfo=UTC)
    world.client().get(path(world.pick("a").open_url), follow_redirects=False)
    (click,) = world.events("click")
    assert click.flagged and click.created_at == SENT_AT + timedelta(seconds=10)


def test_altered_token_cannot_redirect_elsewhere(world: World) -> None:
    token = path(world.pick("a").open_url).rsplit("/", 1)[1]
    payload, stamp, sig = token.split(".")
    other = base64_encode(json.dumps({"s": world.sub_id, "p": world.papers["b"].id}, separators=(",", ":")))
    client = world.client()
    # (The last base64 character of the signature carries padding bits: change the first one instead.)
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    for bad in (f"{other.decode()}.{stamp}.{sig}", f"{payload}.{stamp}.{flipped}", token[:-2], token + "x"):
        r = client.get(f"/o/{bad}", follow_redirects=False)
        assert r.status_code == 400, bad
        assert "location" not in r.headers
        assert "This link is not valid" in r.text
    assert world.events("click") == []


def test_wrong_purpose_is_refused(world: World) -> None:
    links = world.pick("a")
    client = world.client()
    star_token = path(links.star_url).rsplit("/", 1)[1]
    open_token = path(links.open_url).rsplit("/", 1)[1]
    unsub_token = path(world.links.unsubscribe_url(world.sub_id)).rsplit("/", 1)[1]
    assert client.get(f"/o/{star_token}", follow_redirects=False).status_code == 400
    assert client.get(f"/o/{unsub_token}", follow_redirects=False).status_code == 400
    assert client.get(f"/star/{open_token}").status_code == 400
    assert client.get(f"/less/{star_token}").status_code == 400
    assert client.post(f"/unsubscribe/{open_token}").status_code == 400
    assert client.post(f"/star/{open_token}/undo").status_code == 400
    assert world.events("click", "star", "dislike", "unsubscribe") == []
    assert world.active()


def test_key_rotation(world: World) -> None:
    keys = StoredLinkKeys(world.engine)
    old = LinkBuilder(BASE, LinkSigner([OLD_KEY]), key_of=keys).pick_links(world.sub_id, world.papers["a"],
                                                                           world.delivery_id)
    stranger = LinkBuilder(BASE, LinkSigner(["someone-elses-key-0123456789"]), key_of=keys).pick_links(
        world.sub_id, world.papers["a"], world.delivery_id)
    client = world.client()  # LinkSigner([KEY, OLD_KEY]): signs with KEY, accepts both
    assert client.get(path(old.open_url), follow_redirects=False).status_code == 302
    assert client.get(path(stranger.open_url), follow_redirects=False).status_code == 400
    assert len(world.events("click")) == 1
    assert world.signer.verify("open", path(world.pick("a").open_url).rsplit("/", 1)[1])["p"] == world.papers["a"].id


@pytest.mark.parametrize("bad", ["garbage", "a.b.c", "x" * 1001, "%00", "..%2F..%2Fetc"])
def test_garbage_tokens(world: World, bad: str) -> None:
    client = world.client()
    for route in ("o", "star", "less", "unsubscribe"):
        r = client.get(f"/{route}/{bad}", follow_redirects=False)
        assert r.status_code in (400, 404), (route, r.status_code)
        assert "location" not in r.headers
    assert world.events("click", "star", "dislike", "unsubscribe") == []


def test_unknown_paper_and_paper_without_web_link(world: World) -> None:
    ghost = Paper(canonical_id="arxiv:ghost", title="Ghost", url="https://arxiv.org/abs/ghost", id=999_999)
    ghost_links = world.links.pick_links(world.sub_id, ghost, world.delivery_id)
    client = world.client()
    for url in (ghost_links.open_url, ghost_links.star_url, ghost_links.dislike_url):
        r = client.get(path(url), follow_redirects=False)
        assert r.status_code == 404 and "Paper not found" in r.text
    # A stored URL that is not http(s) is never a redirect target.
    signed = world.signer.sign("open", {"s": world.sub_id, "p": world.papers["nolink"].id})
    r = client.get(f"/o/{signed}", follow_redirects=False)
    assert r.status_code == 404 and "location" not in r.headers
    assert world.events("click", "star", "dislike") == []


def test_recording_failure_never_breaks_the_redirect(world: World, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(event_store, "record_event", broken)
    with caplog.at_level(logging.ERROR, logger="digest.web.feedback"):
        r = world.client().get(path(world.pick("a").open_url), follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://arxiv.org/abs/2411.00001"
    assert "could not record the click" in caplog.text


# ---- star and less like this ---------------------------------------------------------------------
def test_star_page_escapes_the_title_and_undo_removes_the_star(world: World) -> None:
    client = world.client()
    url = path(world.pick("hostile").star_url)
    r = client.get(url)
    assert r.status_code == 200
    assert "Starred:" in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in r.text
    assert "<script" not in r.text
    assert 'href="https://arxiv.org/abs/2411.00003"' in r.text  # a link to the paper
    assert r.headers["cache-control"] == "no-store"
    (star,) = world.events("star")
    assert (star.paper_id, star.origin, star.flagged) == (world.papers["hostile"].id, "web:star", False)
    # The undo button posts to <the same path>/undo.
    action = re.search(r'<form method="post" action="([^"]+)"', r.text)
    assert action is not None
    undo = urlsplit(urljoin(BASE + url, action.group(1))).path
    assert undo == url + "/undo"
    r = client.post(undo, data=csrf_of(r))
    assert r.status_code == 200 and "Undone" in r.text and "&lt;script&gt;" in r.text
    assert world.events("star") == []
    again = re.search(r'<a class="btn" href="([^"]+)">Star it again', r.text)
    assert again is not None and urlsplit(urljoin(BASE + undo, again.group(1))).path == url


def test_less_like_this_page_and_undo(world: World) -> None:
    client = world.client()
    url = path(world.pick("a").dislike_url)
    r = client.get(url)
    assert r.status_code == 200 and "Got it: fewer papers like" in r.text and "Paper A" in r.text
    assert [e.kind for e in world.events("dislike")] == ["dislike"]
    assert client.post(url + "/undo").status_code == 403  # no CSRF token: nothing undone
    assert [e.kind for e in world.events("dislike")] == ["dislike"]
    assert client.post(url + "/undo", data=csrf_of(r)).status_code == 200
    assert world.events("dislike") == []


def test_latest_opinion_wins(world: World) -> None:
    client = world.client()
    links = world.pick("a")
    client.get(path(links.star_url))
    client.get(path(links.dislike_url))
    assert [e.kind for e in world.events("star", "dislike")] == ["dislike"]
    client.get(path(links.star_url))
    assert [e.kind for e in world.events("star", "dislike")] == ["star"]


def test_a_second_click_makes_no_second_event(world: World) -> None:
    client = world.client()
    url = path(world.pick("a").star_url)
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200
    assert len(world.events("star")) == 1


def test_scanner_prefetch_of_feedback_links(world: World) -> None:
    links = world.pick("a")
    world.clock.now = SENT_AT + timedelta(seconds=3)
    scanner = world.client()
    assert scanner.get(path(links.star_url)).status_code == 200
    head = scanner.head(path(links.dislike_url))
    assert head.status_code == 200 and head.content == b""
    assert [(e.kind, e.flagged) for e in world.events("star", "dislike")] == [("star", True), ("dislike", True)]
    # The reader's own star later on is a label; the scanner's dislike does not cancel it.
    world.clock.now = SENT_AT + timedelta(hours=3)
    world.client().get(path(links.star_url))
    with world.engine.connect() as conn:
        labels = event_store.labels_for(conn, [world.sub_id])
    assert [(lab.kind, lab.paper_id) for lab in labels] == [("star", world.papers["a"].id)]


# ---- unsubscribe ---------------------------------------------------------------------------------
def test_unsubscribe_get_shows_a_page_and_changes_nothing(world: World) -> None:
    client = world.client()
    url = path(world.links.unsubscribe_url(world.sub_id))
    for _ in range(2):
        r = client.get(url)
        assert r.status_code == 200 and "Unsubscribe from the paper digest?" in r.text
        assert client.head(url).status_code == 200
    assert "ada@example.org" not in r.text and "a\u2022\u2022\u2022@example.org" in r.text
    assert world.active() and world.events("unsubscribe") == []


def test_unsubscribe_confirm_then_subscribe_again(world: World) -> None:
    client = world.client()
    url = path(world.links.unsubscribe_url(world.sub_id))
    form = csrf_of(client.get(url))
    assert client.post(url).status_code == 403 and world.active()  # no CSRF token: nothing changes
    r = client.post(url, data=form)
    assert r.status_code == 200 and "You are unsubscribed" in r.text and "Subscribe again" in r.text
    assert not world.active()
    assert [e.origin for e in world.events("unsubscribe")] == ["web:page"]
    # Unsubscribing twice records it once; the page still says so.
    assert "You are unsubscribed" in client.post(url, data=form).text
    assert "You are unsubscribed" in client.get(url).text
    assert len(world.events("unsubscribe")) == 1
    action = re.search(r'<form method="post" action="([^"]+)">', r.text)
    assert action is not None
    resubscribe = urlsplit(urljoin(BASE + url, action.group(1))).path
    assert resubscribe.startswith("/resubscribe/")
    assert client.get(resubscribe).status_code == 405  # never on GET
    assert client.post(resubscribe).status_code == 403 and not world.active()
    r = client.post(resubscribe, data=csrf_of(r))
    assert r.status_code == 200 and "You are subscribed again" in r.text
    assert world.active()
    assert [e.kind for e in world.events("unsubscribe", "resubscribe")] == ["unsubscribe", "resubscribe"]


def test_one_click_unsubscribe(world: World) -> None:
    client = world.client()
    url = path(world.links.unsubscribe_url(world.sub_id))
    r = client.post(url, content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.text.strip() == "You are unsubscribed."
    assert not world.active()
    assert [e.origin for e in world.events("unsubscribe")] == ["web:one-click"]


def test_one_click_unsubscribe_multipart(world: World) -> None:
    body = (b'--b0undary\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n'
            b"--b0undary--\r\n")
    r = world.client().post(path(world.links.unsubscribe_url(world.sub_id)), content=body,
                            headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert r.status_code == 200 and r.text.strip() == "You are unsubscribed."
    assert not world.active()


def test_unsubscribe_link_never_expires(world: World) -> None:
    class ThreeYearsAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 3 * 365 * 86400

    key = StoredLinkKeys(world.engine)(world.sub_id)
    old = URLSafeTimedSerializer([KEY], salt="digest.unsubscribe", signer=ThreeYearsAgo).dumps(
        {"s": world.sub_id, "k": key})
    client = world.client()
    r = client.post(f"/unsubscribe/{old}", data=csrf_of(client.get(f"/unsubscribe/{old}")))
    assert r.status_code == 200 and not world.active()


def test_unsubscribed_reader_still_reaches_the_paper_but_nothing_is_recorded(world: World) -> None:
    with world.engine.begin() as conn:
        deactivate(conn, world.sub_id, SENT_AT)
    client = world.client()
    links = world.pick("a")
    r = client.get(path(links.open_url), follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://arxiv.org/abs/2411.00001"
    r = client.get(path(links.star_url))
    assert r.status_code == 403 and "You are unsubscribed" in r.text
    assert world.events("click", "star", "dislike") == []


def test_unknown_subscriber(world: World) -> None:
    ghost = LinkBuilder(BASE, world.signer)
    links = ghost.pick_links(424242, world.papers["a"])
    client = world.client()
    assert client.get(path(links.star_url)).status_code == 404
    assert client.get(path(ghost.unsubscribe_url(424242))).status_code == 404
    form = csrf_of(client.get(path(world.links.unsubscribe_url(world.sub_id))))
    assert client.post(path(ghost.unsubscribe_url(424242)), data=form).status_code == 404
    # The paper link of a deleted subscriber still works for whoever reads the old email.
    assert client.get(path(links.open_url), follow_redirects=False).status_code == 302
    with world.engine.connect() as conn:
        assert event_store.list_events(conn, 424242) == []


# ---- the rest of the surface ---------------------------------------------------------------------
def test_security_headers_everywhere(world: World) -> None:
    client = world.client()
    links = world.pick("a")
    responses = [
        client.get(path(links.open_url), follow_redirects=False),
        client.get(path(links.star_url)),
        client.get(path(world.links.unsubscribe_url(world.sub_id))),
        client.get("/o/garbage"),
        client.get("/no/such/page"),
        client.get("/healthz"),
    ]
    for r in responses:
        for name in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"):
            assert r.headers[name] == SECURITY_HEADERS[name], (r.url, name)
        assert r.headers["cache-control"] == "no-store"
    assert responses[0].headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    for r in responses[1:3]:
        assert "<script" not in r.text


def test_unknown_route_method_not_allowed_and_big_bodies(world: World) -> None:
    client = world.client()
    r = client.get("/no/such/page")
    assert r.status_code == 404 and "Page not found" in r.text and r.headers["content-type"].startswith("text/html")
    r = client.post(path(world.pick("a").open_url))
    assert r.status_code == 405 and "GET" in r.headers["allow"]
    r = client.post(path(world.links.unsubscribe_url(world.sub_id)), content=b"x" * 100_000,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and r.headers["x-content-type-options"] == "nosniff"
    assert world.active()


def test_healthz(world: World, tmp_path: Path) -> None:
    r = world.client().get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok"}
    dead = create_db_engine(f"sqlite:///{tmp_path}/missing/dir/x.db")
    (tmp_path / "missing" / "dir").rmdir()  # create_db_engine made it; a vanished volume
    app = create_app(dead, world.signer, scanner_window_s=WINDOW)
    r = TestClient(app, base_url=BASE).get("/healthz")
    assert r.status_code == 503 and r.json()["database"] != "ok"
    dead.dispose()


# ---- the events store ----------------------------------------------------------------------------
def test_labels_and_impressions(world: World) -> None:
    a, b = world.papers["a"].id, world.papers["b"].id
    assert a is not None and b is not None
    with world.engine.begin() as conn:
        event_store.record_event(conn, subscriber_id=world.sub_id, paper_id=a, kind="click", origin="t",
                                 now=SENT_AT + timedelta(hours=1))
        event_store.record_event(conn, subscriber_id=world.sub_id, paper_id=b, kind="click", origin="t",
                                 flagged=True, now=SENT_AT + timedelta(seconds=1))
        eid, created = event_store.set_opinion(conn, subscriber_id=world.sub_id, paper_id=b, kind="dislike",
                                               origin="t", now=SENT_AT + timedelta(hours=2))
        assert created and event_store.set_opinion(conn, subscriber_id=world.sub_id, paper_id=b, kind="dislike",
                                                   origin="t", now=SENT_AT) == (eid, False)
        with pytest.raises(ValueError):
            event_store.record_event(conn, subscriber_id=world.sub_id, paper_id=a, kind="like", origin="t", now=SENT_AT)
    with world.engine.connect() as conn:
        labels = event_store.labels_for(conn, [world.sub_id])
        shown = event_store.impressions_for(conn, [world.sub_id])
        assert event_store.labels_for(conn, []) == []
        assert event_store.labels_for(conn, [world.sub_id], since=SENT_AT + timedelta(minutes=90)) == labels[1:]
        assert event_store.has_event(conn, subscriber_id=world.sub_id, paper_id=b, kind="dislike")
    assert [(lab.paper_id, lab.kind) for lab in labels] == [(a, "click"), (b, "dislike")]
    assert len(shown) == 4 and {lab.kind for lab in shown} == {"impression"}
    with world.engine.begin() as conn:
        assert event_store.remove_event(conn, eid)
        assert not event_store.remove_event(conn, eid)


# ---- `digest serve` ------------------------------------------------------------------------------
def _serve_config(tmp_path: Path, db_url: str) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\ndatabase: {{url: '{db_url}'}}\n"
                   f"web: {{base_url: '{BASE}', secret_key: '{KEY}'}}\n")
    return cfg


def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path, sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    with engine.begin() as conn:
        sub, _ = upsert_subscriber(conn, email="ada@example.org", keywords=["x"], now=SENT_AT)
        _, (paper,) = upsert_papers(conn, [Paper(canonical_id="arxiv:2411.00009", title="P",
                                                 url="https://arxiv.org/abs/2411.00009")], SENT_AT)
    open_url = LinkBuilder(BASE, LinkSigner([KEY]), key_of=StoredLinkKeys(engine)).pick_links(sub.id, paper).open_url
    port = free_port()
    env = {**os.environ, "DIGEST_CONFIG": str(_serve_config(tmp_path, sqlite_url))}
    proc = subprocess.Popen([sys.executable, "-m", "digest.cli", "serve", "--port", str(port), "--no-scheduler"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "digest serve did not start"
                time.sleep(0.1)
        assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["database"] == "ok"
        assert health.json()["scheduler"]["running"] is False  # --no-scheduler: reported, not required
        r = httpx.get(base + path(open_url), follow_redirects=False, timeout=5)
        assert r.status_code == 302 and r.headers["location"] == "https://arxiv.org/abs/2411.00009"
        assert r.headers["x-content-type-options"] == "nosniff" and "server" not in r.headers
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"Serving on http://127.0.0.1:{port}" in out
    assert "Traceback" not in err
    with engine.connect() as conn:
        assert [e.kind for e in event_store.list_events(conn, sub.id)] == ["click"]
    engine.dispose()


def test_serve_on_a_busy_port_is_a_one_line_error(tmp_path: Path, sqlite_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"DIGEST_CONFIG": str(_serve_config(tmp_path, sqlite_url))}
        r = CliRunner().invoke(main, ["serve", "--port", str(port)], env=env)
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}")
    engine = open_engine(sqlite_url)
    with engine.connect() as conn:  # the port is checked before the scheduler takes its lease
        assert lease_store.get(conn, "scheduler") is None
    engine.dispose()
