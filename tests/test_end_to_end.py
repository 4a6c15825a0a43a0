"""The whole daily digest against real parts: a real arXiv feed over HTTP, a real database,
a real SMTP server on 127.0.0.1. A re-run sends nothing; a refused address does not stop the rest;
a dead relay loses nothing. The links in a received email lead back to the web app and become labels.
"""

from __future__ import annotations

import email
import email.policy
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select

from digest.cli import main
from digest.config import load_settings
from digest.mail import ahead as composing
from digest.mail.render import short_date
from digest.process.forked import fork_available
from digest.rank.features import tokens
from digest.signing.tokens import LinkSigner
from digest.store import events as event_store
from digest.store.deliveries import stored_picks
from digest.store.engine import open_engine
from digest.store.papers import papers_by_ids
from digest.store.schema import deliveries, sources
from digest.web.app import create_app
from digest.wiring import secret_keys
from tests.http_server import LocalHttpServer, QuietHandler
from tests.smtp_server import SmtpServer, free_port

with warnings.catch_warnings():  # Starlette announces a move from httpx to httpx2; the client works the same
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

ARXIV = Path(__file__).parent / "fixtures" / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"


# Tomorrow morning's digest, fixed once: its candidates (the three days before it) hold the papers
# ingested now even when the clock passes midnight during the tests, and every call names the same day.
_DAY = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


def _today() -> str:
    """The digest date the tests' runs make."""
    return _DAY


@dataclass
class _FeedServer:
    url: str
    requests: list[dict[str, str]]  # each request's headers


@pytest.fixture
def feed_server() -> Iterator[_FeedServer]:
    """Serves the arXiv sample with an ETag and answers 304 to a matching If-None-Match."""
    requests: list[dict[str, str]] = []
    body = ARXIV.read_bytes()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            requests.append(dict(self.headers))
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.end_headers()
                return
            self.send_body(body, headers={"Content-Type": "application/rss+xml", "ETag": '"v1"'})

    with LocalHttpServer(Handler) as server:
        yield _FeedServer(f"{server.base}/rss/cs", requests)


def _config(tmp_path: Path, db_url: str, feed_url: str, smtp_port: int) -> dict[str, str]:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        f"database: {{url: '{db_url}'}}\n"
        f"sources:\n  - {{name: arxiv-cs, url: '{feed_url}', kind: arxiv_rss}}\n"
        "fetch: {allow_private: true, deadline_s: 20}\n"
        "delivery: {method: smtp, from_addr: digest@example.org, from_name: Paper digest}\n"
        f"smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none, timeout_s: 10}}\n"
        "web: {base_url: 'https://digest.example.org'}\n"
    )
    return {"DIGEST_CONFIG": str(cfg)}


def _cli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


@pytest.mark.parametrize("composer", ["thread", "process"])
def test_feed_to_inbox_and_rerun_sends_nothing(
    tmp_path: Path, db_url: str, feed_server: _FeedServer, smtp_server: SmtpServer, composer: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if composer == "process":  # what a large batch does: messages composed in a forked process
        if not fork_available():
            pytest.skip("no fork on this platform")
        monkeypatch.setattr(composing, "PROCESS_MIN", 1)
        # The test's SMTP and feed servers run threads, which keep the service's rule from forking;
        # the forked composer only renders, and takes none of their locks.
        monkeypatch.setattr(composing, "_may_fork", lambda: True)
    env = _config(tmp_path, db_url, feed_server.url, smtp_server.port)
    assert _cli(env, "subscribe", "ada@example.org", "--keywords", "diffusion models, image generation").exit_code == 0
    assert _cli(env, "subscribe", "alan@example.org", "--keywords", "graph neural networks",
                "--top-k", "3").exit_code == 0

    first = _cli(env, "run", "--date", _today())
    assert first.exit_code == 0, first.output + first.stderr
    assert "arxiv-cs: 1504 new" in first.output
    received = smtp_server.handler.messages
    assert sorted(r.rcpt_tos[0] for r in received) == ["ada@example.org", "alan@example.org"]
    assert smtp_server.handler.connections == 1  # one connection for the batch

    by_rcpt = {r.rcpt_tos[0]: _parse(r.data) for r in received}
    ada = by_rcpt["ada@example.org"]
    assert ada.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in ada.iter_parts()] == ["text/plain", "text/html"]
    assert ada["Subject"] == f"Your paper digest for {short_date(date.fromisoformat(_today()))}: 10 picks"
    assert ada["Message-ID"].startswith(f"<digest-{_today()}-") and ada["Message-ID"].endswith("@example.org>")
    assert ada["List-Unsubscribe"].startswith("<https://digest.example.org/unsubscribe/")
    assert ada["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Every pick matches the subscriber's keywords (in title or abstract; the reason line says which).
    text = ada.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.count("[Matches: ") == 10
    html = ada.get_body(("html",)).get_content()  # type: ignore[union-attr]
    # Paper links are signed redirects through the web app; feedback links sit beside them.
    for route in ("o", "star", "less"):
        assert html.count(f'href="https://digest.example.org/{route}/') >= 10, route
    assert "ada@example.org" not in html.split("Sent to")[0]  # no address inside the links
    alan_text = by_rcpt["alan@example.org"].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "graph" in " ".join(tokens(alan_text))

    # The same day again: nothing is sent, and the feed answers 304 to the remembered ETag.
    second = _cli(env, "run", "--date", _today())
    assert second.exit_code == 0
    assert len(smtp_server.handler.messages) == 2
    assert feed_server.requests[-1].get("If-None-Match") == '"v1"'
    assert "not modified" in second.output
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(sources.c.etag)).scalar_one() == '"v1"'
        statuses = conn.execute(select(deliveries.c.status)).scalars().all()
    engine.dispose()
    assert statuses == ["sent", "sent"]


