"""The scheduler lease row: taken, renewed by a heartbeat, released, or taken over once expired.

Times are naive UTC from the caller's clock. Each UPDATE carries its own condition (held by me, or
expired), so two processes racing for the lease cannot both get it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from digest.store.schema import scheduler_lease


@dataclass(frozen=True)
class Lease:
    name: str
    owner: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    next_wake_at: datetime | None
    last_wake_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now


def get(conn: Connection, name: str) -> Lease | None:
    row = conn.execute(select(scheduler_lease).where(scheduler_lease.c.name == name)).first()
    if row is None:
        return None
    m = row._mapping
    return Lease(m["name"], m["owner"], m["acquired_at"], m["heartbeat_at"], m["expires_at"], m["next_wake_at"],
                 m["last_wake_at"])


def acquire(conn: Connection, name: str, owner: str, now: datetime, ttl: timedelta,
            *, take_from: str | None = None) -> bool:
    """Take the lease if nobody holds it, it expired, or it is ours (or take_from's: a dead holder)."""
    values = {"owner": owner, "heartbeat_at": now, "expires_at": now + ttl}
    try:
        with conn.begin_nested():
            conn.execute(insert(scheduler_lease).values(name=name, acquired_at=now, next_wake_at=None, **values))
        return True
    except IntegrityError:
        pass
    holders = [owner] + ([take_from] if take_from else [])
    res = conn.execute(
        update(scheduler_lease)
        .where(scheduler_lease.c.name == name,
               scheduler_lease.c.owner.in_(holders) | (scheduler_lease.c.expires_at <= now))
        .values(acquired_at=now, next_wake_at=None, **values)
    )
    return res.rowcount == 1


def renew(conn: Connection, name: str, owner: str, now: datetime, ttl: timedelta,
          next_wake_at: datetime | None = None, last_wake_at: datetime | None = None) -> bool:
    """The heartbeat. False when the lease is no longer ours (it expired and was taken over)."""
    values = {"heartbeat_at": now, "expires_at": now + ttl, "next_wake_at": next_wake_at}
    if last_wake_at is not None:
        values["last_wake_at"] = last_wake_at
    res = conn.execute(
        update(scheduler_lease)
        .where(scheduler_lease.c.name == name, scheduler_lease.c.owner == owner)
        .values(**values)
    )
    return res.rowcount == 1


def record_wake(conn: Connection, name: str, owner: str, finished_at: datetime) -> bool:
    """A wake finished: published at once, not at the next heartbeat (/healthz shows it). False if the
    lease is no longer ours."""
    res = conn.execute(
        update(scheduler_lease)
        .where(scheduler_lease.c.name == name, scheduler_lease.c.owner == owner)
        .values(last_wake_at=finished_at)
    )
    return res.rowcount == 1


def release(conn: Connection, name: str, owner: str, now: datetime) -> None:
    """Give the lease up at shutdown, so that a restarted process takes it at once."""
    conn.execute(
        update(scheduler_lease)
        .where(scheduler_lease.c.name == name, scheduler_lease.c.owner == owner)
        .values(expires_at=now, next_wake_at=None)
    )
