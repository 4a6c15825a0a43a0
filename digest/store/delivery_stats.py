"""Read-only views of the deliveries ledger for the scheduler and the metrics (deliveries.py writes it)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, func, select

from digest.store.schema import deliveries, subscribers


@dataclass(frozen=True)
class Failure:
    digest_date: date
    email: str
    reason: str


def recent_rows(conn: Connection, since: date, subscriber_id: int | None = None) -> dict[int, dict[date, str]]:
    """subscriber id -> {digest date: status} for the digest dates from since on (one subscriber's, or all)."""
    q = (select(deliveries.c.subscriber_id, deliveries.c.digest_date, deliveries.c.status)
         .where(deliveries.c.digest_date >= since))
    if subscriber_id is not None:
        q = q.where(deliveries.c.subscriber_id == subscriber_id)
    rows = conn.execute(q)
    out: dict[int, dict[date, str]] = defaultdict(dict)
    for sub_id, digest_date, status in rows:
        out[sub_id][digest_date] = status
    return dict(out)


def status_counts(conn: Connection) -> dict[str, int]:
    """How many ledger rows are in each status now."""
    rows = conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status))
    return {status: int(n) for status, n in rows}


def failures(conn: Connection, digest_dates: Collection[date], *, limit: int) -> list[Failure]:
    """The failed digests of these dates, with their reasons (at most limit, by date then address)."""
    if not digest_dates:
        return []
    rows = conn.execute(
        select(deliveries.c.digest_date, subscribers.c.email, deliveries.c.last_error)
        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        .where(deliveries.c.status == "failed", deliveries.c.digest_date.in_(list(digest_dates)))
        .order_by(deliveries.c.digest_date.desc(), subscribers.c.email).limit(limit)
    )
    return [Failure(d, str(e), r or "(no reason recorded)") for d, e, r in rows]
