"""The subscribe, confirm, manage and web-view pages through Starlette's TestClient, on a real database
(SQLite and PostgreSQL), with the confirmation email written by the real outbox transport.
"""

from __future__ import annotations

import email
import email.policy
import html as html_lib
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from digest.config import Settings
from digest.domain import Paper, Pick
from digest.signing.links import LinkBuilder
from digest.signing.tokens import LinkSigner
from digest.store import deliveries as ledger
from digest.store import events as event_store
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.link_keys import StoredLinkKeys
from digest.store.schema import consents, deliveries, events, signups, subscriber_models, subscribers
from digest.web.app import create_app
from digest.web.consent import CONSENT_SHA256, CONSENT_TEXT, CONSENT_VERSION
from digest.web.serve import web_options
from digest.wiring import App, secret_keys
from tests.address_cases import BAD_ADDRESSES
from tests.clock import Clock
from tests.smtp_server import free_port
from tests.web_helpers import csrf_of

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

BASE = "https://digest.example.org"
NOW = datetime(2026, 11, 29, 9, 0, 0)
HOSTILE = "<script>alert(1)</script>"
GOOD = {"email": "Ada@Example.org", "keywords": "sparse attention, diffusion models", "exclude": "",
        "sources": ["arxiv-cs", "hf-daily"], "top_k": "5", "delivery_hour": "7", "timezone": "Europe/Berlin",
        "cadence": "weekly", "consent": "yes"}


@dataclass
class Site:
    app: App
    clock: Clock
    signer: LinkSigner
    links: LinkBuilder

    def client(self) -> TestClient:
        web = create_app(self.app.engine, self.signer, scanner_window_s=0, now=self.clock,
                         options=web_options(self.app.settings), mailer=self.app.confirmation_mailer())
        return TestClient(web, base_url=BASE)

    def count(self, table: Any) -> int:
        with self.app.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def subscriber(self, address: str = "ada@example.org") -> Any:
        with self.app.engine.connect() as conn:
            return sub_store.get_subscriber(conn, address)

    def confirmations(self) -> list[email.message.EmailMessage]:
        files = sorted((self.app.settings.outbox_path / "confirmations").rglob("*.eml"))
        return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]  # type: ignore[misc]


def settings_for(tmp_path: Path, db_url: str, **web: Any) -> Settings:
    return Settings(**{
        "state_dir": str(tmp_path / "state"),
        "database": {"url": db_url},
        "sources": [{"name": "arxiv-cs", "path": "builtin:arxiv-cs-2024-11-28.xml"},
                    {"name": "hf-daily", "path": "builtin:arxiv-cs-2024-11-28.xml"}],
        "web": {"base_url": BASE, "secret_key": "s" * 32, **web},
        "delivery": {"from_addr": "digest@example.org"},
    })


@pytest.fixture
def make_site(tmp_path: Path, db_url: str) -> Iterator[Any]:
    opened: list[App] = []

    def make(**web: Any) -> Site:
        app = App.open(settings_for(tmp_path, db_url, **web))
        opened.append(app)
        clock = Clock(NOW)
        signer = LinkSigner(secret_keys(app.settings))
        return Site(app, clock, signer, LinkBuilder(BASE, signer, now=clock, key_of=StoredLinkKeys(app.engine)))

    yield make
    for a in opened:
        a.close()


@pytest.fixture
def site(make_site: Any) -> Site:
    return make_site()  # type: ignore[no-any-return]


def signup(client: TestClient, **changes: Any) -> Any:
    form = {**GOOD, **changes, **csrf_of(client.get("/subscribe"))}
    return client.post("/subscribe", data={k: v for k, v in form.items() if v is not None})


def confirm_path(msg: email.message.EmailMessage) -> str:
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"https://\S+/confirm/\S+", text)
    assert found is not None
    return urlsplit(found.group(0)).path


