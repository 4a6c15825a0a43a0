""""Feed only" against real parts: a real arXiv feed over HTTP, a real database, a real SMTP server on
127.0.0.1, the feed read through the web app. A reader with email off is mailed nothing, ever, and their
feed holds the day's picks; the others get their email as before; nothing is counted to retry."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
from sqlalchemy import create_engine, select

from digest.config import load_settings
from digest.signing.tokens import LinkSigner
from digest.store.deliveries import EMAIL_TURNED_OFF
from digest.store.engine import open_engine
from digest.store.schema import deliveries, subscribers
from digest.web.app import create_app
from digest.web.serve import web_options
from digest.wiring import secret_keys
from tests.smtp_server import SmtpServer, free_port
from tests.test_end_to_end import _cli, _config, _FeedServer, _today, feed_server  # noqa: F401

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


def _statuses(db_url: str) -> dict[str, tuple[str, int, str | None]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(subscribers.c.email, deliveries.c.status, deliveries.c.n_picks,
                                   deliveries.c.last_error)
                            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)).all()
    engine.dispose()
    return {r.email: (r.status, r.n_picks, r.last_error) for r in rows}


def _read_feed(env: dict[str, str], url: str) -> Any:
    """The feed as a feed reader gets it: through the web app `digest serve` runs."""
    settings = load_settings(env["DIGEST_CONFIG"])
    engine = open_engine(settings.database_url)
    try:
        client = TestClient(create_app(engine, LinkSigner(secret_keys(settings)), scanner_window_s=0,
                                       options=web_options(settings)), base_url=settings.web.base_url)
        resp = client.get(urlsplit(url).path)
        assert resp.status_code == 200, resp.text
        return feedparser.parse(resp.content)
    finally:
        engine.dispose()


def test_a_feed_only_reader_is_mailed_nothing_and_their_feed_has_the_picks(
        tmp_path: Path, db_url: str, feed_server: _FeedServer, smtp_server: SmtpServer) -> None:  # noqa: F811
    env = _config(tmp_path, db_url, feed_server.url, smtp_server.port)
    assert _cli(env, "subscribe", "ada@example.org", "--keywords", "diffusion models").exit_code == 0
    made = _cli(env, "subscribe", "grace@example.org", "--keywords", "large language models", "--no-email")
    assert made.exit_code == 0 and "feed only, no email" in made.output
    assert "grace@example.org" in _cli(env, "subscribers").output.split("[feed only]")[0]

    run = _cli(env, "run", "--date", _today())
    assert run.exit_code == 0, run.output + run.stderr
    assert [m.rcpt_tos[0] for m in smtp_server.handler.messages] == ["ada@example.org"]
    assert "grace@example.org: recorded, 10 picks  (feed only: recorded for the feed, not mailed)" in run.output
    assert "1 sent, 1 for feeds only" in run.output and "0 to retry" in run.output
    assert _statuses(db_url)["grace@example.org"][:2] == ("recorded", 10)

    url = _cli(env, "feed-url", "grace@example.org").stdout.strip()
    assert url.startswith("https://digest.example.org/feed/") and url.endswith(".atom")
    parsed = _read_feed(env, url)
    assert parsed.bozo == 0 and len(parsed.entries) == 10
    assert all("Matches:" in e.content[0].value and "/star/" in e.content[0].value for e in parsed.entries)

    # Nothing for her is retried or sent again, by a re-run or by `digest retry`.
    assert _cli(env, "run", "--date", _today()).exit_code == 0
    retry = _cli(env, "retry")
    assert retry.exit_code == 0 and "0 to retry" in retry.output
    assert len(smtp_server.handler.messages) == 1
    status = _cli(env, "status").output
    assert "1 sent, 1 for feeds only" in status and "All digest dates: 0 to retry" in status

    # A new address through the CLI retires the old one.
    new = _cli(env, "feed-url", "grace@example.org", "--new")
    assert new.exit_code == 0 and "the old one no longer works" in new.stderr and new.stdout.strip() != url
    assert len(_read_feed(env, new.stdout.strip()).entries) == 10


def test_a_digest_still_unsent_when_email_is_turned_off_is_kept_for_the_feed_not_mailed(
        tmp_path: Path, db_url: str, feed_server: _FeedServer, make_smtp_server: Any) -> None:  # noqa: F811
    port = free_port()
    env = _config(tmp_path, db_url, feed_server.url, port)
    _cli(env, "subscribe", "ada@example.org", "--keywords", "reinforcement learning")
    down = _cli(env, "run", "--date", _today())  # the relay is down: the digest waits in the ledger
    assert down.exit_code != 0 and _statuses(db_url)["ada@example.org"][0] == "pending"
    assert "1 to retry" in _cli(env, "status").output

    assert _cli(env, "subscribe", "ada@example.org", "--no-email").exit_code == 0
    assert "0 to retry" in _cli(env, "status").output  # a feed-only reader's digest waits for no relay
    server = make_smtp_server(port=port)
    up = _cli(env, "run", "--date", _today())
    assert up.exit_code == 0, up.output + up.stderr
    assert f"ada@example.org: recorded, 10 picks  ({EMAIL_TURNED_OFF})" in up.output
    assert server.handler.messages == []
    assert _statuses(db_url)["ada@example.org"] == ("recorded", 10, EMAIL_TURNED_OFF)
    assert _cli(env, "retry").exit_code == 0 and server.handler.messages == []

    # Email on again: the digest kept for the feed is never mailed late.
    assert "feed only" not in _cli(env, "subscribe", "ada@example.org", "--email").output
    assert _cli(env, "run", "--date", _today()).exit_code == 0
    assert server.handler.messages == []
