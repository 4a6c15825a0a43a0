"""The command line as a user meets it: output, one-line errors, exit codes, nothing lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from digest.cli import main
from digest.store.engine import open_engine
from digest.store.schema import sources
from tests.smtp_server import free_port

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
ARXIV = FEEDS / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"


def _today() -> str:
    """The digest date of a run made now: the papers ingested now count for today's digest only
    (a fixed date would leave them out once the clock passes it)."""
    return datetime.now(UTC).date().isoformat()


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
    for name, cmd in main.commands.items():
        r = CliRunner().invoke(main, [name, "--help"])
        assert r.exit_code == 0, name
        first_words = " ".join((cmd.help or "").split()[:4])
        assert first_words and first_words in " ".join(r.output.split()), name


def test_subscribe_list_unsubscribe(env: dict[str, str]) -> None:
    r = _run(env, "subscribe", "Ada@Example.org", "--keywords", "sparse attention, diffusion models", "--top-k", "5")
    assert r.exit_code == 0 and "Subscribed ada@example.org" in r.output
    r = _run(env, "subscribers")
    assert "ada@example.org  top_k=5  daily 06:00 UTC  sparse attention, diffusion models" in r.output
    r = _run(env, "subscribe", "ada@example.org", "--keywords", "protein folding")
    assert "Updated ada@example.org: protein folding" in r.output
    assert _run(env, "unsubscribe", "ada@example.org").output.startswith("Unsubscribed")
    assert "No subscribers" in _run(env, "subscribers").output
    assert "[unsubscribed]" in _run(env, "subscribers", "--all").output


def test_bad_subscribe_input_changes_nothing(env: dict[str, str]) -> None:
    _run(env, "subscribe", "ada@example.org", "--keywords", "sparse attention")
    _one_line_error(_run(env, "subscribe", "not-an-address", "--keywords", "x"), "not-an-address")
    _one_line_error(_run(env, "subscribe", "ada@example.org", "--keywords", " , ;"), "--keywords")
    _one_line_error(_run(env, "subscribe", "ada@example.org", "--keywords", "the, of"), "no searchable words")
    assert "sparse attention" in _run(env, "subscribers").output
    _one_line_error(_run(env, "unsubscribe", "nobody@example.org"), "nobody@example.org")
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
    htmls = sorted((tmp_path / "state" / "outbox").rglob("*.html"))
    emls = sorted((tmp_path / "state" / "outbox").rglob("*.eml"))
    assert len(emls) == 3 and len(htmls) == 3
    assert all(str(h.relative_to(tmp_path)) in first.stdout for h in htmls)
    second = subprocess.run([exe, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and "already sent" in second.stdout
    assert len(sorted((tmp_path / "state" / "outbox").rglob("*.eml"))) == 3
