"""The record of daily runs, for `digest status`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from digest.store.schema import runs


def record(
    conn: Connection, *, digest_date: date, started: datetime, finished: datetime, status: str,
    counts: dict[str, int], error: str | None = None,
) -> None:
    conn.execute(insert(runs).values(digest_date=digest_date, started_at=started, finished_at=finished,
                                     status=status, counts=counts, error=error))


def recent(conn: Connection, limit: int = 10) -> list[dict[str, Any]]:
    rows = conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]
