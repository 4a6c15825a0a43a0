"""Subscribers: add or update, unsubscribe, list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from digest.domain import Subscriber
from digest.store.schema import subscribers


def _to_subscriber(row: Row[Any]) -> Subscriber:
    m = row._mapping
    return Subscriber(
        id=m["id"],
        email=m["email"],
        keywords=tuple(m["keywords"]),
        exclude=tuple(m["exclude"] or ()),
        top_k=m["top_k"],
        active=bool(m["active"]),
        timezone=m["timezone"],
    )


def upsert_subscriber(
    conn: Connection,
    *,
    email: str,
    keywords: list[str],
    now: datetime,
    top_k: int | None = None,
    exclude: list[str] | None = None,
    timezone: str | None = None,
) -> tuple[Subscriber, bool]:
    """Subscribe (or re-subscribe and update) an address. Returns the subscriber and whether it is new."""
    row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
    values: dict[str, Any] = {
        "keywords": keywords,
        "top_k": top_k,
        "active": True,
        "unsubscribed_at": None,
        "updated_at": now,
    }
    if exclude is not None:
        values["exclude"] = exclude
    if timezone is not None:
        values["timezone"] = timezone
    if row is None:
        values.setdefault("exclude", [])
        conn.execute(insert(subscribers).values(email=email, created_at=now, **values))
        created = True
    else:
        conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(**values))
        created = False
    sub = get_subscriber(conn, email)
    assert sub is not None
    return sub, created


def get_subscriber(conn: Connection, email: str) -> Subscriber | None:
    row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
    return _to_subscriber(row) if row else None


def get_subscriber_by_id(conn: Connection, subscriber_id: int) -> Subscriber | None:
    row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
    return _to_subscriber(row) if row else None


def _set_active(conn: Connection, subscriber_id: int, active: bool, now: datetime) -> bool:
    res = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id, subscribers.c.active.is_(not active))
        .values(active=active, unsubscribed_at=None if active else now, updated_at=now)
    )
    return res.rowcount > 0


def deactivate(conn: Connection, subscriber_id: int, now: datetime) -> bool:
    """Unsubscribe. The row and its history stay (a later subscribe revives them)."""
    return _set_active(conn, subscriber_id, False, now)


def reactivate(conn: Connection, subscriber_id: int, now: datetime) -> bool:
    """Resume an unsubscribed subscriber with the keywords they had. False if already active or unknown."""
    return _set_active(conn, subscriber_id, True, now)


def list_subscribers(conn: Connection, *, active_only: bool = False) -> list[Subscriber]:
    q = select(subscribers).order_by(subscribers.c.email)
    if active_only:
        q = q.where(subscribers.c.active.is_(True))
    return [_to_subscriber(r) for r in conn.execute(q)]
