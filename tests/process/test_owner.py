"""digest.process.owner: who holds a claimed row, and the one check whether a process still runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from digest.process.owner import is_dead, pid_alive, this_process


def test_a_running_process_is_alive_and_a_reaped_one_is_not() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process
    assert not pid_alive(child.pid)


def test_a_zombie_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # exited, not yet reaped: it still answers kill(0)
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] == "Z":
                break
        time.sleep(0.01)
    try:
        assert not pid_alive(child.pid)
    finally:
        child.wait()


def test_is_dead_trusts_only_a_claimer_on_this_host() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = socket.gethostname()
    assert is_dead(f"{host}:{child.pid}:abcd")
    assert not is_dead(f"elsewhere.example:{child.pid}:abcd")  # another host: wait for the timeout
    assert not is_dead(this_process()) and not is_dead(None) and not is_dead(f"{host}:x:y")
    assert is_dead(f"{host}:{os.getpid()}:another-nonce")  # our pid, but an earlier process's claim
