"""Celery fan-out: the day's subscribers in shards, one task per shard, on any number of workers.

Tasks are acknowledged only after they ran (acks_late) and given back when their worker dies
(task_reject_on_worker_lost; with Redis, an unacknowledged task returns to the queue after
dispatch.visibility_timeout_s). A shard that runs twice is safe: the deliveries ledger creates one
row per (subscriber, date) and claims it before sending.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Any

from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout
from kombu.exceptions import OperationalError

from digest.config import Settings, masked_url
from digest.dispatch.shards import shards
from digest.domain import Status, SubscriberOutcome
from digest.errors import DispatchError
from digest.pipeline.report import RunReport

log = logging.getLogger(__name__)
TASK = "digest.deliver_shard"

_worker_settings: Settings | None = None
_worker_app: tuple[int, Any] | None = None  # (pid, App): an engine is never shared across a fork


def result_backend(broker_url: str) -> str:
    # Redis keeps the results next to the queue; with RabbitMQ they come back over AMQP (rpc://).
    return broker_url if broker_url.startswith(("redis://", "rediss://")) else "rpc://"


def make_celery(settings: Settings) -> Celery:
    d = settings.dispatch
    app = Celery("digest", broker=d.broker_url, backend=result_backend(d.broker_url))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker holds one shard at a time: the others stay for its peers
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_transport_options={"visibility_timeout": d.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        result_expires=24 * 3600,
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK)(deliver_shard)
    return app


def deliver_shard(digest_date: str, subscriber_ids: list[int], now: str) -> list[list[Any]]:
    """The task: run the pipeline for one shard in this worker; the outcomes go back to the dispatcher."""
    global _worker_app
    from digest.wiring import App

    if _worker_settings is None:
        raise RuntimeError("this worker was not started by `digest worker`")
    if _worker_app is None or _worker_app[0] != os.getpid():
        _worker_app = (os.getpid(), App.open(_worker_settings))
    app = _worker_app[1]
    report = app.pipeline().run(date.fromisoformat(digest_date), datetime.fromisoformat(now),
                                subscriber_ids=set(subscriber_ids))
    log.info("shard date=%s subscribers=%d sent=%d", digest_date, len(subscriber_ids), report.count("sent"))
    return [[o.email, o.status, o.n_picks, o.detail] for o in report.outcomes]


def run_worker(settings: Settings, *, concurrency: int, loglevel: str = "INFO") -> None:
    """`digest worker`: consume shards until stopped (SIGTERM finishes the running shard first)."""
    global _worker_settings
    _worker_settings = settings
    app = make_celery(settings)
    check_broker(app, settings)
    app.worker_main(["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}", "--pool=prefork",
                     "--without-gossip", "--without-mingle"])


def check_broker(app: Celery, settings: Settings) -> None:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
    except (OperationalError, OSError) as exc:
        raise DispatchError(f"cannot reach the broker {masked_url(settings.dispatch.broker_url)} "
                            f"(dispatch.broker_url): {exc}") from None


def dispatch_shards(settings: Settings, digest_date: date, now: datetime, subscriber_ids: Collection[int], *,
                    stop: threading.Event | None = None,
                    progress: Callable[[SubscriberOutcome], None] | None = None) -> RunReport:
    """Enqueue one task per shard and wait for all of them; the outcomes make one RunReport."""
    app = make_celery(settings)
    check_broker(app, settings)
    report = RunReport(digest_date=digest_date)
    groups = shards(subscriber_ids, settings.dispatch.shard_size)
    pending = [app.send_task(TASK, args=[digest_date.isoformat(), group, now.isoformat()]) for group in groups]
    log.info("dispatched date=%s subscribers=%d shards=%d", digest_date, len(subscriber_ids), len(pending))
    deadline = time.monotonic() + settings.dispatch.shard_timeout_s
    for result in pending:
        if stop is not None and stop.is_set():
            break  # queued shards stay queued: the workers finish them
        try:
            rows = result.get(timeout=max(1.0, deadline - time.monotonic()), propagate=False)
        except CeleryTimeout:
            raise DispatchError(f"no answer from the workers within dispatch.shard_timeout_s "
                                f"({settings.dispatch.shard_timeout_s} s) for {digest_date}") from None
        except OperationalError as exc:
            raise DispatchError(f"lost the broker {masked_url(settings.dispatch.broker_url)}: {exc}") from None
        if result.failed():  # e.g. a dead relay: that shard's rows wait in the ledger for the next run
            report.error = f"a shard failed: {str(rows).splitlines()[0] if str(rows) else type(rows).__name__}"
            log.error("shard %s failed: %s", result.id, report.error)
            continue
        outcomes = [SubscriberOutcome(str(e), Status(str(s)), int(n), str(d)) for e, s, n, d in rows]
        report.outcomes += outcomes
        if progress is not None:
            for o in outcomes:
                progress(o)
    return report
