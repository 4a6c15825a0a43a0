"""The command line as a user meets it: output, one-line errors, exit codes, nothing lost."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, update

from digest.cli import LAZY_COMMANDS, main
from digest.store.engine import open_engine
from digest.store.schema import channels, deliveries, sources
from tests.address_cases import BAD_ADDRESSES
from tests.hook_server import HookRecorder
from tests.http_server import LocalHttpServer, QuietHandler
from tests.smtp_server import free_port

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"
ARXIV = FEEDS / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"


# Tomorrow morning's digest, fixed once: its candidates (the three days before it) hold the papers
# ingested now even when the clock passes midnight during the tests, and every call names the same day.
_DAY = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


def _today() -> str:
    """The digest date the tests' runs make."""
    return _DAY


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        f"database:\n  url: {db_url}\n"
        f"sources:\n  - name: arxiv\n    path: {ARXIV}\n"
        "web:\n  base_url: https://digest.example.org\n"
    )
    return {"DIGEST_CONFIG": str(cfg)}


def _run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code != 0, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in result.output
    for n in needles:
        assert n in err, err


def test_every_command_has_help() -> None:
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        cmd = main.get_command(ctx, name)
        assert cmd is not None, name
        r = CliRunner().invoke(main, [name, "--help"])
        assert r.exit_code == 0, name
        first_words = " ".join((cmd.help or "").split()[:4])
        assert first_words and first_words in " ".join(r.output.split()), name
    # `digest --help` lists the lazily imported commands with their own first paragraph.
    for name, (_module, _attr, short) in LAZY_COMMANDS.items():
        real = main.get_command(ctx, name)
        assert real is not None and " ".join((real.help or "").split("\n\n")[0].split()) == short, name


_HEAVY = ("numpy", "scipy", "sklearn", "starlette")
_LIGHT_COMMANDS = f"""
import json, sys
from click.testing import CliRunner
from digest.cli import main
runner = CliRunner()
results = {{}}
for args in (["--help"], ["subscribe", "ada@example.org", "-k", "protein folding"], ["subscribers"], ["status"]):
    r = runner.invoke(main, args, catch_exceptions=False)
    results[" ".join(args[:1])] = [r.exit_code, sorted(m for m in {_HEAVY!r} if m in sys.modules)]
print(json.dumps(results))
"""


