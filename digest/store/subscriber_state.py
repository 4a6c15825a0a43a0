"""Subscribing again from a link: the counterpart of subscribers.deactivate."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, update

from digest.store.schema import subscribers


def reactivate(conn: Connection, subscriber_id: int, now: datetime) -> bool:
    """Resume an unsubscribed subscriber with the keywords they had. False if already active or unknown."""
    res = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id, subscribers.c.active.is_(False))
        .values(active=True, unsubscribed_at=None, updated_at=now)
    )
    return res.rowcount > 0
