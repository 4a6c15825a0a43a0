"""Chat channels (digest.hooks): add, remove, list, and pause one that keeps failing.

A channel's messages are ledger rows of their own (channel "hook:<id>", digest.store.deliveries),
so its health is read from the ledger: the digests it failed since it last delivered one. After
pause_after of them in a row the channel is paused (its unsent rows given up, the reason kept,
masked) and `digest status` lists it; the subscriber's email and other channels go on. Resuming
starts the count again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from digest.errors import InputError
from digest.hooks.masking import channel_label
from digest.store.deliveries import CLAIMABLE_STATES, FINAL_STATES, hook_channel
from digest.store.schema import channels, deliveries, subscribers

MAX_PER_SUBSCRIBER = 5


class TooMany(InputError):
    """A subscriber has MAX_PER_SUBSCRIBER channels already."""


@dataclass(frozen=True)
class Channel:
    id: int
    subscriber_id: int
    kind: str
    url: str  # a secret: show label
    room_id: str | None
    token: str | None  # a secret
    paused_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    created_at: datetime

    @property
    def label(self) -> str:
        return channel_label(self.kind, self.url, self.room_id)

    @property
    def ledger_name(self) -> str:
        return hook_channel(self.id)


def _channel(m: Any) -> Channel:
    return Channel(id=m["id"], subscriber_id=m["subscriber_id"], kind=m["kind"], url=m["url"], room_id=m["room_id"],
                   token=m["token"], paused_at=m["paused_at"], consecutive_failures=m["consecutive_failures"] or 0,
                   last_error=m["last_error"], created_at=m["created_at"])


def add(conn: Connection, subscriber_id: int, *, kind: str, url: str, room_id: str | None, token: str | None,
        now: datetime) -> tuple[Channel, bool]:
    """The channel, and whether it is new (the same URL and room again is the channel there is)."""
    mine = list_for(conn, subscriber_id)
    for c in mine:
        if c.kind == kind and c.url == url and c.room_id == room_id:
            if token and c.token != token:  # a new Matrix token for the same room
                conn.execute(update(channels).where(channels.c.id == c.id).values(token=token))
                return get(conn, c.id) or c, False
            return c, False
    if len(mine) >= MAX_PER_SUBSCRIBER:
        raise TooMany(f"at most {MAX_PER_SUBSCRIBER} chat channels per subscriber; remove one first")
    new_id = conn.execute(channels.insert().values(
        subscriber_id=subscriber_id, kind=kind, url=url, room_id=room_id, token=token, consecutive_failures=0,
        created_at=now).returning(channels.c.id)).scalar_one()
    return get(conn, new_id), True  # type: ignore[return-value]


def get(conn: Connection, channel_id: int) -> Channel | None:
    row = conn.execute(select(channels).where(channels.c.id == channel_id)).first()
    return _channel(row._mapping) if row else None


def list_for(conn: Connection, subscriber_id: int) -> list[Channel]:
    rows = conn.execute(select(channels).where(channels.c.subscriber_id == subscriber_id).order_by(channels.c.id))
    return [_channel(r._mapping) for r in rows]


def active_by_subscriber(conn: Connection, subscriber_ids: list[int] | None = None,
                         *, paused_too: bool = False) -> dict[int, list[Channel]]:
    """The channels not paused (or every one: paused_too), by subscriber (of these subscribers, or all)."""
    q = select(channels).order_by(channels.c.id)
    if not paused_too:
        q = q.where(channels.c.paused_at.is_(None))
    if subscriber_ids is not None:
        q = q.where(channels.c.subscriber_id.in_(subscriber_ids))
    out: dict[int, list[Channel]] = {}
    for r in conn.execute(q):
        c = _channel(r._mapping)
        out.setdefault(c.subscriber_id, []).append(c)
    return out


def by_ids(conn: Connection, ids: list[int]) -> dict[int, Channel]:
    if not ids:
        return {}
    return {r.id: _channel(r._mapping) for r in conn.execute(select(channels).where(channels.c.id.in_(ids)))}


def _give_up_unsent(conn: Connection, channel: str, now: datetime, why: str) -> None:
    conn.execute(update(deliveries).where(deliveries.c.channel == channel, deliveries.c.status.in_(CLAIMABLE_STATES))
                 .values(status="failed", last_error=why, next_attempt_at=None, updated_at=now))


def remove(conn: Connection, subscriber_id: int, channel_id: int, now: datetime) -> Channel | None:
    """Remove one of this subscriber's channels (None: no such channel of theirs). Its unsent messages
    are given up; what it was sent stays in the ledger."""
    found = get(conn, channel_id)
    if found is None or found.subscriber_id != subscriber_id:
        return None
    _give_up_unsent(conn, found.ledger_name, now, "the channel was removed")
    conn.execute(delete(channels).where(channels.c.id == channel_id))
    return found


def resume(conn: Connection, subscriber_id: int, channel_id: int) -> Channel | None:
    found = get(conn, channel_id)
    if found is None or found.subscriber_id != subscriber_id:
        return None
    conn.execute(update(channels).where(channels.c.id == channel_id)
                 .values(paused_at=None, consecutive_failures=0))
    return get(conn, channel_id)


def settle(conn: Connection, channel_id: int, now: datetime, pause_after: int) -> Channel | None:
    """Count the channel's failed digests since its last delivered one, keep the last reason, and pause
    it at pause_after. The channel as it is now (None: removed meanwhile)."""
    found = get(conn, channel_id)
    if found is None:
        return None
    rows = conn.execute(
        select(deliveries.c.status, deliveries.c.last_error)
        .where(deliveries.c.channel == found.ledger_name, deliveries.c.status.in_(FINAL_STATES))
        .order_by(deliveries.c.digest_date.desc(), deliveries.c.id.desc()).limit(pause_after)).all()
    failed = 0
    for status, _ in rows:
        if status != "failed":
            break
        failed += 1
    last_error = next((e for s, e in rows if s == "failed" and e), found.last_error) if failed else found.last_error
    values: dict[str, Any] = {"consecutive_failures": failed, "last_error": last_error}
    pause = found.paused_at is None and failed >= pause_after
    if pause:
        values["paused_at"] = now
        _give_up_unsent(conn, found.ledger_name, now, f"the channel was paused after {failed} failed digests")
    conn.execute(update(channels).where(channels.c.id == channel_id).values(**values))
    return get(conn, channel_id)


@dataclass(frozen=True)
class PausedChannel:
    email: str
    channel: Channel


def paused(conn: Connection) -> list[PausedChannel]:
    """Every paused channel, with its subscriber's address: what `digest status` lists."""
    rows = conn.execute(select(channels, subscribers.c.email.label("email"))
                        .join(subscribers, subscribers.c.id == channels.c.subscriber_id)
                        .where(channels.c.paused_at.is_not(None)).order_by(subscribers.c.email, channels.c.id))
    return [PausedChannel(r.email, _channel(r._mapping)) for r in rows]
