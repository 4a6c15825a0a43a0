"""`digest rate` in a real pseudo-terminal (pexpect), against a real SQLite file with the bundled
sample listing: answers recorded one by one, Ctrl-C keeps what was rated, no terminal is refused."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select

from digest.cli import main
from digest.store.schema import events


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\n")
    environ = {**os.environ, "DIGEST_CONFIG": str(cfg), "DIGEST_MODEL__ENCODER": "none"}
    runner = CliRunner()
    assert runner.invoke(main, ["ingest"], env=environ).exit_code == 0
    assert runner.invoke(main, ["subscribe", "ada@example.org", "--keywords", "graph neural networks"],
                         env=environ).exit_code == 0
    return environ


def _answer(child: pexpect.spawn, key: str) -> None:
    child.expect("Your rating")
    child.send(key)
    time.sleep(0.3)  # the prompt moves its pointer, then Enter takes it
    child.send("\r")


def _events(env: dict[str, str]) -> list[tuple[str, str]]:
    db = Path(env["DIGEST_CONFIG"]).parent / "state" / "digest.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = [(r.kind, r.origin) for r in conn.execute(select(events.c.kind, events.c.origin).order_by(events.c.id))]
    engine.dispose()
    return rows


def _spawn(env: dict[str, str]) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "digest.cli", "rate", "ada@example.org"], env=env,
                         encoding="utf-8", timeout=60, dimensions=(40, 120))


def test_a_reader_rates_at_the_terminal_and_stops(env: dict[str, str]) -> None:
    child = _spawn(env)
    child.expect("1/12")
    _answer(child, "y")
    child.expect("2/12")
    _answer(child, "n")
    child.expect("3/12")
    _answer(child, "s")
    child.expect("4/12")
    _answer(child, "q")
    child.expect("Rated for ada@example.org: 1 wanted, 1 not for me")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert _events(env) == [("star", "cli:rate"), ("dislike", "cli:rate")]


def test_ctrl_c_keeps_what_was_rated(env: dict[str, str]) -> None:
    child = _spawn(env)
    _answer(child, "y")
    child.expect("2/12")
    child.expect("Your rating")
    child.sendintr()
    child.expect("1 wanted, 0 not for me")
    child.expect(pexpect.EOF)
    assert _events(env) == [("star", "cli:rate")]


def test_without_a_terminal_or_a_subscriber_it_says_why(env: dict[str, str]) -> None:
    r = CliRunner().invoke(main, ["rate", "ada@example.org"], env=env)
    assert r.exit_code == 2 and "run it in a terminal" in r.output
    child = pexpect.spawn(sys.executable, ["-m", "digest.cli", "rate", "nobody@example.org"], env=env,
                          encoding="utf-8", timeout=60)
    child.expect("no subscriber nobody@example.org")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert _events(env) == []
