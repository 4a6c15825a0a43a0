"""The deliveries ledger: one row per (subscriber, digest date), its picks and impressions.

A row is created with its picks in one transaction, so a re-run re-sends exactly what was chosen;
a row is claimed (status -> sending) right before its message goes out, one row at a time, so two
runs never both send it and a crash leaves at most one row of that process in "sending".

    pending -> sending -> sent
                       -> failed       a permanent refusal (5xx), or retries ran past the deadline
                       -> temp_failed  a 4xx or a lost connection before DATA: retried at next_attempt_at
                       -> unknown      the connection died after the message was handed over, before
                                       the reply: it may have arrived. Re-sent (same Message-ID) while
                                       fewer than MAX_AMBIGUOUS attempts were ambiguous, so one
                                       reader gets at most one duplicate; the attempt that makes it
                                       MAX_AMBIGUOUS turns the row to failed with that reason.

A reader who turned email off ("feed only") gets rows created as "recorded": the picks are kept for
their feed, and the row is final at once, never claimed, sent or retried. A row still unsent when
the reader turns email off is settled the same way by the next run (keep_for_feed).

A row left in "sending" by a process that died is taken over: back to pending when DATA had not
begun on that attempt (nothing can have arrived: safe to send), else to unknown (ambiguous). The
claimer is known dead when it ran on this host and its pid is gone; otherwise only once the row is
STALE_SENDING old, longer than a live sender ever holds one row (a few SMTP timeouts).

"To retry" is one question with one answer, :func:`to_retry`: `digest run`, `digest retry` and
`digest status` all ask it. Read-only views for the web view, the scheduler and the metrics are
at the end.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    String,
    Text,
    Update,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from digest.domain import Pick
from digest.process import owner
from digest.store.schema import deliveries, delivery_items, events, subscribers

FINAL_STATES = ("sent", "failed", "recorded")  # recorded: for the feed only, never mailed
CLAIMABLE_STATES = ("pending", "temp_failed", "unknown")
UNFINISHED_STATES = (*CLAIMABLE_STATES, "sending")
# A row left in "sending" this long ago belongs to a run that died: it may be taken over.
STALE_SENDING = timedelta(minutes=15)
# Attempts whose outcome is unknown that a row may have: the first is re-sent once, then no more.
MAX_AMBIGUOUS = 2
# Why a row that reached MAX_AMBIGUOUS is failed rather than left "unknown" for ever.
GAVE_UP_AMBIGUOUS = (f"not sent again: {MAX_AMBIGUOUS} attempts were cut off after the message was handed over and "
                     "before the relay's reply, so it may have arrived")
# Items ranked from here on are the "trending today" block, not picks.
TRENDING_RANK_BASE = 100
# The channel of an email row; a chat message's is hook_channel(its channels.id) (migration 0020).
EMAIL = "email"


def hook_channel(channel_id: int) -> str:
    return f"hook:{channel_id}"


def hook_id(channel: str) -> int | None:
    """The channels.id a ledger channel names, or None for email."""
    return int(channel.removeprefix("hook:")) if channel.startswith("hook:") else None


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
    created_at: datetime
    next_attempt_at: datetime | None = None
    claimed_by: str | None = None
    data_started_at: datetime | None = None
    ambiguous: int = 0
    channel: str = EMAIL


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
        created_at=m["created_at"],
        next_attempt_at=m["next_attempt_at"],
        claimed_by=m["claimed_by"],
        data_started_at=m["data_started_at"],
        ambiguous=m["ambiguous"] or 0,
        channel=m["channel"],
    )


def get_delivery(conn: Connection, subscriber_id: int, digest_date: date, channel: str = EMAIL) -> Delivery | None:
    row = conn.execute(
        select(deliveries).where(deliveries.c.subscriber_id == subscriber_id, deliveries.c.digest_date == digest_date,
                                 deliveries.c.channel == channel)
    ).first()
    return _row(row._mapping) if row else None


def create_delivery(
    conn: Connection, *, subscriber_id: int, digest_date: date, picks: Sequence[Pick], now: datetime,
    trending: Sequence[Pick] = (), mail: bool = True,
) -> Delivery | None:
    """Record the chosen picks and their impressions (mail False: "recorded", for the feed only).
    None if another run created the row first."""
    try:
        with conn.begin_nested():
            delivery_id = conn.execute(
                insert(deliveries)
                .values(
                    subscriber_id=subscriber_id,
                    digest_date=digest_date,
                    status=_first_status(mail),
                    n_picks=len(picks),
                    attempts=0,
                    ambiguous=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(deliveries.c.id)
            ).scalar_one()
    except IntegrityError:
        return None
    ranked = _ranked(picks, trending)
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


@dataclass(frozen=True)
class Planned:
    """A subscriber's chosen papers for one date, to be recorded."""

    subscriber_id: int
    picks: Sequence[Pick]
    trending: Sequence[Pick] = ()
    mail: bool = True  # False: the reader reads the feed only; the row is "recorded", never sent


