"""The reader's pages through Starlette's TestClient, on a real database (SQLite and PostgreSQL)
holding a real arXiv day: search (open with web.public_search, else for readers with a session from
their manage link), ordered by taste, and the paper pages with their similar papers and buttons."""

from __future__ import annotations

import html
import re
import warnings
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.domain import Pick
from digest.ingest.sources import parse_feed
from digest.library.references import parse_library
from digest.signing.links import LinkBuilder
from digest.signing.tokens import LinkSigner
from digest.store import deliveries as ledger
from digest.store import events as event_store
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.link_keys import StoredLinkKeys
from digest.store.schema import events
from digest.store.search import search_papers
from digest.training import terms as term_store
from digest.web.app import create_app
from digest.web.serve import web_options
from digest.wiring import App, secret_keys
from tests.clock import Clock

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

BASE = "https://digest.example.org"
NOW = datetime(2026, 12, 5, 9, 0)
FEED = Path(__file__).parent.parent / "fixtures" / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"
DAY = parse_feed(FEED.read_bytes(), source_name="arxiv").papers
GATE_PAPER = ("Demonstrating a universal logical gate set in error-detecting surface codes on a superconducting "
              "quantum processor")


class Search:
    def __init__(self, app: App) -> None:
        self.app = app
        self.clock = Clock(NOW)
        signer = LinkSigner(secret_keys(app.settings))
        self.links = LinkBuilder(BASE, signer, now=self.clock, key_of=StoredLinkKeys(app.engine))
        self.client = TestClient(create_app(app.engine, signer, scanner_window_s=0, now=self.clock,
                                            options=web_options(app.settings)), base_url=BASE)
        with app.engine.begin() as conn:
            sub, _ = sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["surface codes"], now=NOW)
            _, fresh = paper_store.upsert_papers(conn, DAY, NOW)
            term_store.add_papers(conn, fresh, NOW)  # as ingest does: the words' weights similar papers use
        self.reader_id = sub.id
        self.manage = urlsplit(self.links.manage_url(sub.id)).path


@pytest.fixture
def open_site(tmp_path: Path, db_url: str) -> Iterator[Callable[[bool], Search]]:
    apps: list[App] = []

    def make(public: bool) -> Search:
        app = App.open(Settings(**{
            "state_dir": str(tmp_path / f"state-{len(apps)}"), "database": {"url": db_url}, "sources": [],
            "web": {"base_url": BASE, "secret_key": "s" * 32, "public_search": public}}))
        apps.append(app)
        return Search(app)

    yield make
    for app in apps:
        app.close()