# ---- subscribe + double opt-in ------------------------------------------------------------------
def test_subscribe_page_has_labelled_fields_and_nothing_from_outside(site: Site) -> None:
    r = site.client().get("/subscribe")
    assert r.status_code == 200 and "digest_csrf" in r.headers["set-cookie"]
    html = r.text
    for field_id in ("email", "keywords", "exclude", "top_k", "delivery_hour", "timezone"):
        assert f'<label for="{field_id}">' in html and f'id="{field_id}"' in html, field_id
    assert "<legend>Sources</legend>" in html and "<legend>How often</legend>" in html
    assert '<option selected>UTC</option>' in html and "<option>Europe/Berlin</option>" in html
    assert CONSENT_TEXT in html
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # no CDN, no web font
    assert site.client().get("/").status_code == 200


def test_double_opt_in(site: Site) -> None:
    client = site.client()
    r = signup(client)
    # The local part as typed, the domain lowercased (GOOD's address is Ada@Example.org).
    assert r.status_code == 200 and "Check your inbox" in r.text and "Ada@example.org" in r.text
    assert site.count(subscribers) == 0 and site.count(signups) == 1
    # Nothing but the confirmation goes to an unconfirmed address: the daily run has nobody to send to.
    assert site.app.pipeline().run(date(2026, 11, 29), NOW.replace(tzinfo=UTC)).outcomes == []
    (msg,) = site.confirmations()
    assert msg["To"] == "Ada@example.org" and "Confirm" in msg["Subject"]
    url = confirm_path(msg)
    page = client.get(url)  # a GET (a mail scanner) only shows the button
    assert page.status_code == 200 and "Confirm your subscription" in page.text and site.count(subscribers) == 0
    assert client.post(url).status_code == 403 and site.count(subscribers) == 0  # no CSRF token
    site.clock.now = NOW + timedelta(hours=1)
    r = client.post(url, data=csrf_of(page))
    assert r.status_code == 200 and "You are subscribed" in r.text
    sub = site.subscriber()
    assert sub is not None and sub.active and not sub.paused
    assert (sub.keywords, sub.top_k, sub.timezone, sub.delivery_hour, sub.cadence, sub.sources) == (
        ("sparse attention", "diffusion models"), 5, "Europe/Berlin", 7, "weekly", ())
    with site.app.engine.connect() as conn:
        (rec,) = [r._mapping for r in conn.execute(select(consents))]
    assert rec["signup_ip"] == rec["confirm_ip"] == "testclient"
    assert (rec["signed_up_at"], rec["confirmed_at"]) == (NOW, NOW + timedelta(hours=1))
    assert (rec["wording_version"], rec["wording_sha256"], rec["wording"]) == (CONSENT_VERSION, CONSENT_SHA256,
                                                                               CONSENT_TEXT)
    manage = re.search(r'href="(/manage/[^"]+)"', r.text)
    assert manage is not None and client.get(manage.group(1)).status_code == 200
    # Replayed: a clear message, nothing changed.
    for again in (client.get(url), client.post(url, data=csrf_of(page))):
        assert again.status_code == 409 and "Already confirmed" in again.text
    assert site.count(consents) == 1 and site.count(subscribers) == 1


def test_followed_authors_from_the_signup_form_to_the_manage_page(site: Site) -> None:
    client = site.client()
    assert signup(client, authors="Welling, Max; Yann LeCun").status_code == 200
    page = client.get(confirm_path(site.confirmations()[0]))
    done = client.post(confirm_path(site.confirmations()[0]), data=csrf_of(page))
    assert done.status_code == 200 and site.subscriber().authors == ("Welling, Max", "Yann LeCun")
    manage = re.search(r'href="(/manage/[^"]+)"', done.text)
    assert manage is not None
    url = manage.group(1)
    page = client.get(url)
    # Shown as it will be read back: a semicolon keeps "Welling, Max" one name.
    assert '<label for="authors">' in page.text and 'value="Welling, Max; Yann LeCun"' in page.text
    refused = client.post(url, data={**GOOD, "authors": "Welling", **csrf_of(page)})
    assert refused.status_code == 400 and 'id="authors-error"' in refused.text
    assert 'value="Welling"' in refused.text and site.subscriber().authors == ("Welling, Max", "Yann LeCun")
    saved = client.post(url, data={**GOOD, "authors": "", **csrf_of(page)}, follow_redirects=False)
    assert saved.status_code == 303 and site.subscriber().authors == ()