def _first_status(mail: bool) -> str:
    return "pending" if mail else "recorded"


def create_deliveries(conn: Connection, planned: Sequence[Planned], *, digest_date: date,
                      now: datetime) -> dict[int, Delivery]:
    """Record many digests at once (rows, picks, impressions): a few statements for the lot instead
    of several per subscriber. Returns the new rows by subscriber id; a subscriber whose row another
    run created first is left out (its picks are not recorded twice)."""
    if not planned:
        return {}
    # ON CONFLICT DO NOTHING ... RETURNING: the rows another run got to first come back as nothing.
    key = ["subscriber_id", "digest_date", "channel"]
    # The dialects' insert builders are imported here: `digest status` and the other light commands
    # read this module and never record a digest (the PostgreSQL one costs ~10 ms at start-up).
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        unless_present: Any = sqlite_insert(deliveries).on_conflict_do_nothing(index_elements=key)
    elif conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        unless_present = postgresql_insert(deliveries).on_conflict_do_nothing(index_elements=key)
    else:  # no portable "insert unless present": one at a time
        made = (create_delivery(conn, subscriber_id=p.subscriber_id, digest_date=digest_date, picks=p.picks,
                                now=now, trending=p.trending, mail=p.mail) for p in planned)
        return {row.subscriber_id: row for row in made if row is not None}
    stmt = unless_present.returning(deliveries.c.id, deliveries.c.subscriber_id)
    created = conn.execute(stmt, [
        {"subscriber_id": p.subscriber_id, "digest_date": digest_date, "status": _first_status(p.mail),
         "n_picks": len(p.picks),
         "attempts": 0, "ambiguous": 0, "created_at": now, "updated_at": now} for p in planned
    ]).all()
    id_of = {r.subscriber_id: r.id for r in created}
    items, shown = [], []
    origin = f"digest:{digest_date.isoformat()}"
    for p in planned:
        delivery_id = id_of.get(p.subscriber_id)
        if delivery_id is None:
            continue
        for rank, pick in _ranked(p.picks, p.trending):
            items.append({"delivery_id": delivery_id, "rank": rank, "paper_id": pick.paper.id,
                          "score": float(pick.score), "matched": list(pick.matched), "reason": pick.reason})
            shown.append({"subscriber_id": p.subscriber_id, "paper_id": pick.paper.id, "kind": "impression",
                          "origin": origin, "delivery_id": delivery_id, "flagged": False, "created_at": now})
    if items:
        conn.execute(insert(delivery_items), items)
        conn.execute(insert(events), shown)
    rows = conn.execute(select(deliveries).where(deliveries.c.id.in_(list(id_of.values())))).all() if id_of else []
    return {r.subscriber_id: _row(r._mapping) for r in rows}


