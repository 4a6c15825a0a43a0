"""Subscribers: add or update, unsubscribe, list.

An address is found whatever its case (digest.addresses.address_key): Ada@Lab.org finds ada@lab.org.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, bindparam, func, insert, select, update

from digest.addresses import address_key
from digest.domain import Subscriber
from digest.errors import InputError
from digest.store.schema import subscribers


def _is(email: str) -> ColumnElement[bool]:
    """The row of this address, compared ignoring case (the index on lower(email) serves it)."""
    return func.lower(subscribers.c.email) == address_key(email)


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
        delivery_hour=m["delivery_hour"],
        cadence=m["cadence"] or "daily",
        paused=bool(m["paused"]),
        sources=tuple(m["sources"] or ()),
        hard_bounces=m["hard_bounces"] or 0,
        suspended=m["suspended_at"] is not None,
        trending=bool(m["trending"]) if m["trending"] is not None else True,
        email_enabled=bool(m["email_enabled"]) if m["email_enabled"] is not None else True,
        authors=tuple(m["authors"] or ()),
    )


def upsert_subscriber(
    conn: Connection,
    *,
    email: str,
    keywords: list[str] | None,
    now: datetime,
    top_k: int | None = None,
    exclude: list[str] | None = None,
    timezone: str | None = None,
    delivery_hour: int | None = None,
    cadence: str | None = None,
    sources: list[str] | None = None,
    trending: bool | None = None,
    email_enabled: bool | None = None,
    authors: list[str] | None = None,
) -> tuple[Subscriber, bool]:
    """Subscribe (or re-subscribe and update) an address. Returns the subscriber and whether it is new.

    Whatever is left out (None) keeps what the subscriber had: an update changes only what it names.
    A new subscriber needs keywords."""
    row = conn.execute(select(subscribers).where(_is(email)).order_by(subscribers.c.id)).first()
    values: dict[str, Any] = {"active": True, "unsubscribed_at": None, "updated_at": now}
    for key, value in (("keywords", keywords), ("top_k", top_k), ("exclude", exclude), ("timezone", timezone),
                       ("delivery_hour", delivery_hour), ("cadence", cadence), ("sources", sources),
                       ("trending", trending), ("email_enabled", email_enabled), ("authors", authors)):
        if value is not None:
            values[key] = value
    if row is None:
        if keywords is None:
            raise ValueError("a new subscriber needs keywords")
        values.setdefault("exclude", [])
        conn.execute(insert(subscribers).values(email=email, created_at=now, link_key=new_link_key(),
                                                feed_key=new_link_key(), **values))
        created = True
    else:
        conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(**values))  # the address as stored
        created = False
    sub = get_subscriber(conn, email)
    assert sub is not None
    return sub, created


def get_subscriber(conn: Connection, email: str) -> Subscriber | None:
    """The subscriber with this address, whatever its case (the oldest, should two differ only in case)."""
    row = conn.execute(select(subscribers).where(_is(email)).order_by(subscribers.c.id)).first()
    return _to_subscriber(row) if row else None


def require_subscriber(conn: Connection, email: str) -> Subscriber:
    """get_subscriber, for an address the user gave: InputError naming it when no subscriber has it."""
    sub = get_subscriber(conn, email)
    if sub is None:
        raise InputError(f"no subscriber {email}")
    return sub


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


def set_paused(conn: Connection, subscriber_id: int, paused: bool, now: datetime) -> bool:
    """Pause (or resume) sending without unsubscribing. False if it was so already or is unknown."""
    res = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id, subscribers.c.paused.is_(not paused))
        .values(paused=paused, updated_at=now)
    )
    return res.rowcount > 0


def update_preferences(
    conn: Connection,
    subscriber_id: int,
    *,
    keywords: list[str],
    exclude: list[str],
    top_k: int | None,
    timezone: str,
    delivery_hour: int,
    cadence: str,
    sources: list[str],
    now: datetime,
    trending: bool = True,
    authors: list[str] | None = None,
) -> bool:
    """Replace everything a subscriber chose (the manage page). False if there is no such subscriber."""
    res = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id)
        .values(keywords=keywords, exclude=exclude, top_k=top_k, timezone=timezone, delivery_hour=delivery_hour,
                cadence=cadence, sources=sources, trending=trending, authors=authors or [], updated_at=now)
    )
    return res.rowcount > 0


def record_bounce(conn: Connection, subscriber_id: int, now: datetime, max_bounces: int) -> bool:
    """Count a hard bounce; at max_bounces in a row the subscriber is suspended. True if suspended now."""
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id)
                 .values(hard_bounces=subscribers.c.hard_bounces + 1, updated_at=now))
    res = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id, subscribers.c.hard_bounces >= max_bounces,
               subscribers.c.suspended_at.is_(None))
        .values(suspended_at=now)
    )
    return res.rowcount > 0


def change_email(conn: Connection, subscriber_id: int, email: str, now: datetime) -> bool:
    """Move a subscription (and its history) to a new address. False if the address is taken or the id unknown."""
    taken = set(conn.execute(select(subscribers.c.id).where(_is(email))).scalars())
    if taken - {subscriber_id}:
        return False
    res = conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(email=email, updated_at=now))
    return res.rowcount > 0


# Run after every delivery: built once (see digest.store.deliveries on per-message statements).
_CLEAR_BOUNCES = (update(subscribers).where(subscribers.c.id == bindparam("sub_id"), subscribers.c.hard_bounces > 0)
                  .values(hard_bounces=0))


def clear_bounces(conn: Connection, subscriber_id: int) -> None:
    """A delivery went through: the bounce count starts again (only consecutive bounces suspend)."""
    conn.execute(_CLEAR_BOUNCES, {"sub_id": subscriber_id})


def unsuspend(conn: Connection, subscriber_id: int, now: datetime) -> bool:
    """Send to a suspended address again (the operator fixed it). False if it was not suspended."""
    res = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id, subscribers.c.suspended_at.is_not(None))
        .values(suspended_at=None, hard_bounces=0, updated_at=now)
    )
    return res.rowcount > 0


def list_subscribers(conn: Connection, *, active_only: bool = False, receiving_only: bool = False) -> list[Subscriber]:
    """All subscribers; active_only: not unsubscribed; receiving_only: active, not paused, not suspended."""
    q = select(subscribers).order_by(subscribers.c.email)
    if active_only or receiving_only:
        q = q.where(subscribers.c.active.is_(True))
    if receiving_only:
        q = q.where(subscribers.c.paused.is_(False), subscribers.c.suspended_at.is_(None))
    return [_to_subscriber(r) for r in conn.execute(q)]


# ---- link keys (see schema: subscribers.link_key) ----------------------------------------------------
def new_link_key() -> str:
    return secrets.token_urlsafe(12)


def link_key_state(conn: Connection, subscriber_id: int) -> tuple[str | None, bool, datetime] | None:
    """(link key, accepts links without one, created at) of this subscriber; None when the row is gone."""
    row = conn.execute(select(subscribers.c.link_key, subscribers.c.legacy_links, subscribers.c.created_at)
                       .where(subscribers.c.id == subscriber_id)).first()
    return None if row is None else (row.link_key, bool(row.legacy_links), row.created_at)


def link_keys(conn: Connection) -> dict[int, str | None]:
    """Every subscriber's link key: one read for a run that mails thousands of links."""
    return {r.id: r.link_key for r in conn.execute(select(subscribers.c.id, subscribers.c.link_key))}


