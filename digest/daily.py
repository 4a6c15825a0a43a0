"""The daily workflow, once: fetch the sources, send one digest date, record the run.

`digest run` (and the demo) does it for one date; the scheduler's wake (service/wake.py) for each
local date that has subscribers due, with a quiet cache and the due retries around it. What each
caller shows of it (a progress bar, log lines) it passes in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy.exc import SQLAlchemyError

from digest.config import SourceSettings
from digest.dispatch.run import dispatch_date
from digest.domain import SubscriberOutcome, naive_utc
from digest.errors import DigestError
from digest.pipeline.collect import SourceReport, failures, ingest_source, outcome_counts, record_ingest
from digest.pipeline.report import RunReport, record_run
from digest.wiring import App

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Day:
    """The workflow for one App. stop: set to end it early (between sources, between messages);
    clock: when each step finishes (the service's tests stand anywhere in time)."""

    app: App
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], datetime] = utc_now

    def fetch(self, now: datetime, sources: Sequence[SourceSettings] | None = None,
              each: Callable[[SourceReport], None] | None = None) -> list[SourceReport]:
        """Each source (default: the configured ones) fetched and its papers stored. Once stop is set
        the rest are reported "stopped" without a fetch. each: told of every report as it comes."""
        reports = []
        for source in self.app.settings.sources if sources is None else sources:
            report = ingest_source(self.app.engine, source, self.app.settings.fetch, naive_utc(now), self.stop)
            if each is not None:
                each(report)
            reports.append(report)
        return reports

    def send(self, digest_date: date, now: datetime, *, fetched: Sequence[SourceReport] | None = None,
             subscriber_ids: Collection[int] | None = None, only: str | None = None, dry_run: bool = False,
             force_outbox: bool = False, progress: Callable[[SubscriberOutcome], None] | None = None,
             keep_going: bool = False, worth_recording: Callable[[RunReport], bool] | None = None) -> RunReport:
        """One digest date sent (dispatch.run: here or through Celery) and recorded with the fetch
        that came before it (fetched; None: no fetch in this run). A dry run records only that fetch.

        keep_going: an error of the run (the relay down, a bug) and a failure to record it become the
        report's error and a log line, so that the caller's other dates still run (the service);
        otherwise they are raised (the CLI turns them into a message and an exit code).
        worth_recording: which reports are recorded (default: all)."""
        stopped_before = self.stop.is_set()
        if stopped_before:  # stopped before ranking: nothing planned, all left for the next run
            report = RunReport(digest_date=digest_date, dry_run=dry_run, stopped=True)
        else:
            try:
                report = dispatch_date(self.app, digest_date, now, subscriber_ids=subscriber_ids, only=only,
                                       dry_run=dry_run, stop=self.stop, force_outbox=force_outbox, progress=progress)
            except DigestError as exc:  # the relay is down, say: the ledger keeps the rows for the next run
                if not keep_going:
                    raise
                log.error("run for %s failed: %s", digest_date, exc)
                report = RunReport(digest_date=digest_date, error=str(exc))
            except Exception as exc:  # a bug or a database hiccup must not keep the other dates from running
                if not keep_going:
                    raise
                log.exception("run for %s failed", digest_date)
                report = RunReport(digest_date=digest_date, error=f"{type(exc).__name__}: {exc}")
        if dry_run:  # no digest is recorded, but the papers it fetched are stored: that fetch is
            if not stopped_before:
                record_ingest(self.app.engine, fetched or [], now, self.clock())
            return report
        if worth_recording is not None and not worth_recording(report):
            return report
        counts = outcome_counts(fetched) if fetched is not None else {}
        try:
            record_run(self.app.engine, report, now, self.clock(), counts,
                       failures(fetched) if fetched is not None and not stopped_before else None)
        except SQLAlchemyError as exc:  # the sends are in the ledger already; only the summary is lost
            if not keep_going:
                raise
            log.error("could not record the run for %s: %s", digest_date, str(exc).splitlines()[0])
        return report

    def record_fetch(self, fetched: Sequence[SourceReport], started: datetime) -> None:
        """A fetch with no digest run after it, recorded as an "ingested" run."""
        record_ingest(self.app.engine, fetched, started, self.clock())