def add_channels(conn: Connection, first: Delivery, channels: Sequence[str], now: datetime) -> list[Delivery]:
    """Rows for the other channels of a digest just recorded (first: its row), each with a copy of its
    picks, so every channel carries the same picks and its own state; the impressions stay with the
    first row (shown once, whatever the channels). A channel that has its row already is left out."""
    made = []
    for channel in channels:
        try:
            with conn.begin_nested():
                new_id = conn.execute(insert(deliveries).values(
                    subscriber_id=first.subscriber_id, digest_date=first.digest_date, channel=channel,
                    status="pending", n_picks=first.n_picks, attempts=0, ambiguous=0, created_at=now, updated_at=now,
                ).returning(deliveries.c.id)).scalar_one()
        except IntegrityError:
            continue
        copied = [delivery_items.c.rank, delivery_items.c.paper_id, delivery_items.c.score, delivery_items.c.matched,
                  delivery_items.c.reason]
        conn.execute(insert(delivery_items).from_select(
            ["delivery_id", "rank", "paper_id", "score", "matched", "reason"],
            select(literal(new_id), *copied).where(delivery_items.c.delivery_id == first.id)))
        row = get_by_id(conn, new_id)
        if row is not None:
            made.append(row)
    return made


def _ranked(picks: Sequence[Pick], trending: Sequence[Pick]) -> list[tuple[int, Pick]]:
    """Picks by rank, then the trending block after TRENDING_RANK_BASE."""
    return list(enumerate(picks)) + [(TRENDING_RANK_BASE + i, p) for i, p in enumerate(trending)]


def stored_picks(conn: Connection, delivery_id: int) -> list[StoredPick]:
    rows = conn.execute(
        select(delivery_items).where(delivery_items.c.delivery_id == delivery_id).order_by(delivery_items.c.rank)
    ).all()
    return [StoredPick(r.rank, r.paper_id, r.score, tuple(r.matched or ()), r.reason) for r in rows]


def set_message_id(conn: Connection, delivery_id: int, message_id: str) -> None:
    conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(message_id=message_id))


# The statements run for every message are built once, with bound parameters: building a
# SQLAlchemy statement costs more than executing it on SQLite (three per message, ten thousand a day).
_CLAIM = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("row_id"),
        deliveries.c.status.in_(CLAIMABLE_STATES),
        deliveries.c.ambiguous < MAX_AMBIGUOUS,
        or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= bindparam("now")),
    )
    .values(status="sending", attempts=deliveries.c.attempts + 1, updated_at=bindparam("now"),
            claimed_by=bindparam("holder"), data_started_at=None,
            message_id=func.coalesce(bindparam("message_id", type_=String), deliveries.c.message_id))
)
_DATA_STARTED = (update(deliveries)
                 .where(deliveries.c.id == bindparam("row_id"), deliveries.c.status == "sending")
                 .values(data_started_at=bindparam("now"), updated_at=bindparam("now")))


def claim(conn: Connection, delivery_id: int, now: datetime, holder: str | None = None,
          message_id: str | None = None) -> bool:
    """Take the row for sending (and note the Message-ID it goes out with). False when it is final,
    not due yet, or held by another process."""
    res = conn.execute(_CLAIM, {"row_id": delivery_id, "now": now, "holder": holder or owner.this_process(),
                                "message_id": message_id})
    return res.rowcount == 1


def mark_data_started(conn: Connection, delivery_id: int, now: datetime) -> None:
    """The message is about to be handed over: from here a crash leaves the outcome unknown."""
    conn.execute(_DATA_STARTED, {"row_id": delivery_id, "now": now})


def _ambiguous_attempt(detail: Any, gave_up: Any, next_attempt_at: Any = None) -> dict[str, Any]:
    """The values for an attempt that ended without knowing whether its message arrived: unknown (to be
    re-sent), or failed with gave_up as the reason when it makes MAX_AMBIGUOUS such attempts."""
    last = deliveries.c.ambiguous + 1 >= MAX_AMBIGUOUS
    return {"ambiguous": deliveries.c.ambiguous + 1, "status": case((last, "failed"), else_="unknown"),
            "last_error": case((last, gave_up), else_=detail),
            "next_attempt_at": None if next_attempt_at is None else case((last, null()), else_=next_attempt_at)}


