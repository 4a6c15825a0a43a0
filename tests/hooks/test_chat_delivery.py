"""Chat channels in the daily run, against a real webhook endpoint on 127.0.0.1 (tests/hook_server.py)
and a real SMTP server: posted once with the email's picks, retried after Retry-After, given up at the
deadline, paused after failing day after day while the email goes on, and secrets never shown."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from digest.config import Settings
from digest.domain import Paper
from digest.hooks.spec import check_hook
from digest.store import channels as channel_store
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.schema import channels, deliveries
from digest.wiring import App
from tests.hook_server import HookRecorder, Reply
from tests.smtp_server import SmtpServer

DAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
SECRET_PATH = "/services/T000/B000/s3cr3tWebhookPath"
TOKEN = "syt_c2VjcmV0_tokenVALUE123"


def _p(n: int, title: str, abstract: str) -> Paper:
    return Paper(canonical_id=f"arxiv:2411.{n:05d}", arxiv_id=f"2411.{n:05d}", version=1, title=title,
                 abstract=abstract, url=f"https://arxiv.org/abs/2411.{n:05d}",
                 pdf_url=f"https://arxiv.org/pdf/2411.{n:05d}", authors=("A. Author", "B. Author"),
                 announce_type="new", source="test")


PAPERS = [
    _p(1, "Sparse attention for long documents", "We make transformer attention sparse."),
    _p(2, "Diffusion models for protein design", "Denoising diffusion models generate proteins."),
    _p(4, "Block-sparse attention <kernels> & @everyone", "Fast GPU kernels for sparse attention patterns."),
]


def _settings(tmp_path: Path, db_url: str, smtp: SmtpServer, **hooks: Any) -> Settings:
    data: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "database": {"url": db_url},
        "sources": [],
        "web": {"base_url": "https://digest.example.org", "secret_key": "k" * 32},
        "delivery": {"method": "smtp", "from_addr": "digest@example.org", "retry_backoff_s": 60,
                     "retry_backoff_max_s": 600, "retry_for_h": 2},
        "smtp": {"host": smtp.host, "port": smtp.port, "security": "none", "timeout_s": 5},
        "fetch": {"allow_private": True},
        "webhooks": {"timeout_s": 1.0, **hooks},
    }
    return Settings(**data)


@pytest.fixture
def hooks() -> Iterator[HookRecorder]:
    with HookRecorder() as recorder:
        yield recorder


def _app(tmp_path: Path, db_url: str, smtp: SmtpServer, **hooks: Any) -> App:
    app = App.open(_settings(tmp_path, db_url, smtp, **hooks))
    with app.engine.begin() as conn:
        paper_store.upsert_papers(conn, PAPERS, NOW.replace(tzinfo=None) - timedelta(hours=2))
        sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["sparse attention"],
                                    now=NOW.replace(tzinfo=None))
    return app


def _add(app: App, url: str, **kw: Any) -> int:
    spec = check_hook(url, allow_private=True, **kw)
    with app.engine.begin() as conn:
        sub = sub_store.require_subscriber(conn, "ada@example.org")
        found, _ = channel_store.add(conn, sub.id, kind=spec.kind, url=spec.url, room_id=spec.room_id,
                                     token=spec.token, now=NOW.replace(tzinfo=None))
    return found.id


def _rows(app: App) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(select(deliveries).order_by(deliveries.c.id)))


def test_slack_gets_the_emails_picks_once_and_a_rerun_posts_nothing(
        tmp_path: Path, db_url: str, smtp_server: SmtpServer, hooks: HookRecorder) -> None:
    app = _app(tmp_path, db_url, smtp_server)
    _add(app, hooks.url(SECRET_PATH), kind="slack")
    report = app.pipeline().run(DAY, NOW)
    assert report.count("sent") == 1 and [o.status for o in report.chat] == ["sent"]
    assert smtp_server.handler.wait_for(1)
    (post,) = hooks.at("/services")
    body = post.json()
    assert post.method == "POST" and post.headers["Content-Type"] == "application/json"
    assert body["blocks"][0]["type"] == "header" and "2 picks" in body["blocks"][0]["text"]["text"]
    sections = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    # The email's picks, in its order; the title's markup escaped for Slack's mrkdwn.
    assert "Sparse attention for long documents" in sections[0] or "Sparse attention" in sections[1]
    assert any("&lt;kernels&gt; &amp; @everyone" in s for s in sections)
    buttons = [e for b in body["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {e["text"]["text"] for e in buttons} >= {"Star", "Less like this"}
    assert all(e["url"].startswith("https://digest.example.org/") for e in buttons)
    mail = smtp_server.handler.messages[0].data.decode()
    star = next(e["url"] for e in buttons if e["text"]["text"] == "Star")
    assert star.rsplit("/", 1)[0] in mail  # the same signed routes as the email's

    again = app.pipeline().run(DAY, NOW + timedelta(minutes=5))
    assert [o.status for o in again.chat] == ["already_sent"] and again.count("already_sent") == 1
    assert len(hooks.at("/services")) == 1 and len(smtp_server.handler.messages) == 1
    assert sorted(r.channel for r in _rows(app)) == ["email", "hook:1"]
    app.close()


def test_429_is_retried_after_its_retry_after(tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer,
                                              hooks: HookRecorder) -> None:
    app = _app(tmp_path, sqlite_url, smtp_server)
    _add(app, hooks.url("/busy"), kind="json")
    hooks.script("/busy", Reply(429, retry_after="120", body=b"slow down"), Reply(200))
    report = app.pipeline().run(DAY, NOW)
    (chat,) = report.chat
    assert chat.status == "temp_failed" and "HTTP 429" in chat.detail and "retry after 120s" in chat.detail
    row = next(r for r in _rows(app) if r.channel != "email")
    wait = row.next_attempt_at - NOW.replace(tzinfo=None)
    assert timedelta(seconds=120) <= wait < timedelta(seconds=130)  # the server's wait, not the 60 s backoff

    assert [o for o in app.pipeline().retry_due(NOW + timedelta(seconds=100)) if o.channel != "email"] == []
    assert len(hooks.at("/busy")) == 1  # not before its time
    later = app.pipeline().retry_due(NOW + timedelta(seconds=121))
    assert [(o.channel.split()[0], o.status) for o in later] == [("json", "sent")]
    assert len(hooks.at("/busy")) == 2
    body = hooks.at("/busy")[1].json()
    assert body["version"] == 1 and body["date"] == "2026-11-29" and len(body["picks"]) == 2
    assert set(body["picks"][0]) >= {"title", "url", "reason", "star_url", "dislike_url", "authors"}
    app.close()


def test_a_failing_endpoint_is_given_up_at_the_deadline(tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer,
                                                       hooks: HookRecorder) -> None:
    app = _app(tmp_path, sqlite_url, smtp_server)
    _add(app, hooks.url("/down"), kind="discord")
    hooks.script("/down", Reply(500, body=b"oops"))
    assert [o.status for o in app.pipeline().run(DAY, NOW).chat] == ["temp_failed"]
    assert [o.status for o in app.pipeline().retry_due(NOW + timedelta(minutes=5))] == ["temp_failed"]
    (gone,) = app.pipeline().retry_due(NOW + timedelta(hours=3))
    assert gone.status == "failed" and "gave up after 2 attempt(s)" in gone.detail and "HTTP 500" in gone.detail
    assert len(hooks.at("/down")) == 2
    assert app.pipeline().retry_due(NOW + timedelta(hours=4)) == []
    app.close()


def test_a_dry_run_tells_a_chat_message_left_to_retry_and_posts_nothing(
        tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer, hooks: HookRecorder) -> None:
    app = _app(tmp_path, sqlite_url, smtp_server)
    _add(app, hooks.url(SECRET_PATH), kind="slack")
    hooks.script("/services", Reply(500, body=b"oops"))
    assert [o.status for o in app.pipeline().run(DAY, NOW).chat] == ["temp_failed"]
    before = [(r.status, r.attempts) for r in _rows(app)]
    # Its retry time has come: a run would post it again; a dry run only says so, by the masked label.
    dry = app.pipeline().run(DAY, NOW + timedelta(minutes=5), dry_run=True)
    assert [(o.status, o.channel) for o in dry.chat] == [("would_send", f"slack {hooks.base}/***")]
    assert dry.count("already_sent") == 1  # the email went out the first time
    assert len(hooks.at("/services")) == 1 and [(r.status, r.attempts) for r in _rows(app)] == before
    app.close()


def test_a_hang_times_out_and_is_retried(tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer,
                                         hooks: HookRecorder) -> None:
    app = _app(tmp_path, sqlite_url, smtp_server)
    _add(app, hooks.url("/slow"), kind="json")
    hooks.script("/slow", Reply(hang=True), Reply(200))
    (chat,) = app.pipeline().run(DAY, NOW).chat
    # The body went out before the silence: it may have arrived, as an email cut off after DATA.
    assert chat.status == "unknown" and "no answer within 1s" in chat.detail
    assert smtp_server.handler.wait_for(1)  # the email did not wait for the chat
    again = app.pipeline().retry_due(NOW + timedelta(minutes=2))
    assert [o.status for o in again] == ["sent"] and len(hooks.at("/slow")) == 2
    app.close()


def test_matrix_puts_one_transaction_per_digest_with_the_token(
        tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer, hooks: HookRecorder,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = _app(tmp_path, sqlite_url, smtp_server)
    _add(app, hooks.base, kind="matrix", room="!room:example.org", token=TOKEN)
    hooks.script("/_matrix", Reply(hang=True), Reply(200, body=b'{"event_id": "$e"}'))
    (chat,) = app.pipeline().run(DAY, NOW).chat
    assert chat.status == "temp_failed"  # a resend of the same transaction is not a second message
    (sent,) = app.pipeline().retry_due(NOW + timedelta(minutes=2))
    assert sent.status == "sent"
    first, second = hooks.at("/_matrix")
    assert first.method == second.method == "PUT" and first.path == second.path
    assert unquote(first.path).startswith("/_matrix/client/v3/rooms/!room:example.org/send/m.room.message/digest-")
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    body = second.json()
    assert body["msgtype"] == "m.notice" and "Sparse attention for long documents" in body["body"]
    assert body["format"] == "org.matrix.custom.html"
    assert "&lt;kernels&gt;" in body["formatted_body"] and "<kernels>" not in body["formatted_body"]
    with app.engine.connect() as conn:
        stored = [r.last_error or "" for r in conn.execute(select(deliveries))]
    assert TOKEN not in caplog.text and not any(TOKEN in e for e in stored)
    app.close()


def test_a_redirect_is_never_followed_and_a_private_address_is_refused_at_send_time(
        tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer, hooks: HookRecorder) -> None:
    app = _app(tmp_path, sqlite_url, smtp_server)
    _add(app, hooks.url("/moved"), kind="json")
    hooks.script("/moved", Reply(302, location="http://169.254.169.254/latest/meta-data"))
    (chat,) = app.pipeline().run(DAY, NOW).chat
    assert chat.status == "failed" and "HTTP 302" in chat.detail and "not followed" in chat.detail
    assert len(hooks.received) == 1
    app.close()
    # The operator turned fetch.allow_private off since: the endpoint on 127.0.0.1 is refused, not posted to.
    loose = _settings(tmp_path, sqlite_url, smtp_server)
    strict = App.open(loose.model_copy(update={"fetch": loose.fetch.model_copy(update={"allow_private": False})}))
    with strict.engine.begin() as conn:
        paper_store.upsert_papers(conn, [_p(20, "Sparse attention again", "sparse attention")],
                                  NOW.replace(tzinfo=None) + timedelta(hours=20))
    (chat,) = strict.pipeline().run(DAY + timedelta(days=1), NOW + timedelta(days=1)).chat
    assert chat.status == "failed" and "refusing 127.0.0.1" in chat.detail and len(hooks.received) == 1
    strict.close()


def test_a_matrix_alias_is_looked_up_in_the_directory(tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer,
                                                       hooks: HookRecorder) -> None:
    app = _app(tmp_path, sqlite_url, smtp_server)
    _add(app, hooks.base, kind="matrix", room="#papers:example.org", token=TOKEN)
    hooks.script("/_matrix/client/v3/directory", Reply(200, body=b'{"room_id": "!real:example.org"}'))
    hooks.script("/_matrix/client/v3/rooms", Reply(200, body=b'{"event_id": "$e"}'))
    assert [o.status for o in app.pipeline().run(DAY, NOW).chat] == ["sent"]
    lookup, put = hooks.at("/_matrix")
    assert lookup.method == "GET" and unquote(lookup.path).endswith("/directory/room/#papers:example.org")
    assert put.method == "PUT" and unquote(put.path).startswith("/_matrix/client/v3/rooms/!real:example.org/send/")
    app.close()


def test_a_channel_failing_day_after_day_is_paused_and_the_email_goes_on(
        tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer, hooks: HookRecorder,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    app = _app(tmp_path, sqlite_url, smtp_server, pause_after_failures=2)
    url = hooks.url(SECRET_PATH)
    _add(app, url, kind="slack")
    hooks.script("/services", Reply(404, body=f"no_service {SECRET_PATH}".encode()))
    for day in range(3):
        when = NOW + timedelta(days=day)
        with app.engine.begin() as conn:  # a new paper each day, so that each day has a digest
            paper_store.upsert_papers(conn, [_p(10 + day, f"Sparse attention day {day}", "sparse attention")],
                                      when.replace(tzinfo=None) - timedelta(hours=1))
        report = app.pipeline().run(DAY + timedelta(days=day), when)
        assert report.count("sent") == 1  # the email, every day
        assert [o.status for o in report.chat] == (["failed"] if day < 2 else [])
    assert smtp_server.handler.wait_for(3) and len(smtp_server.handler.messages) == 3
    assert len(hooks.at("/services")) == 2  # nothing posted once paused
    with app.engine.connect() as conn:
        (paused,) = channel_store.paused(conn)
        stored = conn.execute(select(channels.c.last_error)).scalar_one()
        errors = [r.last_error or "" for r in conn.execute(select(deliveries))]
    assert paused.channel.consecutive_failures == 2 and "HTTP 404" in (stored or "")

    monkeypatch.setenv("DIGEST_CONFIG", "")
    from digest.cli import main

    env = {"DIGEST_STATE_DIR": str(tmp_path / "state"), "DIGEST_DATABASE__URL": sqlite_url}
    status = CliRunner().invoke(main, ["status"], env=env)
    assert status.exit_code == 0, status.output
    assert "Paused chat channels" in status.output
    assert "ada@example.org  channel 1 slack http://127.0.0.1:" in status.output
    assert "digest channel resume ada@example.org 1" in status.output
    listed = CliRunner().invoke(main, ["channel", "list", "ada@example.org"], env=env)
    assert "HTTP Request: POST http://127.0.0.1:" in caplog.text and "/***" in caplog.text  # httpx's, masked
    # The secret never shows: not in the logs, status, the stored errors, the list.
    for text in (caplog.text, status.output, stored or "", *errors, listed.output):
        assert SECRET_PATH not in text and "s3cr3t" not in text, text
    app.close()


def test_digest_run_shows_each_channel_and_the_policy_caps_retry_after(tmp_path: Path, hooks: HookRecorder) -> None:
    from digest.cli import main
    from digest.pipeline.send import DeliveryPolicy

    env = {"DIGEST_CONFIG": "", "DIGEST_STATE_DIR": str(tmp_path / "state"), "DIGEST_FETCH__ALLOW_PRIVATE": "true",
           "DIGEST_WEB__SECRET_KEY": "k" * 32}
    run = CliRunner().invoke
    assert run(main, ["subscribe", "ada@example.org", "-k", "diffusion models"], env=env).exit_code == 0
    assert run(main, ["channel", "add", "ada@example.org", hooks.url("/ok"), "--kind", "json"], env=env).exit_code == 0
    hooks.script("/ok", Reply(503, retry_after="30"))
    r = run(main, ["run"], env=env)
    assert r.exit_code == 1  # a digest is left to retry
    line = next(x for x in r.output.splitlines() if " via " in x)
    assert line.startswith("  ada@example.org via json http://127.0.0.1:") and "/***: temp failed" in line
    assert "HTTP 503" in line and "1 to retry; chat: 0 sent, 0 failed" in r.output
    capped = DeliveryPolicy(retry_backoff_max_s=600).next_attempt(1, NOW, retry_after_s=86400)
    assert capped == NOW + timedelta(seconds=600)


def test_a_feed_only_reader_still_gets_the_chat_message_and_no_email(
        tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer, hooks: HookRecorder) -> None:
    app = _app(tmp_path, sqlite_url, smtp_server)
    _add(app, hooks.url(SECRET_PATH), kind="slack")
    with app.engine.begin() as conn:
        sub = sub_store.require_subscriber(conn, "ada@example.org")
        sub_store.set_email_enabled(conn, sub.id, False, NOW.replace(tzinfo=None))
    report = app.pipeline().run(DAY, NOW)
    assert [o.status for o in report.chat] == ["sent"] and len(hooks.at("/services")) == 1
    assert report.count("sent") == 0 and smtp_server.handler.messages == []
    assert sorted((r.channel, r.status) for r in _rows(app)) == [("email", "recorded"), ("hook:1", "sent")]
    with app.engine.connect() as conn:  # the feed shows the digest once, not once more per chat channel
        from digest.store.deliveries import recorded_digests
        assert len(recorded_digests(conn, sub.id, DAY)) == 1
    app.close()
