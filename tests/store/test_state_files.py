"""Issue 15, item 4: a database file that exists but holds no schema is refused, never started over.

`: > state/digest.db` used to give a run that exited 0 with "0 sent" and a subscriber list that said
"No subscribers yet": the whole ledger gone without a word.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main

FEED = Path(__file__).parents[1] / "fixtures" / "feeds" / "arxiv_rss_new2024_multi-archive_2024-11-28.xml"


@pytest.fixture
def state(tmp_path: Path) -> tuple[dict[str, str], Path]:
    db = tmp_path / "state" / "digest.db"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\ndatabase:\n  url: sqlite:///{db}\n"
                   f"sources:\n  - name: arxiv\n    path: {FEED}\n")
    return {"DIGEST_CONFIG": str(cfg)}, db


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return r.exit_code, r.stderr.strip()


def test_only_a_missing_database_file_is_created(state: tuple[dict[str, str], Path]) -> None:
    env, db = state
    code, _ = _run(env, "subscribe", "ada@example.org", "--keywords", "sparse attention")
    assert code == 0 and db.stat().st_size > 0
    code, _ = _run(env, "subscribers")
    assert code == 0


@pytest.mark.parametrize("damage", ["emptied", "another program's"])
@pytest.mark.parametrize("command", [["run"], ["subscribers"],
                                     ["subscribe", "bea@example.org", "--keywords", "graph neural networks"]])
def test_a_database_file_without_a_schema_is_refused_in_one_line(state: tuple[dict[str, str], Path], damage: str,
                                                                  command: list[str]) -> None:
    env, db = state
    assert _run(env, "subscribe", "ada@example.org", "--keywords", "sparse attention")[0] == 0
    if damage == "emptied":
        db.write_bytes(b"")  # : > state/digest.db
        for extra in (db.with_name("digest.db-wal"), db.with_name("digest.db-shm")):
            extra.unlink(missing_ok=True)
    else:
        db.unlink()
        import sqlite3

        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE notes (body TEXT)")
            conn.execute("INSERT INTO notes VALUES ('mine')")
    before = db.read_bytes()
    code, err = _run(env, *command)
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and str(db) in err, err
    assert db.read_bytes() == before  # nothing written: no schema made over the top of it


# ---- Issue 15, item 8: the secret-key file ------------------------------------------------------
_START_AT_ONCE = """
import sys, time
from digest.wiring import secret_keys
from digest.config import Settings
settings = Settings(**{"state_dir": sys.argv[1]})
start = float(sys.argv[2])
while time.time() < start:  # the processes ask for the key in the same instant
    pass
print(secret_keys(settings)[0])
"""


def test_processes_starting_at_once_on_a_fresh_state_folder_share_one_key(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    for round_ in range(8):
        folder = tmp_path / f"state{round_}"
        start = time.time() + 2.0
        procs = [subprocess.Popen([sys.executable, "-c", _START_AT_ONCE, str(folder), str(start)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
        keys = {out.strip() for out, _ in outs}
        assert len(keys) == 1 and len(keys.pop()) >= 16
        assert (folder / "secret_key").read_text().strip() in {out.strip() for out, _ in outs}
        assert [p.name for p in folder.iterdir()] == ["secret_key"]  # no drafts left behind


@pytest.mark.parametrize("content", ["", "\n", "x", "0123456789abcde"])
def test_a_short_or_empty_secret_key_is_refused_in_one_line(state: tuple[dict[str, str], Path], content: str) -> None:
    env, db = state
    key_file = db.parent / "secret_key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(content)
    code, err = _run(env, "run")
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and str(key_file) in err, err
    assert key_file.read_text() == content  # not replaced behind the operator's back


# ---- Issue 15, item 7: one line where a stack trace was -----------------------------------------
@pytest.mark.parametrize(("variable", "url", "key"), [
    ("DIGEST_DATABASE__URL", "postgresql://digest:hunter2@127.0.0.1:abc/digest", "database.url"),
    ("DIGEST_DATABASE__URL", "postgresql://digest@127.0.0.1:99999/digest", "database.url"),
    ("DIGEST_DISPATCH__BROKER_URL", "redis://:hunter2@127.0.0.1:xyz/0", "dispatch.broker_url"),
])
def test_a_url_whose_port_is_not_a_number_is_one_line_naming_the_key(state: tuple[dict[str, str], Path],
                                                                      variable: str, url: str, key: str) -> None:
    env, db = state
    for command in (["subscribers"], ["status"], ["run"]):
        code, err = _run({**env, variable: url}, *command)
        assert code == 2, err
        assert err.startswith("error: ") and "\n" not in err and key in err, err
        assert "hunter2" not in err  # the password stays masked in the message
    assert not db.exists()  # nothing was opened or made


def _with_a_day(env: dict[str, str]) -> None:
    assert _run(env, "subscribe", "ada@example.org", "--keywords", "graph neural networks")[0] == 0
    assert _run(env, "run")[0] == 0


def test_a_read_only_database_file_is_one_line_naming_it(state: tuple[dict[str, str], Path]) -> None:
    import os
    import subprocess

    env, db = state
    _with_a_day(env)
    before = db.read_bytes()
    if os.geteuid() == 0:  # root writes through a mode of 0444: make the file immutable instead
        made = subprocess.run(["chattr", "+i", str(db)], capture_output=True, text=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"cannot make a read-only file here as root: chattr: {made.stderr.strip()}")
    else:
        db.chmod(0o444)
    try:
        for command in (["subscribe", "bea@example.org", "--keywords", "graph neural networks"], ["run"]):
            code, err = _run(env, *command)
            assert code == 2, err
            assert err.startswith("error: ") and "\n" not in err and str(db.name) in err and "readonly" in err, err
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(db)], check=False)
        else:
            db.chmod(0o644)
    assert db.read_bytes() == before


def test_random_bytes_in_the_database_file_are_one_line_naming_it(state: tuple[dict[str, str], Path]) -> None:
    import random

    env, db = state
    _with_a_day(env)
    _run(env, "status")  # a checkpoint: the WAL's pages are in the main file
    data = bytearray(db.read_bytes())
    rng = random.Random(7)
    for i in range(len(data) // 4, 3 * len(data) // 4):
        data[i] = rng.randrange(256)
    db.write_bytes(bytes(data))
    code, err = _run(env, "run")
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and str(db.name) in err, err
