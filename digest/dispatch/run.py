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

from digest.app import App
from digest.pipeline import RunReport, SubscriberOutcome
from digest.store import subscribers as sub_store
from digest.store import terms as term_store

log = logging.getLogger(__name__)


def deliver(app: App, digest_date: date, now: datetime, *, subscriber_ids: Collection[int] | None = None,
            only: str | None = None, dry_run: bool = False, stop: threading.Event | None = None,
            force_outbox: bool = False, progress: Callable[[SubscriberOutcome], None] | None = None) -> RunReport:
    """The day's digests for these subscribers (None: every receiving one)."""
    mode = app.settings.dispatch.mode
    if not dry_run:  # once per run, before any shard ranks: every paper's term counts current
        term_store.ensure_current(app.engine, now)
    if mode == "local" or dry_run or only is not None or force_outbox:
        # A dry run, a single address or the demo is an operator's check: always here, never queued.
        return app.pipeline(force_outbox=force_outbox).run(digest_date, now, only=only, dry_run=dry_run,
                                                           subscriber_ids=subscriber_ids, stop=stop, progress=progress)
    from digest.dispatch.celery_app import dispatch_shards  # celery is an optional dependency

    if subscriber_ids is None:
        with app.engine.connect() as conn:
            subscriber_ids = [s.id for s in sub_store.list_subscribers(conn, receiving_only=True)]
    return dispatch_shards(app.settings, digest_date, now, subscriber_ids, stop=stop, progress=progress)
