"""End to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against
`digest serve` as a real process, with the mail going to a real SMTP server on 127.0.0.1:

sign up (by keyboard alone, at phone width) -> the confirmation email -> confirm -> rate a dozen
papers -> `digest run`: none of the papers rated "not for me" in the digest, a pick liked for a
paper rated "want these" -> the manage link from the digest -> change keywords -> search from the
manage page, ordered by taste -> a paper page: its similar papers, star it -> the library, export
it -> star a paper from the web view -> unsubscribe. Screenshots go to tests/artifacts/.

Skips with a reason when Chromium or Playwright is missing, unless DIGEST_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from digest.store.engine import create_db_engine
from digest.store.schema import consents, events, subscribers
from tests.smtp_server import SmtpServer, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
FEED = Path(__file__).parents[1] / "fixtures" / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"
ADDRESS = "reader@example.org"
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser


def _unavailable(reason: str) -> None:
    if os.environ.get("DIGEST_REQUIRE_SERVICES", "") not in ("", "0", "false"):
        pytest.fail(f"the browser test is required (DIGEST_REQUIRE_SERVICES) but {reason}")
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def server(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[dict[str, Any]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = tmp_path / "state" / "digest.db"
    config = tmp_path / "config.yaml"
    config.write_text(f"""
state_dir: {tmp_path / 'state'}
database: {{url: 'sqlite:///{db}'}}
sources:
  - {{name: arxiv-new, path: '{FEED}', kind: arxiv_rss}}
  - {{name: sample, path: 'builtin:arxiv-cs-2024-11-28.xml', kind: arxiv_rss}}