def test_light_commands_do_not_load_the_heavy_stack(env: dict[str, str]) -> None:
    """--help, subscribe, subscribers and status start without numpy, scipy, scikit-learn or Starlette."""
    _run(env, "subscribers")  # a first run migrates the new database (Alembic); then the schema is current
    proc = subprocess.run([sys.executable, "-c", _LIGHT_COMMANDS], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results == {name: [0, []] for name in ("--help", "subscribe", "subscribers", "status")}, results


def test_the_readme_documents_every_command() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "**Store**- **Store**" not in readme
    for name in main.list_commands(click.Context(main)):
        assert f"`digest {name}" in readme, name


def test_subscribe_list_unsubscribe(env: dict[str, str]) -> None:
    r = _run(env, "subscribe", "Ada@Example.org", "--keywords", "sparse attention, diffusion models", "--top-k", "5")
    # Stored with the local part as typed and the domain lowercased; found again whatever the case.
    assert r.exit_code == 0 and "Subscribed Ada@example.org" in r.output
    r = _run(env, "subscribers")
    assert "Ada@example.org  top_k=5  daily 06:00 UTC  sparse attention, diffusion models" in r.output
    r = _run(env, "subscribe", "ada@example.org", "--keywords", "protein folding")
    assert "Updated Ada@example.org: protein folding" in r.output
    assert _run(env, "unsubscribe", "ADA@EXAMPLE.ORG").output.startswith("Unsubscribed")
    assert "No subscribers" in _run(env, "subscribers").output
    assert "[unsubscribed]" in _run(env, "subscribers", "--all").output


def test_bad_subscribe_input_changes_nothing(env: dict[str, str]) -> None:
    _run(env, "subscribe", "ada@example.org", "--keywords", "sparse attention")
    _one_line_error(_run(env, "subscribe", "not-an-address", "--keywords", "x"), "not-an-address")
    _one_line_error(_run(env, "subscribe", "ada@example.org", "--keywords", " , ;"), "--keywords")
    _one_line_error(_run(env, "subscribe", "ada@example.org", "--keywords", "the, of"), "no searchable words")
    assert "sparse attention" in _run(env, "subscribers").output
    unknown = _run(env, "unsubscribe", "nobody@example.org")
    _one_line_error(unknown, "no subscriber nobody@example.org")
    assert unknown.exit_code == 2
    _one_line_error(_run(env, "subscribe", "ada@example.org", "-k", "x ray", "--timezone", "Mars/Olympus"),
                    "--timezone", "Mars/Olympus")
    assert _run(env, "subscribe", "ada@example.org", "-k", "x ray", "--hour", "24").exit_code == 2
    assert "sparse attention" in _run(env, "subscribers").output


def test_delivery_preferences_and_pause(env: dict[str, str]) -> None:
    r = _run(env, "subscribe", "ada@example.org", "-k", "diffusion models", "--timezone", "Europe/Berlin",
             "--hour", "7", "--cadence", "weekly")
    assert r.exit_code == 0, r.output
    assert "weekly 07:00 Europe/Berlin" in _run(env, "subscribers").output
    # Updating the keywords alone keeps the chosen hour and timezone.
    _run(env, "subscribe", "ada@example.org", "-k", "image generation")
    assert "weekly 07:00 Europe/Berlin  image generation" in _run(env, "subscribers").output
    _run(env, "subscribe", "bob@example.org", "-k", "diffusion models")
    assert _run(env, "pause", "ada@example.org").output.startswith("Paused ada@example.org")
    assert "already paused" in _run(env, "pause", "ada@example.org").output
    assert "[paused]" in _run(env, "subscribers").output
    r = _run(env, "run", "--date", _today())
    assert r.exit_code == 0, r.output
    assert "bob@example.org: sent" in r.output and "ada@example.org" not in r.output
    assert _run(env, "resume", "ada@example.org").output.startswith("Resumed ada@example.org")
    r = _run(env, "run", "--date", _today(), "--no-ingest")
    assert "ada@example.org: sent" in r.output
    _one_line_error(_run(env, "pause", "nobody@example.org"), "nobody@example.org")


def test_ingest_reports_each_source_and_carries_on(env: dict[str, str], tmp_path: Path) -> None:
    r = _run(env, "ingest")
    assert r.exit_code == 0
    assert "arxiv: 1504 new, 0 updated, 0 duplicate" in r.output
    broken = tmp_path / "broken.xml"
    broken.write_bytes(ARXIV.read_bytes()[:560])  # cut before the first item ends
    r = _run(env, "ingest", str(ARXIV), str(broken), str(tmp_path / "missing.xml"),
             str(FEEDS / "arxiv_rss_new2024_error_bad-archive.xml"))
    assert r.exit_code == 1
    assert "1504 duplicate" in r.output  # the good source still went through
    assert f"{broken}: failed" in r.output
    assert "missing.xml: failed: " in r.output and "not found" in r.output
    assert "Feed error for query" in r.output
    assert r.stderr.strip().startswith("error: 3 of 4 source(s) failed")


def test_ingest_refuses_bad_urls_and_kinds(env: dict[str, str]) -> None:
    _one_line_error(_run(env, "ingest", "ftp://example.org/feed.xml"), "ftp://example.org/feed.xml")
    r = _run(env, "ingest", "--kind", "gopher", str(ARXIV))
    assert r.exit_code == 2 and "gopher" in r.output


def test_a_password_in_a_feed_url_never_shows(tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://reader:s3cret-pw@127.0.0.1:{free_port()}/feed.xml"  # nothing listens there
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\ndatabase: {{url: '{db_url}'}}\n"
                   f"sources: [{{name: private-feed, url: '{url}'}}]\nfetch: {{allow_private: true}}\n")
    env = {"DIGEST_CONFIG": str(cfg)}
    configured, ad_hoc, run = _run(env, "ingest"), _run(env, "ingest", url), _run(env, "run")
    for r in (configured, ad_hoc, run):
        assert r.exit_code == 1 and "reader:***@127.0.0.1" in r.output, r.output
        assert "s3cret-pw" not in r.output
    assert "s3cret-pw" not in caplog.text
    engine = open_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(sources.c.name, sources.c.last_error)).all()
    engine.dispose()
    assert len(rows) == 2 and all("reader:***@" in row.last_error for row in rows)
    assert not any("s3cret-pw" in f"{row.name} {row.last_error}" for row in rows)
    cfg.write_text(cfg.read_text().replace("http://reader", "ftp://reader"))
    _one_line_error(_run(env, "ingest"), "ftp://reader:***@127.0.0.1")
    assert "s3cret-pw" not in _run(env, "ingest").output


