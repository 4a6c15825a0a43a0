"""GET /healthz: the database answers, a scheduler's heartbeat is fresh, when the last run succeeded.

Read from the database, so every `digest serve` (the scheduler's or a web-only one) answers alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from digest.domain import naive_utc
from digest.service.leadership import SCHEDULER
from digest.store import lease as lease_store
from digest.store import runs

log = logging.getLogger(__name__)


def _iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).isoformat() if value is not None else None


class HealthCheck:
    """require_scheduler: unhealthy (503) when no process holds a live scheduler lease, or when its
    last wake finished longer than wake_overdue ago (a wake that hangs; the heartbeat still beats)."""

    def __init__(self, engine: Engine, *, require_scheduler: bool, clock: Callable[[], datetime],
                 this_process: Callable[[], bool] = lambda: False, wake_overdue: timedelta | None = None) -> None:
        self.engine = engine
        self.require_scheduler = require_scheduler
        self.wake_overdue = wake_overdue
        self.clock = clock
        self.this_process = this_process

    def __call__(self) -> tuple[int, dict[str, Any]]:
        now = naive_utc(self.clock())
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                lease = lease_store.get(conn, SCHEDULER)
                last = runs.last_success(conn)
        except SQLAlchemyError as exc:
            log.warning("health check: database unreachable: %s", str(exc).splitlines()[0])
            return 503, {"status": "error", "database": "unreachable"}
        alive = lease is not None and not lease.expired(now)
        scheduler: dict[str, Any] = {"running": alive, "in_this_process": self.this_process()}
        overdue = False
        if lease is not None:
            scheduler.update(heartbeat_age_s=round((now - lease.heartbeat_at).total_seconds(), 1),
                             next_wake=_iso(lease.next_wake_at) if alive else None,
                             last_wake=_iso(lease.last_wake_at))
            since = max(lease.last_wake_at or lease.acquired_at, lease.acquired_at)
            overdue = alive and self.wake_overdue is not None and now - since > self.wake_overdue
            if overdue:
                scheduler["problem"] = "no wake has finished for too long: a digest run may hang"
        ok = (alive and not overdue) or not self.require_scheduler
        body = {"status": "ok" if ok else "error", "database": "ok", "scheduler": scheduler,
                "last_success": _iso(last)}
        return (200 if ok else 503), body
