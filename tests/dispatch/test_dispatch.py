"""Celery fan-out with real parts: a real worker process on the local Redis, a real SMTP server,
a real SQLite file. Skipped with a reason where no Redis answers (a failure under .ci/run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.config import load_settings
from digest.dispatch.shards import shards
from digest.store import subscribers as sub_store
from digest.wiring import App
from tests.smtp_server import SmtpServer

KEYWORDS = ["language models", "reinforcement learning", "diffusion models", "graph neural networks",
            "robotics", "computer vision", "optimization", "privacy"]


def test_shards_are_sorted_stable_groups() -> None:
    assert shards([5, 3, 9, 1, 3], 2) == [[1, 3], [5, 9]]
    assert shards([], 10) == []
    with pytest.raises(ValueError):
        shards([1], 0)


def _config(tmp_path: Path, smtp: SmtpServer, broker: str, **dispatch: object) -> dict[str, str]:
    cfg = tmp_path / "config.yaml"
    extra = "".join(f"  {k}: {v}\n" for k, v in dispatch.items())
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        f"database:\n  url: sqlite:///{tmp_path / 'state' / 'digest.db'}\n"
        "delivery:\n  method: smtp\n  from_addr: digest@example.org\n"
        f"smtp:\n  host: {smtp.host}\n  port: {smtp.port}\n  security: none\n"
        "web:\n  base_url: https://digest.example.org\n"
        f"dispatch:\n  mode: celery\n  broker_url: {broker}\n{extra}"
    )
    return {**os.environ, "DIGEST_CONFIG": str(cfg)}


def _subscribe_many(env: dict[str, str], n: int) -> list[str]:
    assert CliRunner().invoke(main, ["ingest"], env=env).exit_code == 0
    app = App.open(load_settings(env["DIGEST_CONFIG"]))
    now = datetime.now(UTC).replace(tzinfo=None)
    emails = [f"reader{i}@example.org" for i in range(n)]
    with app.engine.begin() as conn:
        for i, addr in enumerate(emails):
            sub_store.upsert_subscriber(conn, email=addr, keywords=[KEYWORDS[i % len(KEYWORDS)]], now=now)
    app.close()
    return emails


def _worker(env: dict[str, str], concurrency: int = 1) -> subprocess.Popen[bytes]:
    # Its own session, so the test can kill the worker together with its pool processes.
    return subprocess.Popen([sys.executable, "-m", "digest", "worker", "--concurrency", str(concurrency)],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_worker_delivers_a_day_for_1000_subscribers(tmp_path: Path, redis_url: str,
                                                      smtp_server: SmtpServer) -> None:
    env = _config(tmp_path, smtp_server, redis_url, shard_size=250)
    emails = _subscribe_many(env, 1000)
    worker = _worker(env, concurrency=2)
    try:
        r = CliRunner().invoke(main, ["run", "--no-ingest"], env=env)
        assert r.exit_code == 0, r.output
        assert "1000 sent" in r.output
    finally:
        _stop(worker)
    got = Counter(rcpt for m in smtp_server.handler.messages for rcpt in m.rcpt_tos)
    assert set(got) == set(emails) and max(got.values()) == 1
    # A second dispatch of the same day sends nothing: the ledger has every row.
    worker = _worker(env)
    try:
        r = CliRunner().invoke(main, ["run", "--no-ingest"], env=env)
        assert r.exit_code == 0 and " 0 sent" in r.output, r.output
    finally:
        _stop(worker)
    assert len(smtp_server.handler.messages) == 1000


def test_a_killed_worker_s_shard_is_finished_by_another(tmp_path: Path, redis_url: str,
                                                        make_smtp_server: object) -> None:
    smtp: SmtpServer = make_smtp_server()  # type: ignore[operator]
    smtp.handler.rcpt_delay_s = 0.05  # slow enough to kill the worker mid-shard
    env = _config(tmp_path, smtp, redis_url, shard_size=100, visibility_timeout_s=3)
    emails = _subscribe_many(env, 200)
    first = _worker(env)
    result: dict[str, object] = {}

    def dispatch() -> None:
        r = CliRunner().invoke(main, ["run", "--no-ingest"], env=env)
        result["code"], result["output"] = r.exit_code, r.output

    dispatcher = threading.Thread(target=dispatch)
    dispatcher.start()
    deadline = time.monotonic() + 120
    while len(smtp.handler.messages) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(smtp.handler.messages) >= 30, "the first worker never got going"
    _stop(first, signal.SIGKILL)
    killed_at = len(smtp.handler.messages)
    second = _worker(env)
    try:
        dispatcher.join(timeout=240)
        assert not dispatcher.is_alive(), "the dispatcher is still waiting"
    finally:
        _stop(second)
    got = Counter(rcpt for m in smtp.handler.messages for rcpt in m.rcpt_tos)
    assert set(got) == set(emails), f"missing: {sorted(set(emails) - set(got))[:5]} (killed after {killed_at})"
    # At most the message in flight when the worker died goes out twice.
    assert sum(n - 1 for n in got.values()) <= 1, got.most_common(3)
    assert result["code"] in (0, 1), result


def test_an_unreachable_broker_is_one_line_and_records_nothing(tmp_path: Path, smtp_server: SmtpServer) -> None:
    env = _config(tmp_path, smtp_server, "redis://:hunter2@127.0.0.1:1/0")
    _subscribe_many(env, 3)
    r = CliRunner().invoke(main, ["run", "--no-ingest"], env=env)
    assert r.exit_code != 0
    err = r.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "127.0.0.1:1" in err and "hunter2" not in err, err
    assert smtp_server.handler.messages == []
    status = CliRunner().invoke(main, ["status"], env=env).output
    assert "done" not in status