def gave_up_detail(detail: str | None) -> str:
    return f"{GAVE_UP_AMBIGUOUS} (last: {detail})" if detail else GAVE_UP_AMBIGUOUS


@functools.lru_cache(maxsize=16)
def _finish_statement(status: str, held: bool) -> Update:
    values: dict[str, Any] = {"status": status, "updated_at": bindparam("now"), "last_error": bindparam("detail"),
                              "claimed_by": None, "next_attempt_at": bindparam("next_attempt_at")}
    if status == "sent":
        values.update(sent_at=bindparam("now"), location=bindparam("location"))
    if status == "unknown":
        values.update(_ambiguous_attempt(bindparam("detail", type_=Text), bindparam("gave_up", type_=Text),
                                         bindparam("next_attempt_at", type_=DateTime)))
    q = update(deliveries).where(deliveries.c.id == bindparam("row_id"))
    if held:
        q = q.where(deliveries.c.status == "sending", deliveries.c.claimed_by == bindparam("holder"))
    return q.values(**values)


def finish(
    conn: Connection, delivery_id: int, *, status: str, now: datetime, detail: str = "", location: str | None = None,
    next_attempt_at: datetime | None = None, holder: str | None = None,
) -> bool:
    """Record an attempt's outcome. With holder: only while that process still holds the row
    (False if another process took it over in the meantime). An unknown outcome that makes
    MAX_AMBIGUOUS of them records the row as failed (see :func:`get_by_id` for what it became)."""
    params = {"row_id": delivery_id, "now": now, "detail": None if status == "sent" else detail or None,
              "next_attempt_at": next_attempt_at, "location": location, "holder": holder,
              "gave_up": gave_up_detail(detail)}
    return conn.execute(_finish_statement(status, holder is not None), params).rowcount == 1


def release(conn: Connection, delivery_id: int, now: datetime, holder: str | None = None, detail: str = "") -> None:
    """Hand a claimed row back without an outcome (no connection could be made, or an exception):
    pending if DATA had not begun, so the next run sends it at once, else unknown (or failed, at
    MAX_AMBIGUOUS)."""
    q = update(deliveries).where(deliveries.c.id == delivery_id, deliveries.c.status == "sending")
    if holder is not None:
        q = q.where(deliveries.c.claimed_by == holder)
    conn.execute(q.where(deliveries.c.data_started_at.is_(None))
                 .values(status="pending", claimed_by=None, updated_at=now, last_error=detail or None))
    why = "the run stopped while the message was being handed over"
    conn.execute(q.where(deliveries.c.data_started_at.is_not(None))
                 .values(claimed_by=None, updated_at=now, **_ambiguous_attempt(why, gave_up_detail(why))))


def is_abandoned(row: Delivery, now: datetime) -> bool:
    """A row in "sending" whose claimer is dead or has held it for longer than any live sender would."""
    return row.status == "sending" and (owner.is_dead(row.claimed_by) or now - row.updated_at >= STALE_SENDING)


def take_over(conn: Connection, row: Delivery, now: datetime) -> bool:
    """Resolve an abandoned "sending" row: pending if DATA never began (safe to send), else unknown (or
    failed, when that makes MAX_AMBIGUOUS ambiguous attempts).

    Conditional on the row being exactly as read, so two runs cannot both take it over.
    """
    values: dict[str, Any] = {"status": "pending", "claimed_by": None, "updated_at": now, "next_attempt_at": None}
    if row.data_started_at is not None:
        why = f"the sending process ({row.claimed_by}) stopped after handing the message over"
        values.update(_ambiguous_attempt(why, gave_up_detail(why)))
    res = conn.execute(
        update(deliveries)
        .where(deliveries.c.id == row.id, deliveries.c.status == "sending", deliveries.c.attempts == row.attempts,
               deliveries.c.claimed_by == row.claimed_by)
        .values(**values)
    )
    return res.rowcount == 1


