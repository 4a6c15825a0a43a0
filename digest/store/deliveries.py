"""The deliveries ledger: one row per (subscriber, digest date), its picks and impressions.

A row is created with its picks in one transaction, so a re-run re-sends exactly what was chosen;
a row is claimed (status -> sending) before the message goes out, so two runs never both send it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from digest.domain import Pick
from digest.store.schema import deliveries, delivery_items, events

FINAL_STATES = ("sent", "failed")
CLAIMABLE_STATES = ("pending", "temp_failed")
# A row left in "sending" this long ago belongs to a run that died: it may be claimed again.
STALE_SENDING = timedelta(minutes=15)
# Items ranked from here on are the "trending today" block, not picks.
TRENDING_RANK_BASE = 100


@dataclass(frozen=True)
class Delivery:
    id: int
    subscriber_id: int
    digest_date: date
    status: str
    message_id: str | None
    n_picks: int
    attempts: int
    last_error: str | None
    location: str | None
    updated_at: datetime


@dataclass(frozen=True)
class StoredPick:
    rank: int
    paper_id: int
    score: float
    matched: tuple[str, ...]
    reason: str


def _row(m: Any) -> Delivery:
    return Delivery(
        id=m["id"],
        subscriber_id=m["subscriber_id"],
        digest_date=m["digest_date"],
        status=m["status"],
        message_id=m["message_id"],
        n_picks=m["n_picks"],
        attempts=m["attempts"],
        last_error=m["last_error"],
        location=m["location"],
        updated_at=m["updated_at"],
    )


def get_delivery(conn: Connection, subscriber_id: int, digest_date: date) -> Delivery | None:
    row = conn.execute(
        select(deliveries).where(deliveries.c.subscriber_id == subscriber_id, deliveries.c.digest_date == digest_date)
    ).first()
    return _row(row._mapping) if row else None


def create_delivery(
    conn: Connection, *, subscriber_id: int, digest_date: date, picks: Sequence[Pick], now: datetime,
    trending: Sequence[Pick] = (),
) -> Delivery | None:
    """Record the chosen picks and their impressions. None if another run created the row first."""
    try:
        with conn.begin_nested():
            delivery_id = conn.execute(
                insert(deliveries)
                .values(
                    subscriber_id=subscriber_id,
                    digest_date=digest_date,
                    status="pending",
                    n_picks=len(picks),
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(deliveries.c.id)
            ).scalar_one()
    except IntegrityError:
        return None
    ranked = list(enumerate(picks)) + [(TRENDING_RANK_BASE + i, p) for i, p in enumerate(trending)]
    if ranked:
        conn.execute(
            insert(delivery_items),
            [
                {
                    "delivery_id": delivery_id,
                    "rank": rank,
                    "paper_id": p.paper.id,
                    "score": float(p.score),
                    "matched": list(p.matched),
                    "reason": p.reason,
                }
                for rank, p in ranked
            ],
        )
        conn.execute(
            insert(events),
            [
                {
                    "subscriber_id": subscriber_id,
                    "paper_id": p.paper.id,
                    "kind": "impression",
                    "origin": f"digest:{digest_date.isoformat()}",
                    "delivery_id": delivery_id,
                    "flagged": False,
                    "created_at": now,
                }
                for _, p in ranked
            ],
        )
    row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).one()
    return _row(row._mapping)


def stored_picks(conn: Connection, delivery_id: int) -> list[StoredPick]:
    rows = conn.execute(
        select(delivery_items).where(delivery_items.c.delivery_id == delivery_id).order_by(delivery_items.c.rank)
    ).all()
    return [StoredPick(r.rank, r.paper_id, r.score, tuple(r.matched or ()), r.reason) for r in rows]


def set_message_id(conn: Connection, delivery_id: int, message_id: str) -> None:
    conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(message_id=message_id))


def claim(conn: Connection, delivery_id: int, now: datetime) -> bool:
    """Take the row for sending. False when it is sent, failed, or being sent by a live run."""
    stale = now - STALE_SENDING
    res = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery_id,
            (deliveries.c.status.in_(CLAIMABLE_STATES))
            | ((deliveries.c.status == "sending") & (deliveries.c.updated_at < stale)),
        )
        .values(status="sending", attempts=deliveries.c.attempts + 1, updated_at=now)
    )
    return res.rowcount == 1


def finish(
    conn: Connection, delivery_id: int, *, status: str, now: datetime, detail: str = "", location: str | None = None
) -> None:
    values: dict[str, Any] = {"status": status, "updated_at": now, "last_error": detail or None}
    if status == "sent":
        values.update(sent_at=now, location=location, last_error=None)
    conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(**values))


def release(conn: Connection, delivery_id: int, now: datetime) -> None:
    """Hand a claimed row back (the run stopped before sending it)."""
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status == "sending")
        .values(status="pending", updated_at=now)
    )


def deliveries_for_date(conn: Connection, digest_date: date) -> list[Delivery]:
    rows = conn.execute(select(deliveries).where(deliveries.c.digest_date == digest_date).order_by(deliveries.c.id))
    return [_row(r._mapping) for r in rows]
