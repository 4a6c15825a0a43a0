"""The ledger's fault states on a real SQLite file and a real PostgreSQL database: retries with
backoff until a deadline, abandoned rows, ambiguous sends re-sent at most once, hard bounces."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from digest.domain import Paper, Pick
from digest.pipeline.send import DeliveryPolicy
from digest.process import owner
from digest.store import deliveries as ledger
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.engine import open_engine

NOW = datetime(2026, 11, 29, 6, 0)
DAY = date(2026, 11, 29)
RETRY_FOR = timedelta(hours=24)


@pytest.fixture
def engine(db_url: str) -> Engine:
    e = open_engine(db_url)
    yield e
    e.dispose()


def _row(engine: Engine) -> ledger.Delivery:
    paper = Paper(canonical_id="arxiv:2411.00001", title="A paper", arxiv_id="2411.00001", source="t")
    with engine.begin() as conn:
        sub, _ = sub_store.upsert_subscriber(conn, email="a@example.org", keywords=["x"], now=NOW)
        _, fresh = paper_store.upsert_papers(conn, [paper], NOW)
        row = ledger.create_delivery(conn, subscriber_id=sub.id, digest_date=DAY,
                                     picks=[Pick(fresh[0], 0.5)], now=NOW)
    assert row is not None
    return row


def _get(engine: Engine, row_id: int) -> ledger.Delivery:
    with engine.connect() as conn:
        row = ledger.get_by_id(conn, row_id)
    assert row is not None
    return row


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = DeliveryPolicy(retry_backoff_s=60, retry_backoff_max_s=300)
    assert [(policy.next_attempt(n, NOW) - NOW).total_seconds() for n in (1, 2, 3, 4, 5)] == [60, 120, 240, 300, 300]


def test_temp_failed_waits_for_its_time_and_expires_at_the_deadline(engine: Engine) -> None:
    row = _row(engine)
    with engine.begin() as conn:
        assert ledger.claim(conn, row.id, NOW, "me")
        assert ledger.finish(conn, row.id, status="temp_failed", now=NOW, detail="451 later",
                             next_attempt_at=NOW + timedelta(minutes=5), holder="me")
    row = _get(engine, row.id)
    assert ledger.triage(row, NOW + timedelta(minutes=1), RETRY_FOR) == "not_due"
    with engine.begin() as conn:
        assert not ledger.claim(conn, row.id, NOW + timedelta(minutes=1))  # not due: nobody may take it
    assert ledger.triage(row, NOW + timedelta(minutes=5), RETRY_FOR) == "send"
    assert ledger.triage(row, NOW + RETRY_FOR, RETRY_FOR) == "expired"
    with engine.begin() as conn:
        assert ledger.expire(conn, row.id, NOW + RETRY_FOR, "gave up")
    assert _get(engine, row.id).status == "failed"


def test_finish_by_a_run_that_lost_the_row_changes_nothing(engine: Engine) -> None:
    row = _row(engine)
    with engine.begin() as conn:
        assert ledger.claim(conn, row.id, NOW, "old-run")
        held = ledger.get_by_id(conn, row.id)
        assert held is not None and ledger.take_over(conn, held, NOW + ledger.STALE_SENDING)
        assert ledger.claim(conn, row.id, NOW + ledger.STALE_SENDING, "new-run")
        assert not ledger.finish(conn, row.id, status="temp_failed", now=NOW, holder="old-run")
        assert ledger.finish(conn, row.id, status="sent", now=NOW, holder="new-run")
    assert _get(engine, row.id).status == "sent"


def test_abandoned_before_data_is_resent_as_pending(engine: Engine) -> None:
    row = _row(engine)
    with engine.begin() as conn:
        assert ledger.claim(conn, row.id, NOW, _dead_token())
    held = _get(engine, row.id)
    assert ledger.triage(held, NOW, RETRY_FOR) == "abandoned"  # its process is gone: no need to wait
    with engine.begin() as conn:
        assert ledger.take_over(conn, held, NOW)
    again = _get(engine, row.id)
    assert (again.status, again.ambiguous) == ("pending", 0)  # nothing can have arrived: no duplicate risk


def test_abandoned_after_data_is_unknown_and_resent_once_then_failed(engine: Engine) -> None:
    row = _row(engine)
    for attempt in (1, 2):
        with engine.begin() as conn:
            assert ledger.claim(conn, row.id, NOW, _dead_token())
            ledger.set_message_id(conn, row.id, "<same@example.org>")
            ledger.mark_data_started(conn, row.id, NOW)
        held = _get(engine, row.id)
        with engine.begin() as conn:
            assert ledger.take_over(conn, held, NOW)
        again = _get(engine, row.id)
        # The second ambiguous attempt is the last: failed with the reason, not "unknown" for ever.
        expected = ("unknown", "send") if attempt == 1 else ("failed", "failed")
        assert (again.status, ledger.triage(again, NOW, RETRY_FOR)) == expected
        assert (again.ambiguous, again.message_id) == (attempt, "<same@example.org>")
    assert again.last_error is not None and again.last_error.startswith(ledger.GAVE_UP_AMBIGUOUS)
    assert "stopped after handing the message over" in again.last_error and again.next_attempt_at is None
    with engine.begin() as conn:
        assert not ledger.claim(conn, row.id, NOW)  # ambiguous twice: never sent a third time
        assert ledger.to_retry(conn, NOW) == []


@pytest.mark.parametrize("how", ["finish", "release"])
def test_a_second_ambiguous_outcome_fails_the_row(engine: Engine, how: str) -> None:
    """The relay hanging up after DATA twice (finish unknown), or a run stopping twice mid-handover
    (release), ends in failed like two crashes do."""
    row = _row(engine)
    for attempt in (1, 2):
        with engine.begin() as conn:
            assert ledger.claim(conn, row.id, NOW, "me")
            ledger.mark_data_started(conn, row.id, NOW)
            if how == "finish":
                assert ledger.finish(conn, row.id, status="unknown", now=NOW, detail="connection lost after DATA",
                                     next_attempt_at=NOW, holder="me")
            else:
                ledger.release(conn, row.id, NOW, "me")
        again = _get(engine, row.id)
        assert (again.status, again.ambiguous) == (("unknown", 1) if attempt == 1 else ("failed", 2))
    assert again.last_error is not None and again.last_error.startswith(ledger.GAVE_UP_AMBIGUOUS)
    assert again.next_attempt_at is None


def test_to_retry_is_what_a_run_or_retry_will_still_send_or_settle(engine: Engine) -> None:
    row = _row(engine)
    with engine.connect() as conn:
        assert [r.id for r in ledger.to_retry(conn, NOW)] == [row.id]  # pending
        assert [r.id for r in ledger.to_retry(conn, NOW, digest_date=DAY, subscriber_ids=[row.subscriber_id])] == [
            row.id]
        assert ledger.to_retry(conn, NOW, digest_date=DAY + timedelta(days=1)) == []
        assert ledger.to_retry(conn, NOW, subscriber_ids=[row.subscriber_id + 1]) == []
    with engine.begin() as conn:
        assert ledger.claim(conn, row.id, NOW, owner.this_process())
    with engine.connect() as conn:
        assert ledger.to_retry(conn, NOW) == []  # a live process is sending it
        assert len(ledger.to_retry(conn, NOW + ledger.STALE_SENDING)) == 1  # ... or was, and died
    with engine.begin() as conn:
        assert ledger.finish(conn, row.id, status="temp_failed", now=NOW, detail="451",
                             next_attempt_at=NOW + timedelta(hours=1), holder=owner.this_process())
    with engine.connect() as conn:
        assert len(ledger.to_retry(conn, NOW)) == 1  # waits for its time, still to retry
        assert ledger.to_retry(conn, NOW, due_only=True) == []
        assert len(ledger.to_retry(conn, NOW + timedelta(hours=1), due_only=True)) == 1
    with engine.begin() as conn:
        sub_store.set_paused(conn, row.subscriber_id, True, NOW)
    with engine.connect() as conn:
        assert ledger.to_retry(conn, NOW) == []  # a paused subscriber's digest is on hold, not to retry


def test_a_row_left_unknown_twice_by_an_older_release_is_settled(engine: Engine) -> None:
    """Before this release two ambiguous attempts left a row "unknown" for ever: it is still counted
    to retry, and the next run or retry fails it with the reason."""
    from sqlalchemy import update

    from digest.store.schema import deliveries

    row = _row(engine)
    with engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id == row.id)
                     .values(status="unknown", ambiguous=2, attempts=2, last_error="lost after DATA"))
        assert [r.id for r in ledger.to_retry(conn, NOW, due_only=True)] == [row.id]
    assert ledger.triage(_get(engine, row.id), NOW, RETRY_FOR) == "exhausted"


def test_a_live_claimer_is_waited_for(engine: Engine) -> None:
    row = _row(engine)
    with engine.begin() as conn:
        assert ledger.claim(conn, row.id, NOW, owner.this_process())
    held = _get(engine, row.id)
    assert ledger.triage(held, NOW + timedelta(minutes=1), RETRY_FOR) == "in_progress"
    assert ledger.triage(held, NOW + ledger.STALE_SENDING, RETRY_FOR) == "abandoned"


def test_hard_bounces_suspend_and_a_delivery_resets_the_count(engine: Engine) -> None:
    with engine.begin() as conn:
        sub, _ = sub_store.upsert_subscriber(conn, email="b@example.org", keywords=["x"], now=NOW)
        assert not sub_store.record_bounce(conn, sub.id, NOW, 2)
        sub_store.clear_bounces(conn, sub.id)
        assert not sub_store.record_bounce(conn, sub.id, NOW, 2)
        assert sub_store.record_bounce(conn, sub.id, NOW, 2)
        got = sub_store.get_subscriber(conn, "b@example.org")
        assert got is not None and got.suspended and got.hard_bounces == 2
        assert "b@example.org" not in {s.email for s in sub_store.list_subscribers(conn, receiving_only=True)}
        assert sub_store.unsuspend(conn, sub.id, NOW)
        assert "b@example.org" in {s.email for s in sub_store.list_subscribers(conn, receiving_only=True)}


def _dead_token() -> str:
    """The claim token of a process on this host that has exited."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    token = owner.this_process().split(":")
    token[1] = proc.stdout.strip()
    return ":".join(token)


def test_owner_liveness() -> None:
    assert not owner.is_dead(owner.this_process())
    assert owner.is_dead(_dead_token())
    assert not owner.is_dead("another-host:1:abc")  # elsewhere: trusted until the stale timeout
    assert not owner.is_dead(None)


def test_a_killed_process_not_yet_reaped_counts_as_dead() -> None:
    # A worker's pool process killed with its parent stays a zombie until someone reaps it.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    token = owner.this_process().split(":")
    token[1] = str(proc.pid)
    try:
        assert not owner.is_dead(":".join(token))  # running
        proc.kill()
        deadline = time.monotonic() + 10
        while not owner.is_dead(":".join(token)) and time.monotonic() < deadline:
            time.sleep(0.05)  # not reaped: a zombie until proc.wait()
        assert owner.is_dead(":".join(token))
    finally:
        proc.kill()
        proc.wait()
