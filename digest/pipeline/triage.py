"""What becomes of a ledger row a run finds already there: sent again, left for later, given up on,
or taken over from a run that died (digest.store.deliveries: the states and the crash rules)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine

from digest.domain import Status, Subscriber, SubscriberOutcome
from digest.store import deliveries as ledger

log = logging.getLogger(__name__)


def triage(engine: Engine, sub: Subscriber, row: ledger.Delivery, now: datetime, retry_for: timedelta,
           dry_run: bool) -> SubscriberOutcome | None:
    """The outcome for a row this run will not send, or None: send it (again)."""
    what = ledger.triage(row, now, retry_for)
    if what == "abandoned" and not dry_run:
        with engine.begin() as conn:
            ledger.take_over(conn, row, now)
            fresh = ledger.get_by_id(conn, row.id)
        log.warning("delivery %s to %s was left in sending by %s: now %s", row.id, sub.email, row.claimed_by,
                    fresh.status if fresh else "gone")
        if fresh is None:
            return SubscriberOutcome(sub.email, Status.IN_PROGRESS, row.n_picks)
        row, what = fresh, ledger.triage(fresh, now, retry_for)
    if what == "send" or (what == "abandoned" and dry_run):
        return None
    if what in ("expired", "exhausted") and not dry_run:
        detail = (ledger.gave_up_detail(row.last_error) if what == "exhausted" else
                  f"gave up after {row.attempts} attempt(s) in {retry_for}: {row.last_error or ''}")
        with engine.begin() as conn:
            ledger.expire(conn, row.id, now, detail)
        return SubscriberOutcome(sub.email, Status.FAILED, row.n_picks, detail)
    if what == "not_due":
        when = f"{row.next_attempt_at:%Y-%m-%d %H:%M} UTC" if row.next_attempt_at else "later"
        detail = f"next attempt at {when}: {row.last_error}"
        return SubscriberOutcome(sub.email, Status.DEFERRED, row.n_picks, detail)
    status = {"sent": Status.ALREADY_SENT, "expired": Status.FAILED, "exhausted": Status.FAILED}.get(what)
    return SubscriberOutcome(sub.email, status or Status(what), row.n_picks, row.last_error or "")