def renew_link_key(conn: Connection, subscriber_id: int, now: datetime) -> bool:
    """Sign out every link mailed so far: a new key, and links without one refused from now on."""
    done = conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id)
                        .values(link_key=new_link_key(), legacy_links=False, updated_at=now))
    return bool(done.rowcount)


def set_email_enabled(conn: Connection, subscriber_id: int, enabled: bool, now: datetime) -> bool:
    """Email on, or off ("feed only": the digest is recorded for the feed and not mailed). False if it
    was so already or the subscriber is unknown."""
    res = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id, subscribers.c.email_enabled.is_(not enabled))
        .values(email_enabled=enabled, updated_at=now)
    )
    return res.rowcount > 0


# ---- the private feed's key (see schema: subscribers.feed_key) ----------------------------------------
def feed_key(conn: Connection, subscriber_id: int) -> str | None:
    """The key in this subscriber's feed address; None when the row is gone or has none."""
    found = conn.execute(select(subscribers.c.feed_key).where(subscribers.c.id == subscriber_id)).scalar()
    return str(found) if found else None


def renew_feed_key(conn: Connection, subscriber_id: int, now: datetime) -> str | None:
    """A new feed address: the old one answers 410 from now on. The new key; None for an unknown id."""
    key = new_link_key()
    done = conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id)
                        .values(feed_key=key, updated_at=now))
    return key if done.rowcount else None