def test_run_then_rerun_and_status(env: dict[str, str]) -> None:
    _run(env, "subscribe", "ada@example.org", "--keywords", "diffusion models, image generation")
    r = _run(env, "run", "--date", _today())
    assert r.exit_code == 0, r.output
    assert "ada@example.org: sent, 10 picks" in r.output
    r = _run(env, "run", "--date", _today())
    assert "ada@example.org: already sent" in r.output and " 0 sent" in r.output
    r = _run(env, "status")
    assert f"digest {_today()}  done: 1 sent" in r.output
    _one_line_error(_run(env, "run", "--date", "29/11/2026"), "--date")


def test_preview_writes_html(env: dict[str, str], tmp_path: Path) -> None:
    _run(env, "ingest")
    _run(env, "subscribe", "ada@example.org", "--keywords", "large language models")
    out = tmp_path / "p.html"
    r = _run(env, "preview", "ada@example.org", "--out", str(out))
    assert r.exit_code == 0 and str(out) in r.output
    assert "<html" in out.read_text().lower() and "language model" in out.read_text().lower()
    unknown = _run(env, "preview", "Nobody@example.org")
    _one_line_error(unknown, "no subscriber Nobody@example.org")
    assert unknown.exit_code == 2  # bad input, as for unsubscribe and star


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("digest:\n  top_kk: 3\n")
    _one_line_error(_run({"DIGEST_CONFIG": str(cfg)}, "subscribers"), "digest.top_kk", str(cfg))
    _one_line_error(_run({"DIGEST_CONFIG": str(tmp_path / "none.yaml")}, "subscribers"), "none.yaml")
    _one_line_error(_run({"DIGEST_DATABASE__URL": "postgresql+psycopg://u:pw@127.0.0.1:1/x"}, "subscribers"),
                    "127.0.0.1:1")


@pytest.mark.skipif(shutil.which("digest") is None and not os.path.exists(Path(sys.executable).parent / "digest"),
                    reason="the digest console script is not installed")