def test_forged_and_expired_confirmation_links(site: Site) -> None:
    client = site.client()
    signup(client)
    url = confirm_path(site.confirmations()[0])
    token = url.rsplit("/", 1)[1]
    other = LinkBuilder(BASE, LinkSigner(["another-secret-key-0123456789"])).confirm_url(1, "x", NOW + timedelta(1))
    for bad in (f"/confirm/{token[:-3]}", f"/confirm/{token}x", urlsplit(other).path, "/confirm/garbage"):
        r = client.get(bad)
        assert r.status_code == 400 and "This confirmation link is not valid" in r.text
    site.clock.now = NOW + timedelta(hours=49)
    r = client.get(url)
    assert r.status_code == 410 and "has expired" in r.text
    assert site.count(subscribers) == 0 and site.count(consents) == 0


def test_a_reused_signup_id_cannot_be_confirmed_with_an_old_nonce(site: Site) -> None:
    client = site.client()
    signup(client)
    url = site.links.confirm_url(1, "not-the-nonce", NOW + timedelta(hours=1))
    assert client.get(urlsplit(url).path).status_code == 410
    assert site.count(subscribers) == 0


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"email": "not-an-address"}, "email", "Enter a valid email address"),
    ({"email": "ada@example.org\r\nBcc: x@evil.test"}, "email", "Enter a valid email address"),
    ({"keywords": "  , ;"}, "keywords", "Give at least one interest"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone", "Unknown timezone"),
    ({"delivery_hour": "25"}, "delivery_hour", "Choose an hour"),
    ({"top_k": "0"}, "top_k", "Choose a number of papers"),
    ({"cadence": "hourly"}, "cadence", "Choose daily or weekly"),
    ({"authors": "Welling"}, "authors", "give a first name or initial too"),
    ({"authors": "Max Welling, M."}, "authors", "M."),
    ({"sources": ["nope"]}, "sources", "Choose sources from the list"),
    ({"sources": None}, "sources", "Choose at least one source"),
    ({"consent": None}, "consent", "Tick the box"),
])
def test_bad_input_is_shown_and_nothing_is_stored(site: Site, changes: dict[str, Any], field: str,
                                                  message: str) -> None:
    r = signup(site.client(), exclude=HOSTILE, **changes)
    assert r.status_code == 400 and message in r.text
    assert f'id="{field}-error"' in r.text and 'role="alert"' in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and HOSTILE not in r.text  # typed text, escaped
    assert site.count(signups) == 0 and site.confirmations() == []


def test_subscribe_without_csrf_is_refused(site: Site) -> None:
    client = site.client()
    assert client.post("/subscribe", data=GOOD).status_code == 403
    # A token from another browser (cookie) does not fit this one.
    token = csrf_of(site.client().get("/subscribe"))
    client.get("/subscribe")
    assert client.post("/subscribe", data={**GOOD, **token}).status_code == 403
    assert site.count(signups) == 0 and site.confirmations() == []


def test_rate_limit_per_address(site: Site) -> None:
    client = site.client()
    for _ in range(3):
        assert signup(client).status_code == 200
    r = signup(client)
    assert r.status_code == 429 and "Please wait" in r.text
    assert site.count(signups) == 3 and len(site.confirmations()) == 3
    site.clock.now = NOW + timedelta(hours=2)  # the window has passed
    assert signup(client).status_code == 200


def test_rate_limit_per_ip(make_site: Any) -> None:
    site = make_site(signup_limit_per_ip=2)
    client = site.client()
    assert signup(client, email="a@example.org").status_code == 200
    assert signup(client, email="b@example.org").status_code == 200
    assert signup(client, email="c@example.org").status_code == 429
    assert site.count(signups) == 2


def test_signups_can_be_turned_off(make_site: Any) -> None:
    site = make_site(signup_enabled=False)
    assert site.client().get("/subscribe").status_code == 404


