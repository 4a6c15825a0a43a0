"""Events: what each subscriber was shown and did (impressions, clicks, stars, dislikes, unsubscribes).

The only SQL on the events table, apart from the impressions written with a delivery. Flagged events
(HEAD requests, clicks within seconds of delivery: mail scanners) are kept for the record but never
returned as labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, delete, func, insert, select

from digest.store.schema import deliveries, events, subscriber_models

KINDS = frozenset({"impression", "click", "star", "dislike", "unsubscribe", "resubscribe"})
LABEL_KINDS = ("click", "star", "dislike")
OPINIONS = {"star": "dislike", "dislike": "star"}  # each opinion and the one it replaces


class Label(NamedTuple):
    """One signal for the learner: an unflagged click, star or dislike, or an impression."""

    subscriber_id: int
    paper_id: int
    kind: str
    created_at: datetime


class StoredEvent(NamedTuple):
    id: int
    subscriber_id: int
    paper_id: int | None
    kind: str
    origin: str
    delivery_id: int | None
    flagged: bool
    created_at: datetime


class DeliveryRef(NamedTuple):
    id: int
    sent_at: datetime | None  # None: not sent (yet)
    updated_at: datetime  # the last change of state: when a delivery still "sending" was claimed


def record_event(
    conn: Connection,
    *,
    subscriber_id: int,
    paper_id: int | None,
    kind: str,
    origin: str,
    delivery_id: int | None = None,
    flagged: bool = False,
    now: datetime,
) -> int:
    """Insert one event and return its id."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind: {kind}")
    return int(
        conn.execute(
            insert(events)
            .values(
                subscriber_id=subscriber_id,
                paper_id=paper_id,
                kind=kind,
                origin=origin[:100],
                delivery_id=delivery_id,
                flagged=flagged,
                created_at=now,
            )
            .returning(events.c.id)
        ).scalar_one()
    )


def _find(conn: Connection, subscriber_id: int, paper_id: int, kind: str, *, unflagged_only: bool) -> int | None:
    q = select(events.c.id).where(
        events.c.subscriber_id == subscriber_id, events.c.paper_id == paper_id, events.c.kind == kind
    )
    if unflagged_only:
        q = q.where(events.c.flagged.is_(False))
    found = conn.execute(q.order_by(events.c.id).limit(1)).scalar()
    return int(found) if found is not None else None


def set_opinion(
    conn: Connection,
    *,
    subscriber_id: int,
    paper_id: int,
    kind: str,
    origin: str,
    delivery_id: int | None = None,
    flagged: bool = False,
    now: datetime,
) -> tuple[int, bool]:
    """Record a star or dislike at most once. Returns (event id, whether a new event was written).

    An unflagged opinion removes the subscriber's unflagged opposite one for the paper (the latest
    opinion wins). A flagged one (a scanner) changes nothing already there: it is written only when
    no event of that kind exists, and a later real click is still recorded as a label.
    """
    if kind not in OPINIONS:
        raise ValueError(f"not an opinion: {kind}")
    existing = _find(conn, subscriber_id, paper_id, kind, unflagged_only=not flagged)
    if not flagged:
        gone = conn.execute(
            delete(events).where(
                events.c.subscriber_id == subscriber_id,
                events.c.paper_id == paper_id,
                events.c.kind == OPINIONS[kind],
                events.c.flagged.is_(False),
            )
        ).rowcount
        if gone:
            forget_model(conn, subscriber_id)
    if existing is not None:
        return existing, False
    event_id = record_event(conn, subscriber_id=subscriber_id, paper_id=paper_id, kind=kind, origin=origin,
                            delivery_id=delivery_id, flagged=flagged, now=now)
    return event_id, True


def forget_model(conn: Connection, subscriber_id: int) -> None:
    """A label was taken back: drop the model, so the next run retrains without it.

    (Staleness is otherwise told by the newest event id, which a deletion does not change.)
    """
    conn.execute(delete(subscriber_models).where(subscriber_models.c.subscriber_id == subscriber_id))


def remove_event(conn: Connection, event_id: int) -> bool:
    row = conn.execute(select(events.c.subscriber_id).where(events.c.id == event_id)).first()
    if row is None:
        return False
    conn.execute(delete(events).where(events.c.id == event_id))
    forget_model(conn, row.subscriber_id)
    return True