delivery: {{method: smtp, from_addr: digest@example.org}}
smtp: {{host: {smtp_server.host}, port: {smtp_server.port}, security: none}}
web: {{base_url: '{base}', secret_key: 'browser-test-secret-key-0123456789'}}
digest: {{lookback_days: 60}}
""")
    env = {**os.environ, "DIGEST_CONFIG": str(config)}
    proc = subprocess.Popen([sys.executable, "-m", "digest.cli", "serve", "--port", str(port), "--no-scheduler"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "digest serve did not start"
                time.sleep(0.1)
        yield {"base": base, "env": env, "db": f"sqlite:///{db}", "smtp": smtp_server}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
        assert "Traceback" not in err, err


def _mail_to(smtp: SmtpServer, subject_part: str, timeout: float = 20) -> EmailMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in list(smtp.handler.messages):
            msg = email.message_from_bytes(m.data, policy=email.policy.default)
            if subject_part in str(msg["Subject"]) and ADDRESS in m.rcpt_tos:
                return msg  # type: ignore[return-value]
        time.sleep(0.1)
    raise AssertionError(f"no email with {subject_part!r} reached the SMTP server")


def _link(msg: EmailMessage, route: str) -> str:
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(rf"http://127\.0\.0\.1:\d+/{route}/\S+", text)
    assert found is not None, f"no /{route}/ link in the email"
    return found.group(0)


def _fits_the_screen(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def _shot(page: Any, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def test_sign_up_confirm_digest_manage_star_unsubscribe(browser: Any, server: dict[str, Any]) -> None:
    base, smtp = server["base"], server["smtp"]
    engine = create_db_engine(server["db"])
    context = browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))

    # 0. Today's listing is in the store before anyone signs up (the rating page shows it).
    ingest = subprocess.run([sys.executable, "-m", "digest.cli", "ingest"], env=server["env"], capture_output=True,
                            text=True, timeout=300)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr

    # 1. Sign up with the keyboard alone, at phone width.
    page.goto(f"{base}/subscribe")
    assert _fits_the_screen(page)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "email"
    page.keyboard.type(ADDRESS)
    page.keyboard.press("Tab")
    page.keyboard.type("large language models, reasoning")
    page.keyboard.press("Tab")  # exclude: left empty
    page.keyboard.press("Tab")  # authors to follow: left empty
    assert page.evaluate("document.activeElement.id") == "authors"
    page.keyboard.press("Tab")  # sources: arxiv-new (checked)
    page.keyboard.press("Tab")  # sources: sample (checked)
    page.keyboard.press("Tab")  # papers per digest
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    page.keyboard.press("Tab")  # delivery hour
    page.keyboard.press("Tab")  # timezone
    assert page.evaluate("document.activeElement.id") == "timezone"
    page.keyboard.type("Europe/Berlin")
    page.keyboard.press("Tab")  # cadence: daily
    page.keyboard.press("Tab")  # trending today (on by default): this reader turns it off
    assert page.evaluate("document.activeElement.name") == "trending"
    page.keyboard.press("Space")
    page.keyboard.press("Tab")  # consent
    page.keyboard.press("Space")
    _shot(page, "subscribe-phone")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Subscribe"
    with page.expect_navigation():  # the next page has loaded, not just the old one
        page.keyboard.press("Enter")
    assert "Check your inbox" in page.inner_text("h1")
    with engine.connect() as conn:
        assert conn.execute(select(subscribers)).first() is None  # nothing until confirmed

    # 2. The confirmation email reaches the SMTP server; its link asks, the button confirms.
    confirm_url = _link(_mail_to(smtp, "Confirm"), "confirm")
    page.goto(confirm_url)
    assert "Confirm your subscription" in page.inner_text("h1")
    with page.expect_navigation():  # the next page has loaded, not just the old one
        page.get_by_role("button", name="Confirm").click()
    assert "You are subscribed" in page.inner_text("h1")
    _shot(page, "confirmed")
    with engine.connect() as conn:
        sub = conn.execute(select(subscribers)).one()
        assert (sub.email, sub.keywords, sub.top_k, sub.timezone, sub.trending) == (
            ADDRESS, ["large language models", "reasoning"], 3, "Europe/Berlin", False)
        assert conn.execute(select(consents.c.confirm_ip)).scalar() == "127.0.0.1"

    # 2b. Offered on the confirm page: rate a dozen papers; two are wanted, the rest not for me.
    with page.expect_navigation():
        page.get_by_role("link", name="Rate a few papers").click()
    assert "Rate a few papers" in page.inner_text("h1") and _fits_the_screen(page)
    shown = [t.strip() for t in page.locator("article h2").all_inner_texts()]
    assert len(shown) == 12
    wanted, not_for_me = shown[:2], shown[2:]
    for i in range(12):
        page.locator('input[value="want"]' if i < 2 else 'input[value="not"]').nth(i).check()
    page.evaluate("window.scrollTo(0, 0)")
    _shot(page, "rate-phone", full_page=False)  # the top of the page: the first papers, rated
    with page.expect_navigation():
        page.get_by_role("button", name="Save my ratings").click()
    assert "2 papers you want more of, 10 not for you" in page.inner_text("main")

    # 3. The daily run (ingest, rank, send) mails the digest to the test SMTP server.
    run = subprocess.run([sys.executable, "-m", "digest.cli", "run"], env=server["env"], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    digest_mail = _mail_to(smtp, "Your paper digest")
    digest_text = " ".join(digest_mail.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    assert not [t for t in not_for_me if " ".join(t.split()) in digest_text]
    assert any(f"Like the paper you starred: {' '.join(t.split())[:30]}" in digest_text for t in wanted), digest_text
    assert digest_mail["List-Unsubscribe"].startswith(f"<{base}/unsubscribe/")

    # 4. The manage link from the email: change the keywords.
    page.goto(_link(digest_mail, "manage"))
    assert "Your paper digest" in page.inner_text("h1") and _fits_the_screen(page)
    page.get_by_label("Your interests").fill("graph neural networks, molecules")
    with page.expect_navigation():  # the next page has loaded, not just the old one
        page.get_by_role("button", name="Save changes").click()
    assert "Saved." in page.inner_text(".notice")
    _shot(page, "manage-phone")
    with engine.connect() as conn:
        assert conn.execute(select(subscribers.c.keywords)).scalar() == ["graph neural networks", "molecules"]

    # 4b. From the manage page, search every paper by keyboard, then order the matches by taste.
    page.get_by_label("Search every paper the digest has seen").fill("graph neural networks")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Every paper the digest has seen" in page.inner_text("h1") and _fits_the_screen(page)
    assert page.locator("ol.results li").count() > 0
    page.get_by_label("My taste").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    assert "ordered by your taste" in page.inner_text("main")
    _shot(page, "search-phone", full_page=False)  # the first screen: twenty results make a long page

    # 4c. A result's own page: its similar papers, and a star from there; then the library and its export.
    with page.expect_navigation():
        page.locator("ol.results h2 a").first.click()
    starred_title = page.inner_text("h1")
    assert page.locator("#similar").count() == 1 and _fits_the_screen(page)
    with page.expect_navigation():
        page.get_by_role("button", name="\u2605 Star").click()
    assert "Starred" in page.inner_text("main")
    page.goto(f"{base}/library")
    assert starred_title in page.inner_text("main")
    with page.expect_download() as download:
        page.get_by_role("link", name="BibTeX").click()
    bib = Path(download.value.path()).read_text(encoding="utf-8")
    assert bib.count("@misc{") >= 3  # the two rated "want these" and the one starred from its page

    # 5. The web view of the digest: star the first paper.
    desktop = browser.new_context(viewport={"width": 1100, "height": 900})
    view = desktop.new_page()
    view.goto(_link(digest_mail, "view"))
    assert _fits_the_screen(view)
    _shot(view, "web-view")
    with view.expect_navigation():  # the next page has loaded, not just the old one
        view.get_by_role("link", name="\u2605 Star").first.click()
    assert "Starred:" in view.inner_text("h1")
    with engine.connect() as conn:
        origins = set(conn.execute(select(events.c.origin).where(events.c.kind == "star")).scalars())
        assert origins == {"web:rate", "web:paper", "web:star"}  # the rating, the paper page, the web view
    desktop.close()

    # 6. Unsubscribe from the page the List-Unsubscribe link opens.
    unsubscribe_url = digest_mail["List-Unsubscribe"].strip("<>")
    page.goto(unsubscribe_url)
    with page.expect_navigation():  # the next page has loaded, not just the old one
        page.get_by_role("button", name="Unsubscribe").click()
    assert "You are unsubscribed" in page.inner_text("h1")
    with engine.connect() as conn:
        assert conn.execute(select(subscribers.c.active)).scalar() is False
    # RFC 8058 one-click, as a mail client sends it: no cookies, 200, no redirect, idempotent.
    for _ in range(2):
        r = httpx.post(unsubscribe_url, content=b"List-Unsubscribe=One-Click",
                       headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
        assert r.status_code == 200 and "location" not in r.headers

    # Every page came from the server itself: no CDN, no web font.
    assert requests and all(u.startswith(base) for u in requests), [u for u in requests if not u.startswith(base)]
    context.close()
    engine.dispose()
