"""`digest serve` as a real process: web and scheduler, one scheduler per database, SIGTERM; and the
start-up errors every command gives for a bad schedule or an unreachable database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from digest.cli import main
from tests.drip_server import HEADERS_DRIP, DripServer
from tests.smtp_server import SmtpServer, free_port

KEY = "serve-test-key-0123456789abcdef"


def _config(tmp_path: Path, db_url: str, smtp: SmtpServer) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        f"database: {{url: '{db_url}'}}\n"
        "sources: [{name: sample, path: 'builtin:arxiv-cs-2024-11-28.xml', kind: arxiv_rss}]\n"
        "delivery: {method: smtp, from_addr: digest@example.org}\n"
        f"smtp: {{host: 127.0.0.1, port: {smtp.port}, security: none, timeout_s: 10}}\n"
        f"web: {{secret_key: '{KEY}'}}\n"
        "schedule: {lease_seconds: 10}\n"
    )
    return cfg


def _start(cfg: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "DIGEST_CONFIG": str(cfg)}
    return subprocess.Popen([sys.executable, "-m", "digest.cli", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(check: Callable[[], Any], proc: subprocess.Popen[str], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()
        try:
            value = check()
            if value:
                return value
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _health(port: int) -> dict[str, Any]:
    r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str, str, float]:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err, time.monotonic() - started


def test_serve_schedules_delivers_stands_by_and_stops(tmp_path: Path, db_url: str, smtp_server: SmtpServer) -> None:
    cfg = _config(tmp_path, db_url, smtp_server)
    runner = CliRunner()
    r = runner.invoke(main, ["subscribe", "ada@example.org", "-k", "diffusion models, image generation",
                             "--hour", "0"], env={"DIGEST_CONFIG": str(cfg)})
    assert r.exit_code == 0, r.output
    first_port, second_port = free_port(), free_port()
    first = _start(cfg, first_port)
    second: subprocess.Popen[str] | None = None
    try:
        # Due since midnight: the scheduler's wake at start-up sends it.
        _wait_for(lambda: smtp_server.handler.messages, first, "the scheduler did not deliver")
        assert [m.rcpt_tos for m in smtp_server.handler.messages] == [("ada@example.org",)]
        health = _wait_for(lambda: (h := _health(first_port))["last_success"] and h, first, "no success recorded")
        assert health["status"] == "ok" and health["database"] == "ok"
        assert health["scheduler"]["running"] and health["scheduler"]["in_this_process"]
        assert health["scheduler"]["heartbeat_age_s"] < 10 and health["scheduler"]["next_wake"]
        metrics = httpx.get(f"http://127.0.0.1:{first_port}/metrics", timeout=5)
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        for line in ("digest_digests_sent_total 1.0", "digest_digests_failed_total 0.0",
                     "digest_digests_deferred_total 0.0", 'digest_feed_fetches_total{outcome="ok"} 1.0',
                     "digest_run_duration_seconds_count 1.0", 'digest_deliveries{status="sent"} 1.0'):
            assert line in metrics.text.splitlines(), line
        assert "digest_last_success_timestamp_seconds" in metrics.text

        second = _start(cfg, second_port)  # same database: web only, standing by
        standby = _wait_for(lambda: _health(second_port), second, "the second serve did not start")
        assert standby["scheduler"]["running"] and not standby["scheduler"]["in_this_process"]

        code, out, err, took = _stop(first)
        assert code == 0, err
        assert took < 10 and "Traceback" not in err
        assert "web endpoints and scheduler" in out
        # The first released its lease on the way out: the second takes the scheduler over.
        # Until then its /healthz says 503: no scheduler is running for the database.
        _wait_for(lambda: httpx.get(f"http://127.0.0.1:{second_port}/healthz", timeout=5).json()["scheduler"]
                  ["in_this_process"], second, "no takeover", 20)
        assert _health(second_port)["status"] == "ok"
        code, out, err, _took = _stop(second)
        assert code == 0, err
        # One true statement of what it serves: the web, and the scheduler once the lease frees.
        (serving,) = [line for line in out.splitlines() if line.startswith("Serving on")]
        assert "web endpoints; the scheduler runs in another `digest serve`" in serving, out
        assert "takes it over when that one's lease frees" in serving
        assert "web endpoints and scheduler" not in out and "web endpoints only" not in out + err
        assert "this process runs the scheduler now" in err  # and it says so when it did
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert len(smtp_server.handler.messages) == 1  # the second scheduler sent nothing twice
    status = runner.invoke(main, ["status"], env={"DIGEST_CONFIG": str(cfg)})
    assert status.exit_code == 0 and "Scheduler: not running" in status.output  # both stopped, lease released
    assert "1 sent" in status.output


def test_sigterm_stops_serve_within_5s_while_its_wake_fetches_a_dripping_feed(tmp_path: Path, sqlite_url: str,
                                                                             smtp_server: SmtpServer) -> None:
    with DripServer(HEADERS_DRIP, interval=0.5) as drip:
        cfg = _config(tmp_path, sqlite_url, smtp_server)
        cfg.write_text(cfg.read_text().replace(
            "sources: [", f"fetch: {{allow_private: true, deadline_s: 600, read_timeout_s: 60}}\n"
                          f"sources: [{{name: drip, url: '{drip.url}', kind: rss}}, "))
        port = free_port()
        proc = _start(cfg, port)
        try:
            _wait_for(lambda: drip.accepted, proc, "the wake at start-up did not fetch the drip")
            time.sleep(1)
            code, out, err, took = _stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert code == 0, err
    assert took < 5, (took, err)
    assert "Traceback" not in err


# ---- start-up errors -------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "value", "expected"), [
    ("DIGEST_SCHEDULE__CRON", "61 * * * *", "schedule.cron"),
    ("DIGEST_SCHEDULE__TIMEZONE", "Mars/Olympus", "schedule.timezone"),
])
def test_serve_refuses_a_bad_schedule_naming_the_key(tmp_path: Path, key: str, value: str, expected: str) -> None:
    env = {key: value, "DIGEST_STATE_DIR": str(tmp_path / "state")}
    r = CliRunner().invoke(main, ["serve", "--port", str(free_port())], env=env)
    assert r.exit_code == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: config error") and expected in line and value in line


COMMANDS = [["status"], ["run"], ["run", "--no-ingest"], ["ingest"], ["subscribers"],
            ["serve", "--port", str(free_port())], ["serve", "--no-scheduler"],
            ["subscribe", "a@example.org", "-k", "graph neural networks"],
            ["unsubscribe", "a@example.org"], ["pause", "a@example.org"], ["resume", "a@example.org"],
            ["preview", "a@example.org"], ["star", "a@example.org", "2411.00001"], ["demo"]]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_unreachable_database_is_one_line_with_the_password_masked(args: list[str]) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://digest:s3cret-pw@127.0.0.1:{port}/digest"
    r = CliRunner().invoke(main, args, env={"DIGEST_DATABASE__URL": url})
    assert r.exit_code == 1, r.output
    assert "s3cret" not in r.output
    assert r.stderr.strip().splitlines() == [
        f"error: cannot reach database postgresql+psycopg://digest:***@127.0.0.1:{port}/digest: "
        + r.stderr.split(f"{port}/digest: ", 1)[1].strip()]
    assert "Traceback" not in r.output


def test_unusable_sqlite_file_names_the_url(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not a database file at all, just some bytes " * 40)
    r = CliRunner().invoke(main, ["status"], env={"DIGEST_DATABASE__URL": f"sqlite:///{bad}"})
    assert r.exit_code == 1
    assert r.stderr.strip() == f"error: cannot use database sqlite:///{bad}: file is not a database"


def test_the_systemd_unit_runs_a_valid_serve_command() -> None:
    root = Path(__file__).resolve().parents[2]
    unit = (root / "contrib" / "digest.service").read_text()
    (exec_start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    argv = exec_start.removeprefix("ExecStart=").split()
    assert argv[0].endswith("/digest") and argv[1] == "serve"
    r = CliRunner().invoke(main, [*argv[1:], "--help"])  # unknown options would fail to parse
    assert r.exit_code == 0, r.output
    assert "contrib/digest.service" in (root / "README.md").read_text()
