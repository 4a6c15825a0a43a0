"""Everything stored about one subscriber: exported as plain data, or deleted entirely."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from digest.hooks.masking import channel_label
from digest.store import consent, signups
from digest.store.schema import (
    channels,
    consents,
    deliveries,
    delivery_items,
    events,
    papers,
    subscriber_models,
    subscribers,
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _source(title_latex: str | None) -> dict[str, str]:
    """The title as the feed gave it (LaTeX), where it differs from the readable one."""
    return {"title_latex": title_latex} if title_latex is not None else {}


def export_subscriber(conn: Connection, subscriber_id: int) -> dict[str, Any] | None:
    """A JSON-ready dict of the subscriber's settings, consents, events and deliveries."""
    row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
    if row is None:
        return None
    # The link and feed keys are credentials, not data about the reader: an export file must not carry them.
    sub = {k: _plain(v) for k, v in row._mapping.items() if k not in ("id", "link_key", "legacy_links", "feed_key")}
    evs = conn.execute(
        select(events.c.kind, events.c.origin, events.c.flagged, events.c.created_at, papers.c.canonical_id,
               papers.c.title, papers.c.title_latex)
        .select_from(events.outerjoin(papers, papers.c.id == events.c.paper_id))
        .where(events.c.subscriber_id == subscriber_id).order_by(events.c.id)
    )
    sent = []
    for d in conn.execute(select(deliveries).where(deliveries.c.subscriber_id == subscriber_id)
                          .order_by(deliveries.c.digest_date)):
        items = conn.execute(
            select(delivery_items.c.rank, delivery_items.c.reason, papers.c.canonical_id, papers.c.title,
                   papers.c.title_latex)
            .join(papers, papers.c.id == delivery_items.c.paper_id)
            .where(delivery_items.c.delivery_id == d.id).order_by(delivery_items.c.rank)
        )
        sent.append({"digest_date": _plain(d.digest_date), "channel": d.channel, "status": d.status,
                     "sent_at": _plain(d.sent_at),
                     "papers": [{"rank": i.rank, "paper": i.canonical_id, "title": i.title, "reason": i.reason,
                                 **_source(i.title_latex)} for i in items]})
    return {
        "subscriber": sub,
        "consents": [{k: _plain(v) for k, v in c.items()} for c in consent.consents_for(conn, subscriber_id)],
        "events": [{"kind": e.kind, "paper": e.canonical_id, "title": e.title, **_source(e.title_latex),
                    "origin": e.origin, "flagged": bool(e.flagged), "at": _plain(e.created_at)} for e in evs],
        "deliveries": sent,
        # A webhook URL and token are credentials: the export names the channel by its host only.
        "chat_channels": [{"id": c.id, "kind": c.kind, "channel": channel_label(c.kind, c.url, c.room_id),
                           "created_at": _plain(c.created_at), "paused_at": _plain(c.paused_at)}
                          for c in conn.execute(select(channels).where(channels.c.subscriber_id == subscriber_id)
                                                .order_by(channels.c.id))],
        "pending_signups": [{"created_at": _plain(s.created_at), "confirmed_at": _plain(s.confirmed_at),
                             "ip": s.ip, "preferences": s.preferences}
                            for s in signups.list_for_email(conn, str(row.email))],
    }


def delete_subscriber(conn: Connection, subscriber_id: int) -> bool:
    """Delete the subscriber and every row about them. False if there was no such subscriber."""
    email = conn.execute(select(subscribers.c.email).where(subscribers.c.id == subscriber_id)).scalar()
    if email is None:
        return False
    # Explicit deletes rather than trusting ON DELETE CASCADE: SQLite enforces it only with the pragma.
    mine = select(deliveries.c.id).where(deliveries.c.subscriber_id == subscriber_id).scalar_subquery()
    conn.execute(delete(events).where(events.c.subscriber_id == subscriber_id))
    conn.execute(delete(delivery_items).where(delivery_items.c.delivery_id.in_(mine)))
    conn.execute(delete(deliveries).where(deliveries.c.subscriber_id == subscriber_id))
    conn.execute(delete(subscriber_models).where(subscriber_models.c.subscriber_id == subscriber_id))
    conn.execute(delete(channels).where(channels.c.subscriber_id == subscriber_id))
    conn.execute(delete(consents).where(consents.c.subscriber_id == subscriber_id))
    signups.delete_for_email(conn, str(email))
    conn.execute(delete(subscribers).where(subscribers.c.id == subscriber_id))
    return True
