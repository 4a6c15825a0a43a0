"""Who is due, with a clock passed in: local hours, missed wakes, DST changes, weekly cadence."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.domain import Subscriber
from digest.service.due import DueDefaults, by_date, current_digest, due_instant, due_now, is_due, next_digest

FINAL = ("sent", "failed")
DEFAULTS = DueDefaults(timezone="UTC", delivery_hour=6, catch_up=timedelta(hours=6))
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def sub(id_: int = 1, tz: str | None = None, hour: int | None = None, cadence: str = "daily") -> Subscriber:
    return Subscriber(id=id_, email=f"s{id_}@example.org", keywords=("x",), timezone=tz, delivery_hour=hour,
                      cadence=cadence)


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=tz, fold=fold).astimezone(UTC)  # type: ignore[misc]


def simulate(subs: list[Subscriber], start: datetime, end: datetime, step: timedelta = timedelta(minutes=15),
             defaults: DueDefaults = DEFAULTS, down: tuple[datetime, datetime] | None = None,
             ) -> tuple[dict[int, dict[date, str]], list[tuple[int, date, datetime]]]:
    """Wake every step from start to end (none while down); each due digest is recorded as sent."""
    ledger: dict[int, dict[date, str]] = {}
    sent: list[tuple[int, date, datetime]] = []
    now = start
    while now < end:
        if down is None or not (down[0] <= now < down[1]):
            for d in due_now(subs, ledger, now, defaults, FINAL):
                assert not d.retry
                ledger.setdefault(d.subscriber.id, {})[d.digest_date] = "sent"
                sent.append((d.subscriber.id, d.digest_date, now))
        now += step
    return ledger, sent


def test_due_at_the_local_hour_with_defaults_from_config() -> None:
    a, b = sub(1, "Europe/Berlin", 9), sub(2)  # b: UTC at 06:00 (the defaults)
    assert due_now([a, b], {}, datetime(2026, 6, 10, 5, 59, tzinfo=UTC), DEFAULTS, FINAL) == []
    now = datetime(2026, 6, 10, 6, 0, tzinfo=UTC)  # 08:00 in Berlin
    assert [d.subscriber.id for d in due_now([a, b], {}, now, DEFAULTS, FINAL)] == [2]
    due = due_now([a, b], {}, local(BERLIN, 2026, 6, 10, 9, 0), DEFAULTS, FINAL)
    assert {(d.subscriber.id, d.digest_date) for d in due} == {(1, date(2026, 6, 10)), (2, date(2026, 6, 10))}
    assert due[0].due_at == datetime(2026, 6, 10, 7, 0, tzinfo=UTC)  # 09:00 CEST
    with pytest.raises(ValueError):
        due_now([a], {}, datetime(2026, 6, 10, 12), DEFAULTS, FINAL)


def test_the_digest_date_is_the_subscribers_local_date() -> None:
    # 23:30 UTC on 10 June: already 11 June in Tokyo, still 10 June in Los Angeles.
    tokyo, la = sub(1, "Asia/Tokyo", 6), sub(2, "America/Los_Angeles", 6)
    due = due_now([tokyo, la], {}, datetime(2026, 6, 10, 23, 30, tzinfo=UTC), DEFAULTS, FINAL)
    assert {d.subscriber.id: d.digest_date for d in due} == {1: date(2026, 6, 11), 2: date(2026, 6, 10)}
    groups = by_date(due)
    assert list(groups) == [date(2026, 6, 10), date(2026, 6, 11)]


def test_restarted_three_hours_late_delivers_the_day_once() -> None:
    s = sub(1, "Europe/Berlin", 7)
    start, end = local(BERLIN, 2026, 6, 9, 0, 0), local(BERLIN, 2026, 6, 12, 0, 0)
    down = (local(BERLIN, 2026, 6, 10, 5, 0), local(BERLIN, 2026, 6, 10, 10, 0))
    _, sent = simulate([s], start, end, down=down)
    assert [d for _, d, _ in sent] == [date(2026, 6, 9), date(2026, 6, 10), date(2026, 6, 11)]
    assert sent[1][2] == down[1]  # the first wake after the restart


def test_down_over_midnight_catches_up_yesterday_within_the_grace_only() -> None:
    s = sub(1, "Europe/Berlin", 23)
    yesterday = {1: {date(2026, 6, 9): "sent"}}
    at_1 = local(BERLIN, 2026, 6, 11, 1, 0)  # 10 June's 23:00 digest, 2 h late
    assert [(d.digest_date, d.due_at) for d in due_now([s], yesterday, at_1, DEFAULTS, FINAL)] == [
        (date(2026, 6, 10), local(BERLIN, 2026, 6, 10, 23, 0))]
    at_6 = local(BERLIN, 2026, 6, 11, 6, 0)  # 7 h late: beyond catch_up, and today's is not due yet
    assert due_now([s], yesterday, at_6, DEFAULTS, FINAL) == []
    no_grace = DueDefaults("UTC", 6, timedelta(0))
    assert due_now([s], yesterday, at_1, no_grace, FINAL) == []


@pytest.mark.parametrize(("tz", "spring", "fall"), [
    ("Europe/Berlin", date(2026, 3, 29), date(2026, 10, 25)),
    ("America/New_York", date(2026, 3, 8), date(2026, 11, 1)),
])
@pytest.mark.parametrize("hour", [0, 1, 2, 3, 6, 23])
def test_dst_changes_give_exactly_one_digest_per_local_date(tz: str, spring: date, fall: date, hour: int) -> None:
    zone = ZoneInfo(tz)
    s = sub(1, tz, hour)
    for day in (spring, fall):
        start = datetime.combine(day - timedelta(days=3), datetime.min.time(), tzinfo=zone).astimezone(UTC)
        _, sent = simulate([s], start, start + timedelta(days=6, hours=3))  # 6 local days, whatever the DST
        dates = [d for _, d, _ in sent]
        per_date = Counter(dates)
        assert all(n == 1 for n in per_date.values()), per_date
        first, last = min(per_date), max(per_date)
        assert sorted(per_date) == [first + timedelta(days=i) for i in range((last - first).days + 1)]  # no gap
        assert first <= day - timedelta(days=2) and last >= day + timedelta(days=2), (day, dates)
        for _, d, at in sent:
            if at == start:  # the first wake may catch up yesterday's late-evening digest
                continue
            wall = at.astimezone(zone)
            assert wall.date() == d and wall.hour >= hour  # never early, on the subscriber's own date
            assert at - due_instant(d, hour, zone) < timedelta(minutes=15)  # at the first wake once due


def test_spring_forward_gap_hour_is_due_when_the_clock_jumps() -> None:
    # 29 March 2026, Berlin: 02:00 CET jumps to 03:00 CEST; 02:30 never exists.
    at = due_instant(date(2026, 3, 29), 2, BERLIN)
    assert at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC) and at.astimezone(BERLIN).hour == 3
    assert current_digest(at - timedelta(minutes=1), BERLIN, 2, timedelta(0)) is None
    assert current_digest(at, BERLIN, 2, timedelta(0)) == (date(2026, 3, 29), at)


def test_fall_back_repeated_hour_delivers_once() -> None:
    # 1 November 2026, New York: 01:00-02:00 is lived twice (EDT, then EST).
    first = local(NEW_YORK, 2026, 11, 1, 1, 0, fold=0)
    second = local(NEW_YORK, 2026, 11, 1, 1, 0, fold=1)
    assert second - first == timedelta(hours=1)
    s = sub(1, "America/New_York", 1)
    assert [d.digest_date for d in due_now([s], {}, first, DEFAULTS, FINAL)] == [date(2026, 11, 1)]
    rows = {1: {date(2026, 11, 1): "sent"}}
    assert due_now([s], rows, second, DEFAULTS, FINAL) == []
    assert due_instant(date(2026, 11, 1), 1, NEW_YORK) == first


def test_weekly_is_one_digest_per_seven_local_days() -> None:
    s = sub(1, "America/New_York", 9, cadence="weekly")
    start = local(NEW_YORK, 2026, 2, 20, 0, 0)  # across the March DST change
    _, sent = simulate([s], start, start + timedelta(days=29), step=timedelta(hours=1))
    dates = [d for _, d, _ in sent]
    assert dates == [date(2026, 2, 20) + timedelta(days=7 * i) for i in range(5)]


def test_unfinished_rows_are_retried_finished_and_later_ones_are_not() -> None:
    d = date(2026, 6, 10)
    assert is_due(d, "daily", {}, FINAL) is True
    assert is_due(d, "daily", {d: "temp_failed"}, FINAL) is None  # retry: the pipeline decides when
    assert is_due(d, "daily", {d: "sent"}, FINAL) is False
    assert is_due(d, "daily", {d - timedelta(days=1): "sent"}, FINAL) is True
    # Moved west: tomorrow's (their old zone's) digest is already out, today's would be a second one.
    assert is_due(d, "daily", {d + timedelta(days=1): "sent"}, FINAL) is False
    assert is_due(d, "weekly", {d - timedelta(days=6): "sent"}, FINAL) is False
    assert is_due(d, "weekly", {d - timedelta(days=7): "sent"}, FINAL) is True
    now = datetime(2026, 6, 10, 12, tzinfo=UTC)
    (due,) = due_now([sub(1)], {1: {d: "pending"}}, now, DEFAULTS, FINAL)
    assert due.retry and due.digest_date == d


def test_next_digest_is_the_one_the_subscriber_gets_next() -> None:
    d = date(2026, 6, 10)
    berlin = sub(tz="Europe/Berlin", hour=7)
    # 04:30 UTC is 06:30 in Berlin: today's is still to come; at 05:30 UTC it is due, and still next until sent.
    assert next_digest(berlin, {}, datetime(2026, 6, 10, 4, 30, tzinfo=UTC), DEFAULTS, FINAL) == d
    assert next_digest(berlin, {}, datetime(2026, 6, 10, 5, 30, tzinfo=UTC), DEFAULTS, FINAL) == d
    assert next_digest(berlin, {d: "pending"}, datetime(2026, 6, 10, 5, 30, tzinfo=UTC), DEFAULTS, FINAL) == d
    # Once it went out, tomorrow's (in Berlin, at 23:30 UTC it is already the 11th there: the 12th's).
    assert next_digest(berlin, {d: "sent"}, datetime(2026, 6, 10, 9, tzinfo=UTC), DEFAULTS, FINAL) == d + timedelta(1)
    assert next_digest(berlin, {d: "sent", d + timedelta(1): "sent"}, datetime(2026, 6, 10, 23, 30, tzinfo=UTC),
                       DEFAULTS, FINAL) == d + timedelta(2)
    # Weekly: a week after the last one.
    weekly = sub(cadence="weekly")
    assert next_digest(weekly, {d: "sent"}, datetime(2026, 6, 10, 9, tzinfo=UTC), DEFAULTS, FINAL) == d + timedelta(7)
    # Yesterday's, still within the catch-up hours and not sent, comes first.
    late = datetime(2026, 6, 11, 2, tzinfo=UTC)
    assert next_digest(sub(hour=22), {}, late, DEFAULTS, FINAL) == d
