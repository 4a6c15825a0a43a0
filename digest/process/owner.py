"""Who holds a claimed ledger row, and whether that holder can still be alive (pid_alive: the one
liveness check, also for the scheduler lease's holder).

A row in "sending" carries the claimer's token "host:pid:nonce". A process on the same host can
tell at once that the claimer died (its pid is gone) and take the row over without waiting for
the stale timeout; a claimer on another host is trusted until the timeout (see store/deliveries.py).
"""

from __future__ import annotations

import os
import secrets
import socket
from functools import lru_cache


@lru_cache(maxsize=1)
def _nonce() -> str:
    return secrets.token_hex(4)


def this_process() -> str:
    """This process's claim token. The nonce tells a reused pid from the process that claimed."""
    return f"{socket.gethostname()}:{os.getpid()}:{_nonce()}"


def is_dead(token: str | None) -> bool:
    """True only when the claimer certainly no longer runs: same host, and its pid is gone.

    A pid that is alive (even reused by another program) or a claimer on another host counts as
    possibly alive: the caller then waits for the stale timeout, which never sends twice.
    """
    if not token:
        return False
    host, _, rest = token.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return token != this_process()  # our pid, but an earlier process that had it before us
    return not pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process of this pid namespace with this pid still runs (one of another user's
    counts as running; a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed process whose parent has not reaped it yet still answers kill(0), but runs no more.

    A worker's pool process killed with its parent waits as a zombie until init reaps it, which in
    a container may be never. Linux only (/proc); elsewhere such a row waits for the stale timeout.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            # "pid (comm) state ...": comm may hold spaces or parentheses, so split after the last ")".
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")