def test_confirming_again_updates_an_existing_subscriber(site: Site) -> None:
    with site.app.engine.begin() as conn:
        sub, _ = sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["old topic"], now=NOW)
        sub_store.set_paused(conn, sub.id, True, NOW)
    client = site.client()
    signup(client, sources=["hf-daily"])
    url = confirm_path(site.confirmations()[0])
    client.post(url, data=csrf_of(client.get(url)))
    now = site.subscriber()
    assert now.id == sub.id and now.keywords == ("sparse attention", "diffusion models") and not now.paused
    assert now.sources == ("hf-daily",)


def test_signing_up_again_says_it_updates_and_only_the_newest_link_acts(site: Site) -> None:
    with site.app.engine.begin() as conn:
        sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["old topic"], top_k=3, now=NOW)
    client = site.client()
    assert signup(client, keywords="first try").status_code == 200
    assert signup(client, keywords="protein folding").status_code == 200
    older, newer = site.confirmations()
    for msg in (older, newer):  # the mail says it changes the subscription the address has
        assert msg["Subject"] == "Confirm the change to your paper digest subscription"
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "already receives it" in text and "To update it" in text and "To start it" not in text
    old_url, new_url = confirm_path(older), confirm_path(newer)
    assert old_url != new_url
    # An older link no longer acts, on GET or POST: the newest email's link does.
    page = client.get(new_url)
    for r in (client.get(old_url), client.post(old_url, data=csrf_of(page))):
        assert r.status_code == 410 and "replaced by a newer one" in r.text
    assert site.subscriber().keywords == ("old topic",)
    assert "Update your subscription" in page.text and "Start the paper digest" not in page.text
    assert "old topic" in page.text and "protein folding" in page.text
    done = client.post(new_url, data=csrf_of(page))
    assert done.status_code == 200 and "Your subscription is updated" in done.text and "first digest" not in done.text
    assert site.subscriber().keywords == ("protein folding",)


def test_a_new_address_is_still_told_it_starts(site: Site) -> None:
    client = site.client()
    signup(client)
    (msg,) = site.confirmations()
    assert msg["Subject"] == "Confirm your paper digest subscription"
    assert "To start it" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


# ---- manage ----------------------------------------------------------------------------------------
@pytest.fixture
def reader(site: Site) -> Iterator[tuple[Site, int, dict[str, Paper], int]]:
    papers = [Paper(canonical_id=f"arxiv:2411.0000{i}", title=title, url=f"https://arxiv.org/abs/2411.0000{i}",
                    arxiv_id=f"2411.0000{i}", source="arxiv-cs") for i, title in ((1, "Paper A"), (2, HOSTILE))]
    with site.app.engine.begin() as conn:
        sub, _ = sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["sparse attention"], now=NOW)
        _, stored = paper_store.upsert_papers(conn, papers, NOW)
        d = ledger.create_delivery(conn, subscriber_id=sub.id, digest_date=date(2026, 11, 29),
                                   picks=[Pick(p, 0.5, reason="matches: sparse attention") for p in stored], now=NOW)
        assert d is not None
        event_store.set_opinion(conn, subscriber_id=sub.id, paper_id=stored[0].id or 0, kind="star", origin="test",
                                now=NOW)
    yield site, sub.id, {"a": stored[0], "hostile": stored[1]}, d.id


