"""One wake of the scheduler: fetch the sources if the last fetch is old enough, then run the
daily workflow (digest.daily) once per local digest date for the subscribers that are due.

The clock is passed in, so tests can stand anywhere in time; the ledger makes a wake repeatable:
running it twice, or in two processes, sends nothing twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from digest.daily import Day
from digest.domain import naive_utc
from digest.pipeline.collect import SourceReport
from digest.pipeline.report import RunReport
from digest.service.due import Due, DueDefaults, by_date, due_now, oldest_date
from digest.store import deliveries as ledger
from digest.store import sources as source_store
from digest.store import subscribers as sub_store
from digest.wiring import App

log = logging.getLogger(__name__)
# Outcomes that mean a run did something worth a line in `digest status`.
_WORTH_RECORDING = {"sent", "failed", "temp_failed", "unknown", "quiet", "recorded"}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WakeResult:
    sources: list[SourceReport] = field(default_factory=list)
    runs: list[RunReport] = field(default_factory=list)
    due: list[Due] = field(default_factory=list)


class Waker:
    def __init__(self, app: App, *, clock: Callable[[], datetime] = utc_now,
                 stop: threading.Event | None = None) -> None:
        self.app = app
        self.clock = clock
        self.stop = stop or threading.Event()
        self.day = Day(app, self.stop, clock)
        s = app.settings.schedule
        self.defaults = DueDefaults(s.timezone, s.delivery_hour, timedelta(hours=s.catch_up_hours))
        # (subscriber, date) found quiet: not ranked again until an ingest brings new papers.
        self._quiet: set[tuple[int, date]] = set()
        self.last_finished: datetime | None = None  # the heartbeat publishes it: a hung wake shows

    def ingest_due(self, now: datetime) -> bool:
        sources = self.app.settings.sources
        if not sources:
            return False
        with self.app.engine.connect() as conn:
            fetched = source_store.last_fetched(conn, [s.name for s in sources])
        stamps = [at for at in fetched.values() if at is not None]
        if len(stamps) < len(fetched):  # a source never fetched (or just added)
            return True
        age = naive_utc(now) - min(stamps)
        return age >= timedelta(minutes=self.app.settings.schedule.ingest_every_minutes)

    def ingest(self, now: datetime) -> list[SourceReport]:
        reports = self.day.fetch(now, each=lambda r: log.info("ingest source=%s status=%s new=%d",
                                                               r.name, r.status, r.new))
        if any(r.new for r in reports):
            self._quiet.clear()
        return reports

    def due(self, now: datetime) -> list[Due]:
        with self.app.engine.connect() as conn:
            subs = sub_store.list_subscribers(conn, receiving_only=True)
            rows = ledger.recent_rows(conn, oldest_date(now))
        due = due_now(subs, rows, now, self.defaults, ledger.FINAL_STATES)
        self._quiet = {k for k in self._quiet if k[1] >= oldest_date(now)}  # a long-running process: keep it small
        return [d for d in due if (d.subscriber.id, d.digest_date) not in self._quiet]

    def wake(self) -> WakeResult:
        started = self.clock()
        result = WakeResult()
        if self.ingest_due(started):
            result.sources = self.ingest(started)
        result.due = self.due(self.clock())
        fetched: list[SourceReport] | None = result.sources or None
        for digest_date, group in by_date(result.due).items():
            if self.stop.is_set():
                log.info("stopping: digests for %s left for the next wake", digest_date)
                break
            result.runs.append(self._run_group(digest_date, group, fetched))
            fetched = None  # the fetches are counted once, with the first run of the wake
        if not self.stop.is_set():
            # Rows of any date whose retry time has come (a 4xx answer, a run cut short): sent now,
            # not only when a run for their own date happens.
            for o in self.app.pipeline().retry_due(self.clock(), stop=self.stop):
                log.info("retry subscriber=%s status=%s", o.email, o.status)
        if fetched:  # fetched, nobody due: the fetch outcomes still count
            self.day.record_fetch(fetched, started)
        self.last_finished = self.clock()
        return result

    def _run_group(self, digest_date: date, group: list[Due], fetched: list[SourceReport] | None) -> RunReport:
        ids = {d.subscriber.id for d in group}
        log.info("run digest_date=%s due=%d retries=%d", digest_date, len(group), sum(d.retry for d in group))

        def worth_recording(report: RunReport) -> bool:  # not a wake that only found nothing new to send
            return bool(report.error) or fetched is not None or any(o.status in _WORTH_RECORDING
                                                                    for o in report.outcomes)

        # Errors of one date are kept in its report (and logged): the other dates still run.
        report = self.day.send(digest_date, self.clock(), fetched=fetched, subscriber_ids=ids, keep_going=True,
                               worth_recording=worth_recording)
        by_email = {d.subscriber.email: d.subscriber.id for d in group}
        for o in report.outcomes:
            log.info("digest subscriber=%s date=%s status=%s picks=%d", o.email, digest_date, o.status, o.n_picks)
            if o.status == "quiet" and o.email in by_email:
                self._quiet.add((by_email[o.email], digest_date))
        return report
