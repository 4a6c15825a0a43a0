"""Who is due now: a subscriber's digest comes due at their local delivery hour, once per local date.

The ledger's key is (subscriber, local date), so daylight-saving changes cannot give two digests for
one date; the due instant is where the local clock first shows the hour, so they cannot give none:
in a spring-forward gap (02:00 never shown) it is the moment the clock jumps, on fall-back the first
of the two 02:00s. Pure functions of a clock passed in; the caller reads the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.domain import Subscriber

log = logging.getLogger(__name__)
WEEK = 7


@dataclass(frozen=True)
class DueDefaults:
    timezone: str  # for subscribers without one
    delivery_hour: int  # for subscribers without one
    catch_up: timedelta  # yesterday's digest is still sent this long after it was due


@dataclass(frozen=True)
class Due:
    subscriber: Subscriber
    digest_date: date  # the subscriber's local date: the ledger key
    due_at: datetime  # aware, UTC
    retry: bool = False  # the ledger has an unfinished row for that date


def due_instant(local_date: date, hour: int, tz: ZoneInfo) -> datetime:
    """The UTC instant the local clock first reaches hour:00 on local_date.

    fold=0 (the default) reads a wall time in a gap with the offset from before the jump, which lands
    exactly on the jump for whole-hour gaps, and picks the first of two repeated wall times.
    """
    return datetime.combine(local_date, time(hour), tzinfo=tz).astimezone(UTC)


def current_digest(now: datetime, tz: ZoneInfo, hour: int, catch_up: timedelta) -> tuple[date, datetime] | None:
    """The latest local date whose digest has come due by now: today's once its hour has come, else
    yesterday's while within catch_up of its due instant (a service that was down over midnight)."""
    today = now.astimezone(tz).date()
    at = due_instant(today, hour, tz)
    if at <= now:
        return today, at
    yesterday = today - timedelta(days=1)
    at = due_instant(yesterday, hour, tz)
    return (yesterday, at) if now - at <= catch_up else None


def is_due(digest_date: date, cadence: str, rows: Mapping[date, str], final_states: Collection[str]) -> bool | None:
    """True: due; None: a retry of an unfinished row; False: nothing to do.

    rows: the subscriber's recent ledger rows, digest date -> status. A later date already in the
    ledger (the subscriber moved west) wins; weekly means one digest per 7 local days.
    """
    if digest_date in rows:
        return False if rows[digest_date] in final_states else None
    last = max(rows, default=None)
    if last is None:
        return True
    if last >= digest_date:
        return False
    return cadence != "weekly" or (digest_date - last).days >= WEEK


def due_now(
    subscribers: Iterable[Subscriber],
    rows: Mapping[int, Mapping[date, str]],
    now: datetime,
    defaults: DueDefaults,
    final_states: Collection[str],
) -> list[Due]:
    """Every subscriber whose digest is due (or needs a retry) at now, with the date it is for."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    out: list[Due] = []
    for sub in subscribers:
        tz = _zone(sub, defaults)
        hour = defaults.delivery_hour if sub.delivery_hour is None else sub.delivery_hour
        current = current_digest(now, tz, hour, defaults.catch_up)
        if current is None:
            continue
        digest_date, at = current
        verdict = is_due(digest_date, sub.cadence, rows.get(sub.id, {}), final_states)
        if verdict is not False:
            out.append(Due(sub, digest_date, at, retry=verdict is None))
    return out


def _zone(sub: Subscriber, defaults: DueDefaults) -> ZoneInfo:
    try:
        return ZoneInfo(sub.timezone or defaults.timezone)
    except (ZoneInfoNotFoundError, ValueError):  # checked on subscribe; a zone dropped from tzdata since
        log.warning("subscriber %s: unknown timezone %r, using %s", sub.id, sub.timezone, defaults.timezone)
        return ZoneInfo(defaults.timezone)


def next_digest(sub: Subscriber, rows: Mapping[date, str], now: datetime, defaults: DueDefaults,
                final_states: Collection[str]) -> date:
    """The date of the next digest this subscriber gets (what `digest preview` shows): the one due now
    or still to be sent, else the first local date after it that their cadence makes due (after
    today's digest went out: tomorrow's, or a week after the last for weekly subscribers).

    rows: the subscriber's recent ledger rows, digest date -> status."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tz = _zone(sub, defaults)
    hour = defaults.delivery_hour if sub.delivery_hour is None else sub.delivery_hour
    current = current_digest(now, tz, hour, defaults.catch_up)
    day = current[0] if current is not None else now.astimezone(tz).date()
    for _ in range(WEEK + len(rows) + 1):  # past the last row, a week at most
        if is_due(day, sub.cadence, rows, final_states) is not False:
            return day
        day += timedelta(days=1)
    return day


def by_date(due: Iterable[Due]) -> dict[date, list[Due]]:
    """One pipeline run per digest date."""
    groups: dict[date, list[Due]] = {}
    for d in due:
        groups.setdefault(d.digest_date, []).append(d)
    return dict(sorted(groups.items()))


def oldest_date(now: datetime) -> date:
    """The earliest ledger date the due check can need: a week before any local date of now."""
    return now.astimezone(UTC).date() - timedelta(days=WEEK + 2)