def test_manage_page_edits_the_subscription(reader: Any) -> None:
    site, sid, _papers, _d = reader
    client = site.client()
    url = urlsplit(site.links.manage_url(sid)).path
    page = client.get(url)
    assert page.status_code == 200 and "a\u2022\u2022\u2022@example.org" in page.text and "Paper A" in page.text
    assert 'value="sparse attention"' in page.text
    with site.app.engine.begin() as conn:
        conn.execute(subscriber_models.insert().values(subscriber_id=sid, weights=b"x", n_pos=1, n_neg=1,
                                                       last_event_id=1, trained_at=NOW))
    form = {**GOOD, "keywords": "graph neural networks", "exclude": "quantum", "sources": ["arxiv-cs"],
            **csrf_of(page)}
    r = client.post(url, data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{url}?done=saved"
    sub = site.subscriber()
    assert (sub.keywords, sub.exclude, sub.sources, sub.cadence, sub.delivery_hour) == (
        ("graph neural networks",), ("quantum",), ("arxiv-cs",), "weekly", 7)
    assert site.count(subscriber_models) == 0  # new keywords: the model is retrained
    after = client.get(r.headers["location"])
    assert "Saved." in after.text
    # The "trending today" box: ticked by default, and the form above left it unticked.
    assert 'name="trending" value="on" checked' in page.text and sub.trending is False
    assert 'name="trending" value="on">' in after.text
    r = client.post(url, data={**form, "trending": "on", **csrf_of(after)}, follow_redirects=False)
    assert r.status_code == 303 and site.subscriber().trending is True


def test_manage_bad_input_and_missing_csrf_change_nothing(reader: Any) -> None:
    site, sid, _papers, _d = reader
    client = site.client()
    url = urlsplit(site.links.manage_url(sid)).path
    token = csrf_of(client.get(url))
    for form, status in (({**GOOD, "keywords": ""}, 400), ({**GOOD, "timezone": "Nowhere/City"}, 400),
                         ({**GOOD, "keywords": "new"}, 403)):
        data = {**form, **(token if status == 400 else {})}
        assert client.post(url, data=data).status_code == status
    assert client.post(url + "/pause", data={"action": "pause"}).status_code == 403
    assert client.post(url + "/delete").status_code == 403
    sub = site.subscriber()
    assert sub.keywords == ("sparse attention",) and not sub.paused


def test_expired_and_forged_manage_links(reader: Any) -> None:
    site, sid, _papers, _d = reader
    client = site.client()
    url = urlsplit(site.links.manage_url(sid)).path
    site.clock.now = NOW + timedelta(days=31)
    for suffix in ("", "/export", "/delete"):
        r = client.get(url + suffix)
        assert r.status_code == 410 and "This manage link has expired" in r.text
    forged = LinkBuilder(BASE, LinkSigner(["another-secret-key-0123456789"]), now=site.clock).manage_url(sid)
    unsub_token = urlsplit(site.links.unsubscribe_url(sid)).path.rsplit("/", 1)[1]
    for bad in (urlsplit(forged).path, f"/manage/{unsub_token}", url[:-4]):
        r = client.get(bad)
        assert r.status_code == 400 and "This manage link is not valid" in r.text


def test_pause_resume_and_unstar(reader: Any) -> None:
    site, sid, papers, _d = reader
    client = site.client()
    url = urlsplit(site.links.manage_url(sid)).path
    token = csrf_of(client.get(url))
    r = client.post(url + "/pause", data={"action": "pause", **token})
    assert r.status_code == 200 and "Paused." in r.text and "Resume the digest" in r.text
    assert site.subscriber().paused
    assert site.app.pipeline().active_subscribers() == []  # paused: nothing is sent
    client.post(url + "/pause", data={"action": "resume", **token})
    assert not site.subscriber().paused
    r = client.post(url + "/unstar", data={"paper": str(papers["a"].id), **token})
    assert "Removed from your starred papers." in r.text and "None yet." in r.text
    with site.app.engine.connect() as conn:
        assert event_store.list_events(conn, sid, kinds=["star"]) == []


def test_export_and_delete(reader: Any) -> None:
    site, sid, _papers, _d = reader
    client = site.client()
    url = urlsplit(site.links.manage_url(sid)).path
    r = client.get(url + "/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    data = json.loads(r.text)
    assert data["subscriber"]["email"] == "ada@example.org"
    assert {e["kind"] for e in data["events"]} == {"impression", "star"}
    assert [p["title"] for p in data["deliveries"][0]["papers"]] == ["Paper A", HOSTILE]
    page = client.get(url + "/delete")
    assert page.status_code == 200 and "Delete all your data?" in page.text and site.count(subscribers) == 1
    r = client.post(url + "/delete", data=csrf_of(page))
    assert r.status_code == 200 and "Your data is deleted" in r.text
    for table in (subscribers, events, deliveries, consents, signups):
        assert site.count(table) == 0, table.name
    assert client.get(url).status_code == 404


# ---- the web view ---------------------------------------------------------------------------------
def test_web_view_has_the_email_buttons(reader: Any) -> None:
    site, sid, papers, did = reader
    client = site.client()
    r = client.get(urlsplit(site.links.view_url(sid, did)).path)
    assert r.status_code == 200 and "Sunday, 29 November 2026" in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and HOSTILE not in r.text
    assert "&#9733; Starred" in r.text  # paper A was starred already
    star = re.search(r'href="https://digest\.example\.org(/star/[^"]+)">&#9733; Star<', r.text)
    less = re.search(r'href="https://digest\.example\.org(/less/[^"]+)">Less like this<', r.text)
    assert star is not None and less is not None
    assert "Starred:" in client.get(star.group(1)).text
    with site.app.engine.connect() as conn:
        kinds = {(e.kind, e.paper_id, e.delivery_id) for e in event_store.list_events(conn, sid, kinds=["star"])}
    assert ("star", papers["hostile"].id, did) in kinds
    assert client.get(urlsplit(site.links.view_url(sid, did + 1)).path).status_code == 404
    assert client.get(urlsplit(site.links.view_url(sid + 1, did)).path).status_code == 404
    assert client.get("/view/garbage").status_code == 400


# ---- the email and the pipeline -------------------------------------------------------------------
def test_digest_carries_manage_view_and_one_click_unsubscribe(reader: Any) -> None:
    site, _sid, _papers, _d = reader
    fresh = Paper(canonical_id="arxiv:2411.09999", title="Sparse attention at scale", abstract="sparse attention",
                  url="https://arxiv.org/abs/2411.09999", arxiv_id="2411.09999", announce_type="new")
    with site.app.engine.begin() as conn:
        paper_store.upsert_papers(conn, [fresh], NOW)
    report = site.app.pipeline().run(date(2026, 11, 30), datetime(2026, 11, 30, 6, tzinfo=UTC))
    (out,) = [o for o in report.outcomes if o.status == "sent"] or [None]
    assert out is not None
    msg = email.message_from_bytes(Path(out.location or "").read_bytes(), policy=email.policy.default)
    assert msg["List-Unsubscribe"].startswith(f"<{BASE}/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"{BASE}/manage/" in text and f"{BASE}/view/" in text
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Manage your subscription</a>" in html and "View in browser</a>" in html


def test_source_filter(site: Site) -> None:
    papers = [Paper(canonical_id=f"arxiv:2411.1000{i}", title=f"Sparse attention study {i}",
                    abstract="sparse attention", url=f"https://arxiv.org/abs/2411.1000{i}",
                    arxiv_id=f"2411.1000{i}", source=src,
                    announce_type="new") for i, src in ((1, "arxiv-cs"), (2, "hf-daily"), (3, "arxiv-cs"))]
    with site.app.engine.begin() as conn:
        paper_store.upsert_papers(conn, papers, NOW)
        sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["sparse attention"], now=NOW,
                                    sources=["hf-daily"])
        sub_store.upsert_subscriber(conn, email="bob@example.org", keywords=["sparse attention"], now=NOW)
    pipeline = site.app.pipeline()
    subs = pipeline.active_subscribers()
    planned = {p.subscriber.email: {pick.paper.source for pick in p.picks}
               for p in pipeline.plan(subs, date(2026, 11, 29), NOW)}
    assert planned == {"ada@example.org": {"hf-daily"}, "bob@example.org": {"arxiv-cs", "hf-daily"}}


def test_changing_the_address_needs_the_new_address_to_confirm(reader: Any) -> None:
    site, sid, _papers, _d = reader
    client = site.client()
    url = urlsplit(site.links.manage_url(sid)).path
    r = client.post(url, data={**GOOD, "email": "ada.new@example.org", **csrf_of(client.get(url))},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=address")
    assert site.subscriber() is not None and site.subscriber("ada.new@example.org") is None  # not yet
    (msg,) = site.confirmations()
    assert msg["To"] == "ada.new@example.org"
    link = confirm_path(msg)
    page = client.get(link)
    assert "Confirm your new address" in page.text
    r = client.post(link, data=csrf_of(page))
    assert r.status_code == 200 and "Your address is changed" in r.text
    moved = site.subscriber("ada.new@example.org")
    assert moved is not None and moved.id == sid and site.subscriber() is None
    with site.app.engine.connect() as conn:
        assert [e.kind for e in event_store.list_events(conn, sid, kinds=["star"])] == ["star"]  # history kept


def test_an_address_taken_by_another_subscriber_cannot_be_moved_to(reader: Any) -> None:
    site, sid, _papers, _d = reader
    with site.app.engine.begin() as conn:
        sub_store.upsert_subscriber(conn, email="bob@example.org", keywords=["x"], now=NOW)
    client = site.client()
    url = urlsplit(site.links.manage_url(sid)).path
    client.post(url, data={**GOOD, "email": "bob@example.org", **csrf_of(client.get(url))})
    link = confirm_path(site.confirmations()[0])
    r = client.post(link, data=csrf_of(client.get(link)))
    assert r.status_code == 409 and "Nothing was changed" in r.text
    assert site.subscriber().id == sid and site.subscriber("bob@example.org").keywords == ("x",)


def test_confirmation_through_smtp_refused_or_down(make_site: Any, smtp_server: Any) -> None:
    site = make_site()
    smtp = {"host": smtp_server.host, "port": smtp_server.port, "security": "none"}
    site.app.settings = site.app.settings.model_copy(update={
        "delivery": site.app.settings.delivery.model_copy(update={"method": "smtp"}),
        "smtp": site.app.settings.smtp.model_copy(update=smtp)})
    smtp_server.handler.rcpt_replies["nobody@example.org"] = "550 5.1.1 <nobody@example.org>: no such user"
    client = site.client()
    r = signup(client, email="nobody@example.org")
    assert r.status_code == 400 and "could not deliver to this address" in r.text
    assert signup(client).status_code == 200
    (got,) = smtp_server.handler.messages
    assert got.rcpt_tos == ("Ada@example.org",) and b"/confirm/" in got.data
    # The relay goes away: nothing listens on the configured port any more.
    site.app.settings = site.app.settings.model_copy(update={
        "smtp": site.app.settings.smtp.model_copy(update={"port": free_port()})})
    r = signup(site.client(), email="grace@example.org")
    assert r.status_code == 503 and "could not send the confirmation email" in r.text
    assert site.count(subscribers) == 0


def test_migration_0007_keeps_subscribers_and_goes_down_again(tmp_path: Path, db_url: str) -> None:
    from alembic import command as alembic_command
    from sqlalchemy import inspect, text

    from digest.store.engine import _alembic_config, create_db_engine, migrate

    engine = create_db_engine(db_url)
    try:
        migrate(engine, "0004")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO subscribers (email, keywords, exclude, active, created_at, updated_at) "
                              "VALUES ('ada@example.org', '[\"x\"]', '[]', true, :t, :t)"), {"t": NOW})
        migrate(engine, "0007")
        with engine.connect() as conn:  # plain SQL: the store's queries know the columns of later revisions
            row = conn.execute(text("SELECT keywords, sources FROM subscribers WHERE email = 'ada@example.org'")).one()
        keywords = row.keywords if isinstance(row.keywords, list) else json.loads(row.keywords)  # JSON on PostgreSQL
        assert keywords == ["x"] and row.sources in (None, "null", "[]", [])
        assert {"signups", "consents"} <= set(inspect(engine).get_table_names())
        cfg = _alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            alembic_command.downgrade(cfg, "0004")
        assert "signups" not in set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


class _Fields(HTMLParser):
    """Collects form controls, labels and the label each control is wrapped in."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.in_label = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self.in_label += 1
            if a.get("for"):
                self.label_for.add(str(a["for"]))
        elif tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append({**a, "_wrapped": "yes" if self.in_label else None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.in_label -= 1


def test_every_form_field_has_a_label(reader: Any) -> None:
    site, sid, _papers, _d = reader
    client = site.client()
    for url in ("/subscribe", urlsplit(site.links.manage_url(sid)).path):
        parser = _Fields()
        parser.feed(client.get(url).text)
        assert len(parser.controls) >= 8
        for control in parser.controls:
            assert control["_wrapped"] or control.get("id") in parser.label_for, (url, control)


# ---- addresses the mailer cannot use (issue 15) ----------------------------------------------------
@pytest.mark.parametrize(("raw", "reason"), [(raw, reason) for _, raw, reason in BAD_ADDRESSES],
                         ids=[name for name, _, _ in BAD_ADDRESSES])
def test_an_address_the_mailer_cannot_use_is_a_field_error(site: Site, raw: str, reason: str) -> None:
    r = signup(site.client(), email=raw)
    assert r.status_code == 400 and "Enter a valid email address" in r.text
    assert 'id="email-error"' in r.text and re.search(r'aria-describedby="[^"]*email-error"', r.text)  # tied to it
    assert reason.lower() in html_lib.unescape(r.text).lower()
    assert site.count(signups) == 0 and site.confirmations() == []  # no pending row, nothing mailed


@pytest.mark.parametrize("raw", ["a(comment)@example.org", "a\x00b@example.org", "ada@ex\u0430mple.org", "eve@lab"])
def test_an_address_change_to_an_unusable_address_is_a_field_error(reader: Any, raw: str) -> None:
    site, sid, _papers, _d = reader
    client = site.client()
    url = urlsplit(site.links.manage_url(sid)).path
    r = client.post(url, data={**GOOD, "email": raw, **csrf_of(client.get(url))}, follow_redirects=False)
    assert r.status_code == 400 and 'id="email-error"' in r.text and "Enter a valid email address" in r.text
    assert site.count(signups) == 0 and site.confirmations() == []
    assert site.subscriber().keywords == ("sparse attention",)  # nothing saved


def test_a_mailer_that_refuses_the_address_leaves_no_pending_row(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the mailer ever refuse what the rule let through, it is a field error as well, not a 500."""
    from digest.mail.confirm import ConfirmationMailer

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError("to_addr: not an email address")

    monkeypatch.setattr(ConfirmationMailer, "compose", refuse)  # the fault injected
    r = signup(site.client())
    assert r.status_code == 400 and 'id="email-error"' in r.text and "cannot send to this address" in r.text
    assert site.count(signups) == 0 and site.confirmations() == []


def test_signups_to_one_mailbox_in_many_spellings_are_limited(make_site: Any) -> None:
    """victim(1)@... to victim(12)@... once put 10 confirmations in one mailbox. Now comments are
    refused and case and +tags count as the one mailbox they reach: at most the limit is sent."""
    site = make_site(signup_limit_per_ip=0)  # the per-address limit alone
    limit = site.app.settings.web.signup_limit_per_address
    spellings = ["victim(1)@example.org", "victim@example.org", "Victim@Example.org", "victim(2)@example.org",
                 "VICTIM@EXAMPLE.ORG", "victim+1@example.org", "victim+digest@Example.org", "Victim+x@EXAMPLE.org",
                 "victim+(3)@example.org", "victim+1@example.org", "victim(4)@example.org", "vIcTiM+z@example.org"]
    assert len(spellings) == 12
    client = site.client()
    codes = [signup(client, email=e).status_code for e in spellings]
    sent = site.confirmations()
    assert len(sent) == limit == site.count(signups), codes
    assert {m["To"].lower().split("+")[0].split("@")[0] for m in sent} == {"victim"}
    assert codes.count(200) == limit and set(codes) <= {200, 400, 429}
    # The limit counts the mailbox, not one spelling: another mailbox is not held back.
    assert signup(client, email="someone.else@example.org").status_code == 200