def expire(conn: Connection, delivery_id: int, now: datetime, detail: str) -> bool:
    """Give up on a row that is still not delivered: at its deadline, or ambiguous too often."""
    res = conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status.in_(CLAIMABLE_STATES))
        .values(status="failed", updated_at=now, last_error=detail, next_attempt_at=None)
    )
    return res.rowcount == 1


# Why a row that was never mailed is settled when its reader has turned email off.
EMAIL_TURNED_OFF = "email turned off before it was sent: kept for the feed"
EMAIL_TURNED_OFF_AMBIGUOUS = ("not sent again: email turned off (an earlier attempt was cut off after the message "
                              "was handed over, so it may have arrived)")


def keep_for_feed(conn: Connection, delivery_id: int, now: datetime) -> str | None:
    """Settle an unsent row of a reader who turned email off: "recorded" when nothing of it can have
    arrived (pending, temp_failed), "failed" when an attempt may have (unknown). Its new status; None
    when it was not waiting to be sent (final already, or held by a sending process)."""
    done = {"updated_at": now, "next_attempt_at": None, "claimed_by": None}
    for status, was, why in (("recorded", ("pending", "temp_failed"), EMAIL_TURNED_OFF),
                             ("failed", ("unknown",), EMAIL_TURNED_OFF_AMBIGUOUS)):
        res = conn.execute(update(deliveries).where(deliveries.c.id == delivery_id, deliveries.c.status.in_(was))
                           .values(status=status, last_error=why, **done))
        if res.rowcount == 1:
            return status
    return None


def triage(row: Delivery, now: datetime, retry_for: timedelta) -> str:
    """What a run should do with an existing row: sent | failed | in_progress | abandoned | expired |
    exhausted (ambiguous MAX_AMBIGUOUS times: to be failed, never sent again) | not_due | send."""
    if row.status in FINAL_STATES:
        return row.status
    if row.status == "sending":
        return "abandoned" if is_abandoned(row, now) else "in_progress"
    if row.ambiguous >= MAX_AMBIGUOUS:  # left "unknown" by an older release
        return "exhausted"
    if now >= row.created_at + retry_for:
        return "expired"
    if row.next_attempt_at is not None and row.next_attempt_at > now:
        return "not_due"
    return "send"


def get_by_id(conn: Connection, delivery_id: int) -> Delivery | None:
    row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
    return _row(row._mapping) if row else None


def _to_retry_filter(digest_date: date | None, subscriber_ids: Collection[int] | None) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = [
        deliveries.c.status.in_(UNFINISHED_STATES), subscribers.c.active.is_(True), subscribers.c.paused.is_(False),
        subscribers.c.suspended_at.is_(None), subscribers.c.email_enabled.is_(True)]
    if digest_date is not None:
        clauses.append(deliveries.c.digest_date == digest_date)
    if subscriber_ids is not None:
        clauses.append(deliveries.c.subscriber_id.in_(list(subscriber_ids)))
    return and_(*clauses)


def to_retry(conn: Connection, now: datetime, *, digest_date: date | None = None,
             subscriber_ids: Collection[int] | None = None, due_only: bool = False) -> list[Delivery]:
    """The rows still to retry: not final, of a subscriber still receiving email (not unsubscribed,
    paused, suspended or feed only: the next run for its date settles a feed-only reader's row), and
    not held by a live sending process. The next run for their date, or `digest retry`
    once due (due_only: only those), sends or settles every one of them: resends it, fails it at its
    deadline or at MAX_AMBIGUOUS. The one answer `digest run`, `digest retry` and `digest status` give."""
    q = (select(deliveries).join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
         .where(_to_retry_filter(digest_date, subscriber_ids)).order_by(deliveries.c.id))
    if due_only:
        q = q.where(or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now))
    rows = [_row(r._mapping) for r in conn.execute(q)]
    return [r for r in rows if r.status != "sending" or is_abandoned(r, now)]


