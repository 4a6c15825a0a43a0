"""The record of daily runs, for `digest status`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from digest.store.schema import runs


def record(
    conn: Connection, *, digest_date: date, started: datetime, finished: datetime, status: str,
    counts: dict[str, int], error: str | None = None, failed_sources: list[dict[str, str]] | None = None,
) -> None:
    """failed_sources: [{"name", "error"}] of the sources that failed in the run's fetch."""
    conn.execute(insert(runs).values(digest_date=digest_date, started_at=started, finished_at=finished,
                                     status=status, counts=counts, error=error, failed_sources=failed_sources or None))


def recent(conn: Connection, limit: int = 10) -> list[dict[str, Any]]:
    rows = conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def after(conn: Connection, after_id: int, limit: int = 5000) -> list[dict[str, Any]]:
    """Runs recorded after the run with id after_id, oldest first (runs are only ever appended)."""
    rows = conn.execute(select(runs).where(runs.c.id > after_id).order_by(runs.c.id).limit(limit))
    return [dict(r._mapping) for r in rows]


def last_success(conn: Connection) -> datetime | None:
    value = conn.execute(select(func.max(runs.c.finished_at)).where(runs.c.status == "done")).scalar()
    return value if isinstance(value, datetime) else None