def _titles(page: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", t)) for t in re.findall(r"<li>\s*<h2>(.*?)</h2>", page, re.S)]


def test_a_reader_searches_after_opening_the_manage_link_and_strangers_do_not(open_site: Callable[[bool], Search]
                                                                                ) -> None:
    s = open_site(False)
    stranger = s.client.get("/search", params={"q": "quantum"})
    assert stranger.status_code == 404 and "Search is for readers" in stranger.text
    manage = s.client.get(s.manage)  # the manage link starts the reader's session
    assert manage.status_code == 200 and 'action="/search"' in manage.text
    assert "httponly" in manage.headers["set-cookie"].lower() and "samesite=lax" in manage.headers["set-cookie"].lower()
    r = s.client.get("/search", params={"q": "superconducting quantum processor"})
    assert r.status_code == 200
    assert _titles(r.text)[0] == GATE_PAPER
    back = re.search(r'href="(/manage/[^"]+)">Back to your subscription', r.text)
    assert back is not None and s.client.get(html.unescape(back.group(1))).status_code == 200


def test_a_session_ends_with_its_time_a_forged_cookie_or_signing_out(open_site: Callable[[bool], Search]) -> None:
    s = open_site(False)
    s.client.get(s.manage)
    assert s.client.get("/search", params={"q": "quantum"}).status_code == 200
    s.clock.now = NOW + timedelta(days=31)
    assert s.client.get("/search", params={"q": "quantum"}).status_code == 404
    expired = s.client.get(s.manage)  # the old link has expired too: no new session from it
    assert expired.status_code == 410 and s.client.get("/search", params={"q": "quantum"}).status_code == 404
    s.clock.now = NOW  # the first session would be valid again: replaced by a forged one
    s.client.cookies.clear()
    s.client.cookies.set("digest_reader", "eyJzIjoxfQ.forged.token")
    assert s.client.get("/search", params={"q": "quantum"}).status_code == 404
    s.client.get(s.manage)
    assert s.client.get("/search", params={"q": "quantum"}).status_code == 200
    page = s.client.get(s.manage)
    signout = s.client.post(f"{s.manage}/signout", data={"csrf_token": _csrf(page.text)})
    assert signout.status_code == 200
    s.client.cookies.clear()
    s.client.cookies.update(dict(page.cookies))  # the session cookie from before signing out, replayed
    assert s.client.get("/search", params={"q": "quantum"}).status_code == 404


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_public_search_pages_through_the_results(open_site: Callable[[bool], Search]) -> None:
    s = open_site(True)
    empty = s.client.get("/search")
    assert empty.status_code == 200 and 'name="q"' in empty.text and _titles(empty.text) == []
    first = s.client.get("/search", params={"q": "learning"})
    assert first.status_code == 200 and len(_titles(first.text)) == 20
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = s.client.get("/search", params={"q": "learning", "page": "2"})
    assert 'rel="prev"' in second.text and '<ol class="results" start="21">' in second.text
    assert not set(_titles(first.text)) & set(_titles(second.text))
    none = s.client.get("/search", params={"q": "zanzibar moss cartography"})
    assert none.status_code == 200 and "No paper holds all of these words" in none.text


HOSTILE = ['"unclosed', "title:quantum OR", "NEAR(a b", "quantum " * 5000, "\u0000\u202e", "%", "' OR 1=1 --"]


def test_any_query_answers_a_page_and_a_bad_page_number_a_400(open_site: Callable[[bool], Search]) -> None:
    s = open_site(True)
    for q in HOSTILE:
        assert s.client.get("/search", params={"q": q}).status_code == 200, q
    r = s.client.get("/search", params={"q": "<script>alert(1)</script> quantum"})
    assert r.status_code == 200 and "<script>alert(1)" not in r.text and "&lt;script&gt;alert(1)" in r.text
    for page in ("0", "-1", "abc", "51", "99999999999", "1.5", ""):
        r = s.client.get("/search", params={"q": "learning", "page": page})
        assert r.status_code == 400 and "Not a page of results" in r.text, page


def test_a_reader_sorts_the_matches_by_their_taste(open_site: Callable[[bool], Search]) -> None:
    s = open_site(False)  # the reader's keywords: "surface codes"
    s.client.get(s.manage)
    text = s.client.get("/search", params={"q": "quantum"})
    taste = s.client.get("/search", params={"q": "quantum", "order": "taste"})
    assert taste.status_code == 200 and "ordered by your taste" in taste.text
    by_text, by_taste = _titles(text.text), _titles(taste.text)
    on_topic = {p.title for p in DAY if "surface code" in (p.title + " " + p.abstract).lower()}
    assert sum(t in on_topic for t in by_taste[:5]) > sum(t in on_topic for t in by_text[:5])
    assert by_taste[0] in on_topic
    assert 'order=taste' in taste.text  # the next page keeps the order
    # The public door has no reader: the order is the text match's whatever is asked.
    public = open_site(True)
    assert "ordered by your taste" not in public.client.get("/search", params={"q": "quantum", "order": "taste"}).text


def _paper(ref: str) -> str:
    return "/p/" + ref


def test_a_paper_page_shows_the_paper_and_its_similar_papers(open_site: Callable[[bool], Search]) -> None:
    s = open_site(True)
    gate = next(p for p in DAY if p.title == GATE_PAPER)
    assert gate.arxiv_id is not None
    r = s.client.get(_paper(gate.arxiv_id))
    assert r.status_code == 200 and html.escape(GATE_PAPER) in r.text
    assert gate.authors[0] in html.unescape(r.text) and f"arXiv:{gate.arxiv_id}" in r.text
    similar = re.findall(r'<li><span><a href="(/p/[^"]+)">(.*?)</a>', r.text.split('id="similar"')[1])
    assert 1 <= len(similar) <= 8
    assert any(w in html.unescape(t).lower() for _, t in similar for w in ("qubit", "quantum", "surface code"))
    assert all(s.client.get(href).status_code == 200 for href, _ in similar[:3])
    assert "Star" not in r.text  # no reader: no buttons
    by_id = re.search(r'href="/p/(\d+)"', s.client.get("/search", params={"q": "reasoning"}).text)
    assert by_id is None or s.client.get(_paper(by_id.group(1))).status_code == 200


def test_unknown_or_odd_paper_addresses_are_404(open_site: Callable[[bool], Search]) -> None:
    s = open_site(True)
    for ref in ("2411.99999", "999999", "0", "../../etc/passwd", "<script>", "hep-th/9901001", "1" * 40, "%00"):
        r = s.client.get(_paper(ref))
        assert r.status_code == 404 and "<script>" not in r.text, ref
    shut = open_site(False)
    r = shut.client.get(_paper(DAY[0].arxiv_id or ""))
    assert r.status_code == 404 and "Paper pages are for readers" in r.text


def test_a_reader_stars_from_a_paper_page_and_a_forged_form_records_nothing(open_site: Callable[[bool], Search]
                                                                         ) -> None:
    s = open_site(False)
    s.client.get(s.manage)
    gate = next(p for p in DAY if p.title == GATE_PAPER)
    page = s.client.get(_paper(gate.arxiv_id or ""))
    assert page.status_code == 200 and "Less like this" in page.text
    assert s.client.post(_paper(gate.arxiv_id or ""), data={"opinion": "star", "csrf_token": "forged"}
                         ).status_code == 403
    assert _opinions(s) == []
    done = s.client.post(_paper(gate.arxiv_id or ""), data={"opinion": "star", "csrf_token": _csrf(page.text)},
                         follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == _paper(gate.arxiv_id or "")
    assert _opinions(s) == [("star", "web:paper")]
    again = s.client.get(_paper(gate.arxiv_id or ""))
    assert "&#9733; Starred" in again.text or "\u2605 Starred" in again.text
    s.client.post(_paper(gate.arxiv_id or ""), data={"opinion": "dislike", "csrf_token": _csrf(again.text)})
    assert _opinions(s) == [("dislike", "web:paper")]  # the latest opinion wins, as with the email's links
    s.client.cookies.clear()
    public = open_site(True)
    r = public.client.post(_paper(gate.arxiv_id or ""), data={"opinion": "star", "csrf_token": "x"})
    assert r.status_code == 403 and "Sign in first" in r.text


def _opinions(s: Search) -> list[tuple[str, str]]:
    with s.app.engine.connect() as conn:
        return [(r.kind, r.origin) for r in conn.execute(select(events.c.kind, events.c.origin)
                                                         .where(events.c.subscriber_id == s.reader_id))]


def test_the_web_view_links_each_pick_to_its_similar_papers_for_its_reader(open_site: Callable[[bool], Search]
                                                                          ) -> None:
    s = open_site(False)
    with s.app.engine.begin() as conn:
        gate = search_papers(conn, GATE_PAPER).papers[0]
        d = ledger.create_delivery(conn, subscriber_id=s.reader_id, digest_date=date(2026, 12, 5),
                                   picks=[Pick(gate, 0.9, reason="Matches: surface codes")], now=NOW)
    assert d is not None
    view = urlsplit(s.links.view_url(s.reader_id, d.id)).path
    assert "Similar papers" not in s.client.get(view).text  # the view link alone opens no paper page
    s.client.get(s.manage)
    page = s.client.get(view).text
    link = re.search(r'href="(/p/[^"#]+)#similar">Similar papers', page)
    assert link is not None and s.client.get(link.group(1)).status_code == 200


def _star(s: Search, *papers: str) -> list[int]:
    ids = []
    with s.app.engine.begin() as conn:
        for n, title in enumerate(papers):
            paper = search_papers(conn, title).papers[0]
            assert paper.id is not None
            event_store.set_opinion(conn, subscriber_id=s.reader_id, paper_id=paper.id, kind="star", origin="test",
                                    now=NOW + timedelta(minutes=n))
            ids.append(paper.id)
    return ids


def _stars(s: Search) -> set[int]:
    with s.app.engine.connect() as conn:
        return {r.paper_id for r in conn.execute(select(events.c.paper_id).where(
            events.c.subscriber_id == s.reader_id, events.c.kind == "star"))}


def test_the_library_is_the_readers_own(open_site: Callable[[bool], Search]) -> None:
    s = open_site(True)  # even with public search: a library is personal data
    for path in ("/library", "/library/export.bib", "/library/arxiv-ids.txt"):
        r = s.client.get(path)
        assert r.status_code == 404 and "Your library opens from your digest" in r.text, path
    r = s.client.post("/library/import", files={"file": ("x.txt", b"2411.00001\n")})
    assert r.status_code == 404


def test_a_reader_lists_removes_and_exports_their_stars(open_site: Callable[[bool], Search]) -> None:
    s = open_site(False)
    first, second = _star(s, GATE_PAPER, "Visual Adversarial Attack on Vision-Language Models for Autonomous Driving")
    s.client.get(s.manage)
    page = s.client.get("/library")
    assert page.status_code == 200
    titles = re.findall(r'<li><span><a href="/p/[^"]+">(.*?)</a>', page.text)
    assert [html.unescape(t) for t in titles] == [
        "Visual Adversarial Attack on Vision-Language Models for Autonomous Driving", GATE_PAPER]  # newest first
    bib = s.client.get("/library/export.bib")
    assert bib.status_code == 200 and "attachment" in bib.headers["content-disposition"]
    refs = parse_library(bib.text, "export.bib")
    with s.app.engine.connect() as conn:
        stored = paper_store.papers_by_ids(conn, [first, second])
    assert sorted(r.arxiv_id or "" for r in refs) == sorted(p.arxiv_id or "" for p in stored.values())
    assert all(r.title and r.authors for r in refs)
    ids = s.client.get("/library/arxiv-ids.txt").text.split()
    assert ids == [stored[second].arxiv_id, stored[first].arxiv_id]
    removed = s.client.post("/library", data={"paper": str(first), "csrf_token": _csrf(page.text)},
                            follow_redirects=False)
    assert removed.status_code == 303 and _stars(s) == {second}
    assert "Removed from your library" in s.client.get(removed.headers["location"]).text
    # The export reads back: importing it stars the removed paper again, and says what it did.
    back = s.client.post("/library/import", data={"csrf_token": _csrf(page.text)},
                         files={"file": ("export.bib", bib.content, "text/x-bibtex")})
    assert back.status_code == 200 and "Starred 1 paper (1 were starred already)" in back.text
    assert _stars(s) == {first, second}


def test_an_import_that_cannot_be_read_changes_nothing(open_site: Callable[[bool], Search]) -> None:
    s = open_site(False)
    _star(s, GATE_PAPER)
    s.client.get(s.manage)
    token = _csrf(s.client.get("/library").text)
    before = _stars(s)
    bad = s.client.post("/library/import", data={"csrf_token": token},
                        files={"file": ("notes.txt", b"these are my notes\nnot ids\n")})
    assert bad.status_code == 400 and "The file was not imported: notes.txt line 1: not an arXiv id" in bad.text
    broken = s.client.post("/library/import", data={"csrf_token": token},
                           files={"file": ("lib.bib", b"@article{x, title = {unclosed\n")})
    assert broken.status_code == 400 and "lib.bib line 1" in broken.text
    forged = s.client.post("/library/import", data={"csrf_token": "forged"}, files={"file": ("a.txt", b"2411.1\n")})
    assert forged.status_code == 403
    huge = s.client.post("/library/import", data={"csrf_token": token},
                         files={"file": ("big.txt", b"2411.00001\n" * 600_000)})
    assert huge.status_code == 413
    assert s.client.post("/library", data={"paper": "1"}).status_code == 403  # a form without its token
    assert _stars(s) == before
    partly = s.client.post("/library/import", data={"csrf_token": token},
                           files={"file": ("ids.txt", f"{DAY[3].arxiv_id}\n2411.99999\n".encode())})
    assert partly.status_code == 200 and "Starred 1 paper" in partly.text
    assert "2411.99999 (not in the store" in partly.text


def _rated(s: Search) -> list[tuple[str, str]]:
    with s.app.engine.connect() as conn:
        return sorted((r.kind, r.origin) for r in conn.execute(select(events.c.kind, events.c.origin).where(
            events.c.subscriber_id == s.reader_id)))


def test_a_reader_rates_a_dozen_papers_and_is_not_asked_again(open_site: Callable[[bool], Search]) -> None:
    s = open_site(False)
    assert s.client.get("/rate").status_code == 404  # no session: no rating
    s.client.get(s.manage)
    page = s.client.get("/rate")
    assert page.status_code == 200
    ids = re.findall(r'name="rate-(\d+)" value="want"', page.text)
    assert 8 <= len(ids) <= 12 and len(set(ids)) == len(ids)
    titles = [html.unescape(t) for t in re.findall(r'<article>\s*<h2><a href="/p/[^"]+">(.*?)</a>', page.text)]
    assert "surface code" in titles[0].lower()  # the best match first (the day's one new surface-code paper)
    form = {f"rate-{i}": "skip" for i in ids}
    form.update({f"rate-{ids[0]}": "want", f"rate-{ids[1]}": "want", f"rate-{ids[-1]}": "not"})
    done = s.client.post("/rate", data={**form, "csrf_token": _csrf(page.text)})
    assert done.status_code == 200 and "2 papers you want more of, 1 not for you" in done.text
    assert _rated(s) == [("dislike", "web:rate"), ("star", "web:rate"), ("star", "web:rate")]
    again = re.findall(r'name="rate-(\d+)" value="want"', s.client.get("/rate").text)
    assert not {ids[0], ids[1], ids[-1]} & set(again)


def test_a_rating_form_that_is_not_one_records_nothing(open_site: Callable[[bool], Search]) -> None:
    s = open_site(False)
    s.client.get(s.manage)
    token = _csrf(s.client.get("/rate").text)
    for form in ({"rate-abc": "want"}, {"rate-1": "maybe"}, {}, {f"rate-{i}": "want" for i in range(1, 40)},
                 {"rate-0": "want"}):
        r = s.client.post("/rate", data={**form, "csrf_token": token})
        assert r.status_code == 400 and "Not a rating" in r.text, form
    assert s.client.post("/rate", data={"rate-1": "want", "csrf_token": "forged"}).status_code == 403
    unknown = s.client.post("/rate", data={"rate-99999999": "want", "csrf_token": token})
    assert unknown.status_code == 200 and "0 papers you want more of" in unknown.text
    assert _rated(s) == []
