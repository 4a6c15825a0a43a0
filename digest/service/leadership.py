"""One scheduler per database: the process holding the lease row runs the scheduler, the others serve
the web only and take the lease over once it expires (its holder stopped renewing it).

A holder on this host (same pid namespace) whose process is gone is taken over at once, so a restarted service does not
wait out the lease. The lease times come from each process's clock: keep the hosts' clocks in sync.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from digest.domain import naive_utc
from digest.process.owner import pid_alive
from digest.store import lease as lease_store
from digest.store.lease import Lease

log = logging.getLogger(__name__)
SCHEDULER = "scheduler"


def _process_space() -> str:
    """Host name, kernel boot and pid namespace: where a pid means the same process as here.

    Two containers can share a host name (host networking) but not a pid namespace; without /proc
    (not Linux) the pid is never trusted and only the lease's expiry tells.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        pidns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return f"{socket.gethostname()}/?"
    return f"{socket.gethostname()}/{boot}/{pidns}"


class LeaseKeeper:
    """Takes, renews and releases the lease for this process. Not thread-safe: one heartbeat thread."""

    def __init__(self, engine: Engine, ttl: timedelta, clock: Callable[[], datetime],
                 name: str = SCHEDULER, owner: str | None = None) -> None:
        self.engine = engine
        self.ttl = ttl
        self.clock = clock
        self.name = name
        self.space = _process_space()
        self.owner = owner or f"{self.space}:{os.getpid()}:{secrets.token_hex(4)}"
        self.held = False

    def holder(self) -> Lease | None:
        with self.engine.connect() as conn:
            return lease_store.get(conn, self.name)

    def _dead_holder(self, lease: Lease | None) -> str | None:
        """The holder's owner string if it is a process of this host that no longer runs."""
        if lease is None or lease.owner == self.owner or self.space.endswith("/?"):
            return None
        space, _, rest = lease.owner.partition(":")
        pid_text = rest.partition(":")[0]
        if space != self.space or not pid_text.isdigit():
            return None
        return None if pid_alive(int(pid_text)) else lease.owner

    def try_acquire(self) -> bool:
        now = naive_utc(self.clock())
        with self.engine.begin() as conn:
            take_from = self._dead_holder(lease_store.get(conn, self.name))
            self.held = lease_store.acquire(conn, self.name, self.owner, now, self.ttl, take_from=take_from)
        if self.held:
            log.info("scheduler lease taken by %s", self.owner)
        return self.held

    def renew(self, next_wake_at: datetime | None = None, last_wake_at: datetime | None = None) -> bool:
        nxt = naive_utc(next_wake_at) if next_wake_at else None
        last = naive_utc(last_wake_at) if last_wake_at else None
        with self.engine.begin() as conn:
            self.held = lease_store.renew(conn, self.name, self.owner, naive_utc(self.clock()), self.ttl, nxt, last)
        return self.held

    def record_wake(self, finished_at: datetime) -> None:
        """Publish a finished wake. Safe from the scheduler's thread: it changes no state of the keeper."""
        with self.engine.begin() as conn:
            lease_store.record_wake(conn, self.name, self.owner, naive_utc(finished_at))

    def release(self) -> None:
        if not self.held:
            return
        with self.engine.begin() as conn:
            lease_store.release(conn, self.name, self.owner, naive_utc(self.clock()))
        self.held = False
        log.info("scheduler lease released by %s", self.owner)
