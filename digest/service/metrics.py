"""Prometheus metrics for /metrics, read from the database at scrape time, so they are right whatever
process did the work (`digest run` from cron, another `digest serve`) and survive restarts.

Counters add up the runs table (append-only: each run's counts are added once, remembered by run id);
the ledger's current states and the scheduler's heartbeat are gauges.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from digest.domain import naive_utc
from digest.service.leadership import SCHEDULER
from digest.store import deliveries as ledger_store
from digest.store import lease as lease_store
from digest.store import runs

log = logging.getLogger(__name__)
FEED_OUTCOMES = ("ok", "not_modified", "empty", "failed")


def _ts(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


class _RunTotals:
    """Sums over every recorded run, brought up to date incrementally."""

    def __init__(self) -> None:
        self.last_id = 0
        self.counts: dict[str, int] = {}
        self.duration_sum = 0.0
        self.duration_count = 0
        self.last_success: float | None = None

    def add(self, row: dict[str, Any]) -> None:
        self.last_id = max(self.last_id, int(row["id"]))
        counts = row.get("counts") or {}
        for key, value in counts.items():
            if isinstance(value, int):
                self.counts[key] = self.counts.get(key, 0) + value
        started, finished = row.get("started_at"), row.get("finished_at")
        if row.get("status") in ("done", "failed") and isinstance(started, datetime) and isinstance(finished, datetime):
            self.duration_sum += max(0.0, (finished - started).total_seconds())
            self.duration_count += 1
        if row.get("status") == "done" and isinstance(finished, datetime):
            self.last_success = max(self.last_success or 0.0, _ts(finished))


class DigestCollector(Collector):
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock
        self.totals = _RunTotals()
        self.lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("digest_database_up", "1 if the database answered this scrape")
        try:
            with self.lock, self.engine.connect() as conn:
                while batch := runs.after(conn, self.totals.last_id):
                    for row in batch:
                        self.totals.add(row)
                states = ledger_store.status_counts(conn)
                lease = lease_store.get(conn, SCHEDULER)
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", str(exc).splitlines()[0])
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        c = self.totals.counts
        for name, key, doc in (("digest_digests_sent", "sent", "Digests sent"),
                               ("digest_digests_failed", "failed", "Digests that failed for good"),
                               ("digest_digests_deferred", "temp_failed", "Sends deferred to a retry"),
                               ("digest_papers_new", "papers_new", "New papers stored by the fetches")):
            yield CounterMetricFamily(name, doc, value=c.get(key, 0))
        feeds = CounterMetricFamily("digest_feed_fetches", "Source fetches by outcome", labels=["outcome"])
        for outcome in FEED_OUTCOMES:
            feeds.add_metric([outcome], c.get(f"sources_{outcome}", 0))
        yield feeds
        yield SummaryMetricFamily("digest_run_duration_seconds", "Duration of the digest runs",
                                  count_value=self.totals.duration_count, sum_value=self.totals.duration_sum)
        if self.totals.last_success is not None:
            yield GaugeMetricFamily("digest_last_success_timestamp_seconds", "When the last run that succeeded "
                                    "finished (Unix time)", value=self.totals.last_success)
        ledger = GaugeMetricFamily("digest_deliveries", "Deliveries ledger rows by current status", labels=["status"])
        for status, n in sorted(states.items()):
            ledger.add_metric([status], n)
        yield ledger
        if lease is not None:
            now = naive_utc(self.clock())
            yield GaugeMetricFamily("digest_scheduler_heartbeat_age_seconds", "Seconds since the scheduler's "
                                    "last heartbeat", value=(now - lease.heartbeat_at).total_seconds())


class Metrics:
    """A registry of its own (not the global one), so several apps in one process do not collide."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DigestCollector(engine, clock))

    def __call__(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