def test_demo_end_to_end_in_a_fresh_directory(tmp_path: Path) -> None:
    exe = shutil.which("digest") or str(Path(sys.executable).parent / "digest")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    first = subprocess.run([exe, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    # What the README says of the demo: 521 papers ingested, 336 considered, dated today.
    assert "sample-arxiv-cs: 521 new" in first.stdout
    assert f"Digest {datetime.now(UTC).date()}: 336 new papers considered" in first.stdout
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "521 real arXiv" in readme and "336 are considered" in readme
    htmls = sorted((tmp_path / "state" / "outbox").rglob("*.html"))
    emls = sorted((tmp_path / "state" / "outbox").rglob("*.eml"))
    assert len(emls) == 3 and len(htmls) == 3
    assert all(str(h.relative_to(tmp_path)) in first.stdout for h in htmls)
    second = subprocess.run([exe, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and "already sent" in second.stdout
    assert len(sorted((tmp_path / "state" / "outbox").rglob("*.eml"))) == 3


# ---- addresses the mailer cannot use (issue 15) ----------------------------------------------------
@pytest.mark.parametrize(("raw", "reason"), [(raw, reason) for _, raw, reason in BAD_ADDRESSES],
                         ids=[name for name, _, _ in BAD_ADDRESSES])
def test_subscribe_refuses_an_address_the_mailer_cannot_use(env: dict[str, str], raw: str, reason: str) -> None:
    r = _run(env, "subscribe", raw, "--keywords", "sparse attention")
    assert r.exit_code == 2
    _one_line_error(r, repr(raw), reason)  # names the address, control characters escaped
    assert "No subscribers" in _run(env, "subscribers", "--all").output


@pytest.mark.parametrize("command", [["star", "{}", "2411.18552"], ["pause", "{}"], ["resume", "{}"],
                                     ["unsubscribe", "{}"], ["run", "--no-ingest", "--only", "{}"],
                                     ["preview", "{}"]])
def test_every_command_that_takes_an_address_uses_the_same_rule(env: dict[str, str], command: list[str]) -> None:
    for raw in ("a(comment)@example.org", "eve@lab", "ada@ex\u0430mple.org"):
        r = _run(env, *[raw if a == "{}" else a for a in command])
        assert r.exit_code == 2
        _one_line_error(r, repr(raw), "not a valid email address")


def test_an_address_is_found_whatever_its_case(env: dict[str, str]) -> None:
    assert _run(env, "subscribe", "ada@lab.org", "-k", "sparse attention").exit_code == 0
    assert _run(env, "pause", "Ada@Lab.ORG").output.startswith("Paused")
    again = _run(env, "subscribe", "ADA@LAB.ORG", "-k", "diffusion models")
    assert again.output.startswith("Updated ada@lab.org")  # the one subscriber, as first typed
    assert len(_run(env, "subscribers", "--all").output.strip().splitlines()) == 1


def test_cache_dir_variable_does_not_break_other_commands(env: dict[str, str], tmp_path: Path) -> None:
    r = _run({**env, "DIGEST_CACHE_DIR": str(tmp_path / "cache")}, "subscribers")
    assert r.exit_code == 0, r.stderr
    assert "No subscribers yet" in r.output


def test_an_update_changes_only_what_the_command_names(env: dict[str, str]) -> None:
    r = _run(env, "subscribe", "ada@example.org", "-k", "diffusion models", "--top-k", "5", "--exclude", "quantum",
             "--timezone", "Europe/Berlin", "--hour", "7", "--cadence", "weekly")
    assert r.exit_code == 0, r.output
    # A weekly subscriber is not told "a day".
    assert "(5 picks, weekly at 07:00 Europe/Berlin)" in r.output and "a day" not in r.output
    r = _run(env, "subscribe", "ada@example.org", "-k", "image generation")
    assert r.exit_code == 0, r.output
    listed = _run(env, "subscribers").output
    assert "top_k=5  weekly 07:00 Europe/Berlin  image generation  (exclude: quantum)" in listed
    # Without --keywords an update keeps them; a new address needs them.
    assert _run(env, "subscribe", "ada@example.org", "--top-k", "3").exit_code == 0
    listed = _run(env, "subscribers").output
    assert "top_k=3  weekly 07:00 Europe/Berlin  image generation  (exclude: quantum)" in listed
    _one_line_error(_run(env, "subscribe", "bob@example.org", "--top-k", "3"), "--keywords")
    assert "bob@example.org" not in _run(env, "subscribers").output


def test_a_closed_pipe_ends_the_output_quietly(env: dict[str, str]) -> None:
    """`digest status | head -2`: the reader went away; no "error: Broken pipe", no traceback."""
    _run(env, "subscribe", "ada@example.org", "-k", "diffusion models")
    for _ in range(3):
        _run(env, "run", "--date", _today(), "--no-ingest")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: the first write fails with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "digest", "status"], stdout=write_end, stderr=subprocess.PIPE,
                              env={**os.environ, **env}, timeout=120)
    finally:
        os.close(write_end)
    stderr = proc.stderr.decode()
    assert "Broken pipe" not in stderr and "Traceback" not in stderr and "error" not in stderr, stderr
    assert proc.returncode != 0


@pytest.fixture
def http_404() -> Iterator[str]:
    """A local HTTP server that answers 404 to everything."""

    class NotFound(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            self.send_error(404)

    with LocalHttpServer(NotFound) as server:
        yield f"{server.base}/feed.xml"


def test_run_exits_1_naming_each_failing_source_and_status_shows_them(tmp_path: Path, db_url: str,
                                                                       http_404: str) -> None:
    malformed = tmp_path / "oops.xml"
    malformed.write_text("<rss><channel><item><title>oops</ti")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\ndatabase: {{url: '{db_url}'}}\nfetch: {{allow_private: true}}\n"
        f"sources:\n  - {{name: good, path: '{ARXIV}'}}\n  - {{name: missing, path: '{tmp_path / 'none.xml'}'}}\n"
        f"  - {{name: dead, url: 'http://127.0.0.1:{free_port()}/feed'}}\n  - {{name: gone, url: '{http_404}'}}\n"
        f"  - {{name: html, path: '{FEEDS / 'html_not_a_feed.html'}'}}\n  - {{name: broken, path: '{malformed}'}}\n"
    )
    env = {"DIGEST_CONFIG": str(cfg)}
    _run(env, "subscribe", "ada@example.org", "-k", "diffusion models")
    r = _run(env, "run", "--date", _today())
    assert r.exit_code == 1, r.output
    assert "ada@example.org: sent" in r.output  # the good source's papers still went out
    errors = r.stderr.strip().splitlines()
    assert [e.split(" failed: ")[0] for e in errors] == [f"error: source {n}" for n in
                                                         ("missing", "dead", "gone", "html", "broken")], errors
    assert "HTTP 404" in errors[2] and "malformed feed" in errors[4]
    status = _run(env, "status").output
    assert "5 of 6 source(s) failed" in status
    for name in ("missing", "dead", "gone", "html", "broken"):
        assert f"    source {name} failed: " in status
    # The same sources through `digest ingest`: recorded too, so status and the metrics count it.
    assert _run(env, "ingest").exit_code == 1
    assert "fetched: 1 ok, 0 not modified, 5 failed, 0 new papers" in _run(env, "status").output


def test_papers_from_digest_ingest_count_in_the_metrics(env: dict[str, str], db_url: str) -> None:
    from digest.service.metrics import Metrics
    from digest.store.engine import open_engine

    assert _run(env, "ingest").exit_code == 0
    assert _run(env, "run", "--dry-run", "--date", _today()).exit_code == 0  # fetches again: nothing new
    engine = open_engine(db_url)
    try:
        body = Metrics(engine, lambda: datetime.now(UTC))()[0].decode().splitlines()
    finally:
        engine.dispose()
    assert "digest_papers_new_total 1504.0" in body
    assert 'digest_feed_fetches_total{outcome="ok"} 2.0' in body


def _pick_titles(html: str) -> list[str]:
    return re.findall(r'<h2 style="[^"]*">(?:<a [^>]*>|<span [^>]*>)([^<]+)<', html)


def test_preview_shows_the_next_digest_with_the_picks_its_run_sends(env: dict[str, str], tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    _run(env, "subscribe", "ada@example.org", "-k", "diffusion models, image generation", "--top-k", "4")
    _run(env, "subscribe", "bob@example.org", "-k", "large language models", "--cadence", "weekly")
    assert _run(env, "run", "--date", today.isoformat()).exit_code == 0  # today's digests went out
    tomorrow = today + timedelta(days=1)
    r = _run(env, "preview", "ada@example.org", "--out", str(tmp_path / "ada.html"))
    assert r.exit_code == 0, r.output
    # Once, with the date it is for: tomorrow's, today's having gone out.
    assert r.output.count(" picks") == 1 and f"ada@example.org: 4 picks for {tomorrow} " in r.output
    previewed = _pick_titles((tmp_path / "ada.html").read_text())
    assert len(previewed) == 4
    # A weekly subscriber's next digest is a week after the last.
    r = _run(env, "preview", "bob@example.org", "--out", str(tmp_path / "bob.html"))
    assert re.search(rf"^bob@example.org: \d+ picks for {today + timedelta(days=7)} ", r.output), r.output
    # The run for that date sends exactly those picks.
    r = _run(env, "run", "--date", tomorrow.isoformat(), "--no-ingest", "--only", "ada@example.org")
    assert r.exit_code == 0 and "ada@example.org: sent, 4 picks" in r.output, r.output
    sent = Path(r.output.split("-> ", 1)[1].split()[0]).with_suffix(".html")
    assert _pick_titles(sent.read_text()) == previewed


def test_a_dry_run_names_the_chat_channels_masked_and_posts_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    env = {"DIGEST_CONFIG": "", "DIGEST_STATE_DIR": str(tmp_path / "state"), "DIGEST_DATABASE__URL": db,
           "DIGEST_FETCH__ALLOW_PRIVATE": "true", "DIGEST_SOURCES": json.dumps([{"name": "arxiv", "path": str(ARXIV)}])}
    slack_path, json_path = "/services/T000/B000/s3cr3tSlackPath", "/hooks/s3cr3tJsonPath"
    with HookRecorder() as hooks:
        assert _run(env, "subscribe", "ada@example.org", "-k", "diffusion models").exit_code == 0
        assert _run(env, "subscribe", "grace@example.org", "-k", "large language models", "--no-email").exit_code == 0
        for who, path, kind in (("ada", slack_path, "slack"), ("ada", json_path, "json"), ("grace", json_path, "json")):
            added = _run(env, "channel", "add", f"{who}@example.org", hooks.url(path), "--kind", kind)
            assert added.exit_code == 0, added.output
        engine = open_engine(db)
        with engine.begin() as conn:  # ada's json channel kept failing: paused
            conn.execute(update(channels).where(channels.c.id == 2).values(
                paused_at=datetime(2026, 12, 1, 6, 0), consecutive_failures=3, last_error="HTTP 404"))

        r = _run(env, "run", "--dry-run", "--date", _today())
        assert r.exit_code == 0, r.output
        host = hooks.url("").removesuffix("/")
        lines = r.output.splitlines()
        assert "  ada@example.org: would send, 10 picks" in lines
        assert "  grace@example.org: recorded, 10 picks  (dry run: would be recorded for the feed, not mailed)" in lines
        assert f"  ada@example.org via slack {host}/***: would send" in lines
        assert (f"  ada@example.org via json {host}/***: paused  (since 2026-12-01 06:00 UTC, not posted to; "
                "digest channel resume ada@example.org 2)") in lines
        assert f"  grace@example.org via json {host}/***: would send" in lines  # feed only: the chat still gets it
        assert "1 would be sent (dry run), 1 for feeds only" in r.output
        assert r.output.rstrip().endswith("; chat: 2 would be sent, 1 paused")
        assert "s3cr3t" not in r.output + r.stderr  # the secret part of a webhook URL never shows
        # Nothing posted, mailed or recorded: no ledger row, no outbox file, the channels as they were.
        assert hooks.received == []
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == 0
            assert [(c.paused_at is not None, c.consecutive_failures) for c in conn.execute(
                select(channels).order_by(channels.c.id))] == [(False, 0), (True, 3), (False, 0)]
        engine.dispose()
        outbox = tmp_path / "state" / "outbox"
        assert not outbox.exists() or not any(outbox.iterdir())


def test_two_stars_bring_the_paper_the_model_finds_closest_into_the_next_digest(env: dict[str, str],
                                                                                 tmp_path: Path) -> None:
    """The default install's walkthrough: a reader of quantum error correction stars the listing's two
    papers on it; the next digest holds the toric-code paper (fault-tolerant gates on a code), which
    names no keyword, rather than leaving it under the floor for papers that merely say "quantum"."""
    env = {**env, "DIGEST_MODEL__ENCODER": "static"}
    _run(env, "subscribe", "q@lab.example.org", "-k", "quantum error correction, superconducting qubits")
    assert _run(env, "run", "--date", datetime.now(UTC).date().isoformat()).exit_code == 0
    r = _run(env, "star", "q@lab.example.org", "2411.18090", "2411.18450")
    assert r.exit_code == 0, r.output
    _run(env, "preview", "q@lab.example.org", "--out", str(tmp_path / "next.html"))
    html = (tmp_path / "next.html").read_text()
    titles = _pick_titles(html)
    toric = "Fault-Tolerant Constant-Depth Clifford Gates on Toric Codes"
    assert toric in titles[:3], titles
    # Its reason line is the reader's history, not a keyword it does not hold.
    after = html.split(f"{toric}</a></h2>", 1)[1].split("<h2", 1)[0]
    assert "Close to what you read" in after and "Matches" not in after


def test_a_keyword_naming_an_arxiv_category_brings_its_papers_that_never_say_it(env: dict[str, str],
                                                                                 tmp_path: Path) -> None:
    """A reader of "combinatorics, graph theory" on the multi-archive listing: its math.CO papers rarely
    say "combinatorics", and before categories counted, papers merely holding "graph" or "theory"
    filled the digest. Now the field's papers come first, each saying why in words that are true."""
    env = {**env, "DIGEST_MODEL__ENCODER": "static"}
    assert _run(env, "ingest").exit_code == 0
    _run(env, "subscribe", "c@lab.example.org", "-k", "combinatorics, graph theory")
    _run(env, "preview", "c@lab.example.org", "--out", str(tmp_path / "next.html"))
    html = (tmp_path / "next.html").read_text()
    titles = _pick_titles(html)
    assert len(titles) == 10
    assert "Planar Tur" in " ".join(titles)  # a math.CO paper naming neither keyword
    filed = html.count("In Combinatorics (math.CO)")
    assert filed >= 7, titles
    assert "Matches: combinatorics" not in html  # the listing's papers hold the class, not the word