def remove_events(conn: Connection, *, subscriber_id: int, paper_id: int, kind: str) -> int:
    """Undo: every event of that kind for the subscriber and paper goes (the user took it back)."""
    res = conn.execute(
        delete(events).where(
            events.c.subscriber_id == subscriber_id, events.c.paper_id == paper_id, events.c.kind == kind
        )
    )
    if res.rowcount:
        forget_model(conn, subscriber_id)
    return int(res.rowcount)


def has_event(conn: Connection, *, subscriber_id: int, paper_id: int, kind: str) -> bool:
    return _find(conn, subscriber_id, paper_id, kind, unflagged_only=False) is not None


def _signals(conn: Connection, subscriber_ids: Sequence[int], kinds: Sequence[str],
             since: datetime | None) -> list[Label]:
    if not subscriber_ids:
        return []
    q = select(events.c.subscriber_id, events.c.paper_id, events.c.kind, events.c.created_at).where(
        events.c.subscriber_id.in_(list(subscriber_ids)),
        events.c.kind.in_(list(kinds)),
        events.c.flagged.is_(False),
        events.c.paper_id.is_not(None),
    )
    if since is not None:
        q = q.where(events.c.created_at >= since)
    rows = conn.execute(q.order_by(events.c.created_at, events.c.id)).all()
    return [Label(r.subscriber_id, r.paper_id, r.kind, r.created_at) for r in rows]


def signal_kinds(conn: Connection, subscriber_ids: Sequence[int]) -> list[tuple[int, int, str]]:
    """(subscriber id, paper id, kind) of every unflagged click, star, dislike and impression of these
    subscribers, in no order: what their models learn from, without the times (parsing ten
    thousands of timestamps was most of the cost of reading a group's feedback)."""
    if not subscriber_ids:
        return []
    q = select(events.c.subscriber_id, events.c.paper_id, events.c.kind).where(
        events.c.subscriber_id.in_(list(subscriber_ids)),
        events.c.kind.in_([*LABEL_KINDS, "impression"]),
        events.c.flagged.is_(False),
        events.c.paper_id.is_not(None),
    )
    return [(r[0], r[1], r[2]) for r in conn.execute(q)]


def labels_for(conn: Connection, subscriber_ids: Sequence[int], *, since: datetime | None = None) -> list[Label]:
    """Unflagged clicks, stars and dislikes of these subscribers, oldest first."""
    return _signals(conn, subscriber_ids, LABEL_KINDS, since)


def impressions_for(conn: Connection, subscriber_ids: Sequence[int], *,
                    since: datetime | None = None) -> list[Label]:
    """The papers shown to these subscribers in their digests, oldest first."""
    return _signals(conn, subscriber_ids, ("impression",), since)


def list_events(conn: Connection, subscriber_id: int, *, kinds: Sequence[str] | None = None) -> list[StoredEvent]:
    """Every event of one subscriber (flagged ones too), oldest first: for audits and tests."""
    q = select(events).where(events.c.subscriber_id == subscriber_id)
    if kinds is not None:
        q = q.where(events.c.kind.in_(list(kinds)))
    rows = conn.execute(q.order_by(events.c.id)).all()
    return [
        StoredEvent(r.id, r.subscriber_id, r.paper_id, r.kind, r.origin, r.delivery_id, bool(r.flagged), r.created_at)
        for r in rows
    ]


def find_delivery(conn: Connection, delivery_id: int, *, subscriber_id: int) -> DeliveryRef | None:
    """The subscriber's delivery and when it was sent: the start of the scanner window."""
    row = conn.execute(
        select(deliveries.c.id, deliveries.c.sent_at, deliveries.c.updated_at).where(
            deliveries.c.id == delivery_id, deliveries.c.subscriber_id == subscriber_id
        )
    ).first()
    return DeliveryRef(row.id, row.sent_at, row.updated_at) if row else None


def latest_event_ids(conn: Connection, subscriber_ids: Sequence[int]) -> dict[int, int]:
    """The newest feedback or impression event per subscriber, to tell whether a stored model is stale."""
    if not subscriber_ids:
        return {}
    q = (select(events.c.subscriber_id, func.max(events.c.id))
         .where(events.c.subscriber_id.in_(list(subscriber_ids)), events.c.kind.in_((*LABEL_KINDS, "impression")))
         .group_by(events.c.subscriber_id))
    return {sid: int(mx) for sid, mx in conn.execute(q)}
