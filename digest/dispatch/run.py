"""Deliver one digest date for a set of subscribers, in this process or through Celery.

Either way the deliveries ledger is the authority: a shard run twice (a redelivery after a worker
died, or two dispatchers at once) sends nothing twice, because every row is created once per
(subscriber, date) and claimed before it is sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from datetime import date, datetime

from digest.domain import SubscriberOutcome, naive_utc
from digest.pipeline.report import RunReport
from digest.store import deliveries as ledger
from digest.store import subscribers as sub_store
from digest.training import terms as term_store
from digest.wiring import App

log = logging.getLogger(__name__)


def dispatch_date(app: App, digest_date: date, now: datetime, *, subscriber_ids: Collection[int] | None = None,
            only: str | None = None, dry_run: bool = False, stop: threading.Event | None = None,
            force_outbox: bool = False, progress: Callable[[SubscriberOutcome], None] | None = None) -> RunReport:
    """The day's digests for these subscribers (None: every receiving one)."""
    mode = app.settings.dispatch.mode
    if not dry_run:  # once per run, before any shard ranks: every paper's term counts current
        term_store.ensure_current(app.engine, now)
    if mode == "local" or dry_run or only is not None or force_outbox:
        # A dry run, a single address or the demo is an operator's check: always here, never queued.
        report = app.pipeline(force_outbox=force_outbox).run(digest_date, now, only=only, dry_run=dry_run,
                                                             subscriber_ids=subscriber_ids, stop=stop,
                                                             progress=progress)
    else:
        from digest.dispatch.celery_app import dispatch_shards  # celery is an optional dependency

        if subscriber_ids is None:
            with app.engine.connect() as conn:
                subscriber_ids = [s.id for s in sub_store.list_subscribers(conn, receiving_only=True)]
        report = dispatch_shards(app.settings, digest_date, now, subscriber_ids, stop=stop, progress=progress)
    # Asked of the ledger after the run, as `digest retry` and `digest status` ask it; less the rows
    # this run found another live run sending (in progress: that run reports them).
    busy = {o.email for o in report.outcomes if o.status == "in_progress"}
    with app.engine.connect() as conn:
        if only is not None:
            sub = sub_store.get_subscriber(conn, only)
            subscriber_ids = [sub.id] if sub is not None else []
        now_db = naive_utc(now)
        rows = ledger.to_retry(conn, now_db, digest_date=digest_date, subscriber_ids=subscriber_ids)
        if busy:
            subs = {r.subscriber_id: sub_store.get_subscriber_by_id(conn, r.subscriber_id) for r in rows}
            rows = [r for r in rows if (s := subs[r.subscriber_id]) is None or s.email not in busy]
    report.to_retry = len(rows)
    return report