def deliveries_for_date(conn: Connection, digest_date: date, channel: str | None = EMAIL) -> list[Delivery]:
    """The date's rows of one channel (None: of every channel)."""
    q = select(deliveries).where(deliveries.c.digest_date == digest_date)
    if channel is not None:
        q = q.where(deliveries.c.channel == channel)
    rows = conn.execute(q.order_by(deliveries.c.id))
    return [_row(r._mapping) for r in rows]


# Read-only views: a recorded digest for the web view; recent statuses, counts and failures for the
# scheduler and the metrics.


def delivered_digest(conn: Connection, subscriber_id: int, delivery_id: int) -> tuple[date, list[StoredPick]] | None:
    """The digest date and picks of one of this subscriber's deliveries; None if it is not theirs."""
    found = conn.execute(
        select(deliveries.c.digest_date).where(deliveries.c.id == delivery_id,
                                               deliveries.c.subscriber_id == subscriber_id)
    ).scalar()
    if found is None:
        return None
    return found, stored_picks(conn, delivery_id)


@dataclass(frozen=True)
class RecordedDigest:
    """One of a reader's recorded digests, whatever became of its email: what their feed shows."""

    id: int
    digest_date: date
    created_at: datetime
    picks: tuple[StoredPick, ...]  # the picks only, by rank (the trending block is not theirs)


def recorded_digests(conn: Connection, subscriber_id: int, since: date) -> list[RecordedDigest]:
    """This subscriber's digests dated since or later, newest first, with their picks."""
    rows = conn.execute(
        select(deliveries.c.id, deliveries.c.digest_date, deliveries.c.created_at, delivery_items.c.rank,
               delivery_items.c.paper_id, delivery_items.c.score, delivery_items.c.matched, delivery_items.c.reason)
        .select_from(deliveries.outerjoin(delivery_items, and_(delivery_items.c.delivery_id == deliveries.c.id,
                                                               delivery_items.c.rank < TRENDING_RANK_BASE)))
        # The email's rows only: a chat channel's row holds a copy of the same picks.
        .where(deliveries.c.subscriber_id == subscriber_id, deliveries.c.digest_date >= since,
               deliveries.c.channel == EMAIL)
        .order_by(deliveries.c.digest_date.desc(), deliveries.c.id.desc(), delivery_items.c.rank)
    ).all()
    heads: dict[int, Any] = {}
    picks: dict[int, list[StoredPick]] = defaultdict(list)
    for r in rows:
        heads.setdefault(r.id, r)
        if r.paper_id is not None:
            picks[r.id].append(StoredPick(r.rank, r.paper_id, r.score, tuple(r.matched or ()), r.reason))
    return [RecordedDigest(i, h.digest_date, h.created_at, tuple(picks[i])) for i, h in heads.items()]


@dataclass(frozen=True)
class Failure:
    digest_date: date
    email: str
    reason: str
    channel: str = EMAIL


def recent_rows(conn: Connection, since: date, subscriber_id: int | None = None) -> dict[int, dict[date, str]]:
    """subscriber id -> {digest date: status} for the digest dates from since on (one subscriber's, or all).
    Where a date has a row per channel, an unfinished one speaks for the date: it is not done yet."""
    q = (select(deliveries.c.subscriber_id, deliveries.c.digest_date, deliveries.c.status)
         .where(deliveries.c.digest_date >= since))
    if subscriber_id is not None:
        q = q.where(deliveries.c.subscriber_id == subscriber_id)
    rows = conn.execute(q)
    out: dict[int, dict[date, str]] = defaultdict(dict)
    for sub_id, digest_date, status in rows:
        if out[sub_id].get(digest_date, FINAL_STATES[0]) in FINAL_STATES:
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
        select(deliveries.c.digest_date, subscribers.c.email, deliveries.c.last_error, deliveries.c.channel)
        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        .where(deliveries.c.status == "failed", deliveries.c.digest_date.in_(list(digest_dates)))
        .order_by(deliveries.c.digest_date.desc(), subscribers.c.email).limit(limit)
    )
    return [Failure(d, str(e), r or "(no reason recorded)", c) for d, e, r, c in rows]
