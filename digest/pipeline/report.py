"""What a run did (RunReport), and its record in the runs table for `digest status` and /metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine

from digest.domain import SubscriberOutcome, naive_utc
from digest.store import runs as run_store


@dataclass
class RunReport:
    digest_date: date
    dry_run: bool = False
    candidates: int = 0
    outcomes: list[SubscriberOutcome] = field(default_factory=list)
    error: str | None = None  # the run could not finish its work (delivery paused: relay down)
    stopped: bool = False  # a stop was requested; what was not sent waits for the next run
    to_retry: int | None = None  # the date's rows still to retry after the run (ledger.to_retry)
    chat: list[SubscriberOutcome] = field(default_factory=list)  # the chat channels' messages (digest.hooks)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def counts(self) -> dict[str, int]:
        keys = ("sent", "failed", "temp_failed", "unknown", "deferred", "quiet", "already_sent", "in_progress",
                "would_send", "recorded")
        out = {k: self.count(k) for k in keys}
        out["candidates"] = self.candidates
        out["subscribers"] = len(self.outcomes)
        if self.to_retry is not None:
            out["to_retry"] = self.to_retry
        for status in ("sent", "failed") if self.chat else ():
            out[f"chat_{status}"] = sum(1 for o in self.chat if o.status == status)
        return out


def record_run(engine: Engine, report: RunReport, started: datetime, finished: datetime,
               sources: dict[str, int] | None = None, failed_sources: list[dict[str, str]] | None = None) -> None:
    counts: dict[str, int] = dict(report.counts())
    counts.update(sources or {})
    with engine.begin() as conn:
        run_store.record(conn, digest_date=report.digest_date, started=naive_utc(started),
                         finished=naive_utc(finished), status="failed" if report.error else "done",
                         counts=counts, error=report.error, failed_sources=failed_sources)
