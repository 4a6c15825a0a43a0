"""Adding a chat channel: a URL that cannot be used is refused at once, in one line, nothing stored;
the message for each kind keeps its service's shape and limits; secrets are masked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from digest.cli import main
from digest.domain import DigestContent, Paper, Pick, PickLinks
from digest.hooks.formats import discord_body, json_body, matrix_body, slack_body
from digest.hooks.masking import mask_url, scrub, secret_parts
from digest.hooks.post import retry_after
from digest.hooks.spec import HookInputError, check_hook, infer_kind
from digest.store.engine import open_engine
from digest.store.schema import channels

SECRET = "/api/webhooks/123/tOkEnPaRt"


@pytest.mark.parametrize(("url", "kw", "needle", "field"), [
    ("", {}, "give the URL", "url"),
    ("ftp://127.0.0.1/hook", {}, "must be an https:// URL", "url"),
    ("https://user:pw@127.0.0.1/hook", {}, "user name or password", "url"),
    ("https://127.0.0.1:99999/x", {}, "not a valid URL", "url"),
    ("https://127.0.0.1/has space", {}, "not a URL", "url"),
    ("https://127.0.0.1/hook", {"kind": "teams"}, "must be one of slack, discord, matrix, json", "kind"),
    ("https://127.0.0.1/x", {"kind": "slack", "room": "!r:x.org"}, "for a matrix channel", "kind"),
    ("https://127.0.0.1/_matrix", {"kind": "matrix", "room": "!r:x.org", "token": "t"}, "without a path", "url"),
    ("https://127.0.0.1", {"kind": "matrix", "token": "t"}, "give the room", "room"),
    ("https://127.0.0.1", {"kind": "matrix", "room": "room", "token": "t"}, "!id:server or #alias:server", "room"),
    ("https://127.0.0.1", {"kind": "matrix", "room": "!r:x.org"}, "access token", "token"),
])
def test_unusable_channels_are_refused_in_one_line(url: str, kw: dict[str, Any], needle: str, field: str) -> None:
    with pytest.raises(HookInputError) as caught:
        check_hook(url, allow_private=True, **kw)
    assert needle in str(caught.value) and "\n" not in str(caught.value) and caught.value.field == field


def test_addresses_are_checked_as_a_feeds_are() -> None:
    with pytest.raises(HookInputError, match="private, loopback or reserved"):
        check_hook("https://127.0.0.1/hook")  # without fetch.allow_private
    for metadata in ("http://169.254.169.254/latest", "https://[fd00:ec2::254]/x"):
        with pytest.raises(HookInputError, match="metadata"):
            check_hook(metadata, allow_private=True)  # never, whatever the setting
    with pytest.raises(HookInputError, match="cannot resolve host"):
        check_hook("https://no-such-host.invalid/hook", resolve_timeout_s=2)
    with pytest.raises(HookInputError, match="must be https"):
        check_hook("http://8.8.8.8/hook", allow_private=True)  # plain http only to a private test address
    spec = check_hook("http://127.0.0.1:8080/hook", allow_private=True)
    assert spec.kind == "json" and spec.label == "json http://127.0.0.1:8080/***"


def test_the_kind_is_read_from_the_host() -> None:
    assert infer_kind("https://hooks.slack.com/services/T0/B0/x") == "slack"
    assert infer_kind("https://discord.com/api/webhooks/1/x") == "discord"
    assert infer_kind("https://discord.com/channels/1") is None
    assert infer_kind("https://example.org/hook") is None


def test_secrets_are_masked() -> None:
    url = f"https://discord.com{SECRET}?wait=true"
    assert mask_url(url) == "https://discord.com/***"
    text = f"POST {url} failed; path {SECRET}; token syt_abc123"
    cleaned = scrub(text, secret_parts(url, "syt_abc123"))
    assert "tOkEnPaRt" not in cleaned and "syt_abc123" not in cleaned and "discord.com" in cleaned


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert retry_after("30") == 30.0
    assert retry_after("Sun, 29 Nov 2026 06:02:00 GMT", now) == 120.0
    assert retry_after("Sun, 29 Nov 2026 05:00:00 GMT", now) == 0.0
    assert retry_after("soon") is None and retry_after(None) is None


def _content(n: int) -> DigestContent:
    picks, links = [], []
    for i in range(n):
        paper = Paper(canonical_id=f"arxiv:{i}", title=f"Paper {i} <b>bold</b> @everyone **x** " + "long " * 80,
                      authors=("Ada Lovelace", "Alan Turing", "Grace Hopper", "Someone Else"),
                      url=f"https://arxiv.org/abs/{i}", arxiv_id=f"2411.{i:05d}", id=i + 1)
        picks.append(Pick(paper, 0.5, ("sparse attention",), "Matches: sparse attention"))
        links.append(PickLinks(f"https://d.example.org/o/{i}", None, f"https://d.example.org/star/{i}",
                               f"https://d.example.org/less/{i}"))
    return DigestContent(to_addr="ada@example.org", digest_date=date(2026, 11, 29), picks=tuple(picks),
                         links=tuple(links), unsubscribe_url=None, view_url="https://d.example.org/view/x",
                         manage_url="javascript:alert(1)")


def test_slack_blocks_keep_within_slacks_limits() -> None:
    body = slack_body(_content(30))
    assert body["text"].startswith("Your paper digest for") and len(body["blocks"]) <= 50
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": body["text"]}}
    assert {b["type"] for b in body["blocks"]} == {"header", "section", "context", "actions"}
    section = next(b for b in body["blocks"] if b["type"] == "section")["text"]["text"]
    assert section.startswith("*1. <https://d.example.org/o/0|Paper 0 &lt;b&gt;bold&lt;/b&gt;")
    assert "more in the browser" in body["blocks"][-1]["elements"][0]["text"]
    assert "javascript:" not in str(body)  # a link that is not http(s) is left out


def test_discord_embeds_keep_within_discords_limits() -> None:
    body = discord_body(_content(12))
    embeds = body["embeds"]
    assert len(embeds) <= 10 and body["allowed_mentions"] == {"parse": []}
    total = sum(len(e.get("title", "")) + len(e.get("description", "")) + len(e.get("footer", {}).get("text", ""))
                for e in embeds) + len(body["content"])
    assert total <= 6000 and all(len(e.get("title", "")) <= 256 for e in embeds)
    # A title is plain text; a mention in it pings nobody (allowed_mentions above).
    assert embeds[0]["url"] == "https://d.example.org/o/0" and embeds[0]["title"].startswith("1. Paper 0 <b>")
    assert "[Star](<https://d.example.org/star/0>)" in embeds[0]["description"]
    assert "more in the browser" in embeds[-1]["description"]


def test_matrix_html_is_clean_and_json_is_documented() -> None:
    body = matrix_body(_content(2))
    html = body["formatted_body"]
    assert "<b>" not in html and "&lt;b&gt;bold" in html and 'href="https://d.example.org/star/0"' in html
    assert "javascript" not in html and body["msgtype"] == "m.notice"
    data = json_body(_content(2))
    assert data["version"] == 1 and data["date"] == "2026-11-29" and data["manage_url"] is None
    assert data["picks"][0]["star_url"] == "https://d.example.org/star/0"
    assert data["picks"][0]["authors"] == "Ada Lovelace, Alan Turing, Grace Hopper and 1 more"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {"DIGEST_STATE_DIR": str(tmp_path / "state"), "DIGEST_CONFIG": "", "DIGEST_FETCH__ALLOW_PRIVATE": "true",
           "DIGEST_DATABASE__URL": f"sqlite:///{tmp_path / 'digest.db'}"}


def _stored(env: dict[str, str]) -> int:
    engine = open_engine(env["DIGEST_DATABASE__URL"])
    with engine.connect() as conn:
        n = len(conn.execute(select(channels)).all())
    engine.dispose()
    return n


def test_channel_commands(env: dict[str, str]) -> None:
    run = CliRunner().invoke
    assert run(main, ["subscribe", "ada@example.org", "-k", "sparse attention"], env=env).exit_code == 0
    bad = run(main, ["channel", "add", "ada@example.org", "http://169.254.169.254/x/SECRETPATH"], env=env)
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and bad.output.startswith("error: webhook URL")
    assert "SECRETPATH" not in bad.output and _stored(env) == 0
    no_room = run(main, ["channel", "add", "ada@example.org", "https://127.0.0.1", "--kind", "matrix"], env=env)
    assert no_room.exit_code == 2 and "Matrix room" in no_room.output and _stored(env) == 0

    ok = run(main, ["channel", "add", "ada@example.org", "-", "--kind", "slack"], input="http://127.0.0.1:9/SECRETPATH\n",
             env=env)
    assert ok.exit_code == 0 and "Added channel 1 for ada@example.org: slack http://127.0.0.1:9/***" in ok.output
    matrix = run(main, ["channel", "add", "ada@example.org", "http://127.0.0.1:9", "--matrix-room", "#r:example.org"],
                 env={**env, "DIGEST_MATRIX_TOKEN": "syt_TOKEN"})
    assert matrix.exit_code == 0 and "matrix http://127.0.0.1:9/*** room #r:example.org" in matrix.output
    listed = run(main, ["channel", "list", "ada@example.org"], env=env)
    assert listed.output.splitlines() == ["1  slack http://127.0.0.1:9/***",
                                          "2  matrix http://127.0.0.1:9/*** room #r:example.org"]
    assert "SECRETPATH" not in listed.output and "syt_TOKEN" not in listed.output
    everyone = run(main, ["subscribers"], env=env)  # the kinds beside the subscriber, never the URLs
    assert "(chat: slack, matrix)" in everyone.output and "127.0.0.1" not in everyone.output
    gone = run(main, ["channel", "remove", "ada@example.org", "1"], env=env)
    assert gone.exit_code == 0 and _stored(env) == 1
    missing = run(main, ["channel", "remove", "ada@example.org", "7"], env=env)
    assert missing.exit_code == 2 and "has no chat channel 7" in missing.output


def test_a_webhook_given_when_subscribing_is_checked_before_anything_is_stored(env: dict[str, str]) -> None:
    run = CliRunner().invoke
    bad = run(main, ["subscribe", "ada@example.org", "-k", "sparse attention", "--webhook",
                     "http://169.254.169.254/x/SECRETPATH"], env=env)
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and bad.output.startswith("error: --webhook: webhook URL")
    assert "SECRETPATH" not in bad.output
    assert "No subscribers yet" in run(main, ["subscribers"], env=env).output and _stored(env) == 0

    ok = run(main, ["subscribe", "ada@example.org", "-k", "sparse attention", "--webhook",
                    "http://127.0.0.1:9/SECRETPATH"], env=env)
    assert ok.exit_code == 0 and "; chat channel 1: json http://127.0.0.1:9/***" in ok.output
    assert "SECRETPATH" not in ok.output and _stored(env) == 1
    # The same URL again is the channel there is; an update keeps the subscription as it was.
    again = run(main, ["subscribe", "ada@example.org", "--webhook", "http://127.0.0.1:9/SECRETPATH"], env=env)
    assert again.exit_code == 0 and "chat channel 1:" in again.output and _stored(env) == 1
    assert "(chat: json)" in run(main, ["subscribers"], env=env).output