def test_refused_recipient_is_recorded_and_others_still_get_theirs(
    tmp_path: Path, db_url: str, feed_server: _FeedServer, smtp_server: SmtpServer
) -> None:
    env = _config(tmp_path, db_url, feed_server.url, smtp_server.port)
    smtp_server.handler.rcpt_replies["gone@example.org"] = "550 5.1.1 <gone@example.org>: mailbox unavailable"
    for addr in ("ada@example.org", "gone@example.org", "grace@example.org"):
        _cli(env, "subscribe", addr, "--keywords", "large language models")
    r = _cli(env, "run", "--date", _today())
    assert r.exit_code == 1  # a failure is worth a non-zero exit for cron
    assert "gone@example.org: failed" in r.output and "550" in r.output
    assert sorted(m.rcpt_tos[0] for m in smtp_server.handler.messages) == ["ada@example.org", "grace@example.org"]
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(deliveries.c.status, deliveries.c.last_error).order_by(deliveries.c.id)).all()
    engine.dispose()
    assert [s for s, _ in rows] == ["sent", "failed", "sent"]
    assert "550" in (rows[1][1] or "")
    # A re-run does not retry a permanent failure, nor resend the others.
    _cli(env, "run", "--date", _today())
    assert len(smtp_server.handler.messages) == 2


def test_dead_relay_loses_nothing(tmp_path: Path, db_url: str, feed_server: _FeedServer,
                                  make_smtp_server: Any) -> None:
    port = free_port()
    env = _config(tmp_path, db_url, feed_server.url, port)
    _cli(env, "subscribe", "ada@example.org", "--keywords", "reinforcement learning")
    down = _cli(env, "run", "--date", _today())
    assert down.exit_code != 0
    assert f"127.0.0.1:{port}" in down.stderr and "Traceback" not in down.output
    server = make_smtp_server(port=port)
    up = _cli(env, "run", "--date", _today())
    assert up.exit_code == 0, up.output + up.stderr
    assert [m.rcpt_tos[0] for m in server.handler.messages] == ["ada@example.org"]
    msg = _parse(server.handler.messages[0].data)
    assert msg["Subject"].endswith(": 10 picks")
    assert msg.get_body(("plain",)).get_content().count("https://digest.example.org/o/") == 20  # type: ignore[union-attr]


def test_links_in_the_email_come_back_as_labels(
    tmp_path: Path, db_url: str, feed_server: _FeedServer, smtp_server: SmtpServer
) -> None:
    env = _config(tmp_path, db_url, feed_server.url, smtp_server.port)
    _cli(env, "subscribe", "ada@example.org", "--keywords", "diffusion models, image generation")
    assert _cli(env, "run", "--date", _today()).exit_code == 0
    (received,) = smtp_server.handler.messages
    html = _parse(received.data).get_body(("html",)).get_content()  # type: ignore[union-attr]
    # The first pick's links: its title links the open redirect, its buttons follow.
    open_link = re.search(r'href="(https://digest\.example\.org/o/[^"]+)"', html)
    star_link = re.search(r'href="(https://digest\.example\.org/star/[^"]+)"', html)
    assert open_link is not None and star_link is not None

    settings = load_settings(env["DIGEST_CONFIG"])
    engine = open_engine(db_url)
    with engine.connect() as conn:
        delivery_id, sub_id, sent_at = conn.execute(
            select(deliveries.c.id, deliveries.c.subscriber_id, deliveries.c.sent_at)).one()
        first = stored_picks(conn, delivery_id)[0]
        paper = papers_by_ids(conn, [first.paper_id])[first.paper_id]
    # The reader clicks well after the scanner window, so both clicks are labels.
    later = sent_at + timedelta(seconds=settings.feedback.scanner_window_s + 300)
    app = create_app(engine, LinkSigner(secret_keys(settings)),
                     scanner_window_s=settings.feedback.scanner_window_s, now=lambda: later)
    client = TestClient(app, base_url=settings.web.base_url)
    r = client.get(urlsplit(open_link.group(1)).path, follow_redirects=False)
    assert r.status_code == 302
    assert paper.url is not None and paper.url.startswith("https://arxiv.org/abs/")
    assert r.headers["location"] == paper.url
    r = client.get(urlsplit(star_link.group(1)).path)
    assert r.status_code == 200 and "Starred" in r.text
    with engine.connect() as conn:
        events = event_store.list_events(conn, sub_id, kinds=("click", "star"))
        labels = event_store.labels_for(conn, [sub_id])
    engine.dispose()
    assert [(e.kind, e.paper_id, e.delivery_id, e.flagged) for e in events] == [
        ("click", paper.id, delivery_id, False), ("star", paper.id, delivery_id, False)]
    assert [(lab.kind, lab.paper_id) for lab in labels] == [("click", paper.id), ("star", paper.id)]
