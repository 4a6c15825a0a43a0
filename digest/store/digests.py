"""Reading back a recorded digest (its ledger row and picks) for the web view."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, select

from digest.store.deliveries import StoredPick, stored_picks
from digest.store.schema import deliveries


def delivered_digest(conn: Connection, subscriber_id: int, delivery_id: int) -> tuple[date, list[StoredPick]] | None:
    """The digest date and picks of one of this subscriber's deliveries; None if it is not theirs."""
    found = conn.execute(
        select(deliveries.c.digest_date).where(deliveries.c.id == delivery_id,
                                               deliveries.c.subscriber_id == subscriber_id)
    ).scalar()
    if found is None:
        return None
    return found, stored_picks(conn, delivery_id)
