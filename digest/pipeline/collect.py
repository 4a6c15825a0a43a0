"""Fetch, parse and store each source in turn; a failing source is reported and skipped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import Engine

from digest.config import FetchSettings, SourceSettings, masked_url
from digest.domain import naive_utc
from digest.errors import FeedError
from digest.identity import ARXIV_KINDS
from digest.ingest.fetch import FetchResult, StopRequested, fetch
from digest.ingest.sources import parse_feed
from digest.store import papers as paper_store
from digest.store import runs as run_store
from digest.store import sources as source_store
from digest.training import terms as term_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceReport:
    name: str
    status: str  # ok, not_modified, empty, failed, stopped (a stop request came first: nothing recorded)
    new: int = 0
    updated: int = 0
    duplicate: int = 0
    skipped: int = 0
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def source_from_argument(arg: str, kind: str = "auto") -> SourceSettings:
    """A URL or path given on the command line, as an ad-hoc source named after itself (password masked)."""
    shown = masked_url(arg) if "://" in arg else arg
    name = shown if len(shown) <= 100 else "..." + shown[-97:]
    if "://" in arg:
        return SourceSettings.model_validate({"name": name, "url": arg, "kind": kind})
    return SourceSettings.model_validate({"name": name, "path": arg, "kind": kind})


def ingest_source(engine: Engine, source: SourceSettings, settings: FetchSettings, now: datetime,
                  stop: threading.Event | None = None) -> SourceReport:
    """Fetch, parse and store one source. stop: a stop request abandons the fetch within a moment
    (the source is left as it was, for the next run)."""
    with engine.connect() as conn:
        state = source_store.get_state(conn, source.name, source.location)
    try:
        fetched = fetch(source.location, settings=settings, etag=state.etag, last_modified=state.last_modified,
                        stop=stop)
        if fetched.not_modified or fetched.content is None:
            with engine.begin() as conn:
                source_store.record_fetch(
                    conn, name=source.name, location=source.location, kind=source.kind, now=now,
                    status="not_modified", keep_validators=True,
                )
            return SourceReport(source.name, "not_modified")
        parsed = parse_feed(fetched.content, kind=source.kind, source_name=source.name)
    except StopRequested:
        log.info("source %s: stopped on request before it was fetched", source.name)
        return SourceReport(source.name, "stopped", detail="stopped on request")
    except FeedError as exc:
        # The report carries the failure to the user; the log keeps it for the service.
        log.info("source %s failed: %s", source.name, exc)
        with engine.begin() as conn:
            source_store.record_fetch(
                conn, name=source.name, location=source.location, kind=source.kind, now=now,
                status="failed", error=str(exc), keep_validators=True,
            )
        return SourceReport(source.name, "failed", detail=str(exc))

    if parsed.warning:
        log.info("source %s parsed with a warning: %s", source.name, parsed.warning)
    # Papers and the source's validators in one transaction: a crash re-fetches, never half-stores.
    with engine.begin() as conn:
        counts, fresh = paper_store.upsert_papers(conn, parsed.papers, now,
                                                  arxiv_authority=speaks_for_arxiv(source, parsed.kind, fetched))
        # Term counts stored, and document frequencies grown with every new paper.
        term_store.add_papers(conn, fresh, now)
        source_store.record_fetch(
            conn, name=source.name, location=source.location, kind=parsed.kind, now=now,
            status="empty" if parsed.empty else "ok",
            etag=fetched.etag, last_modified=fetched.last_modified,
        )
    status = "empty" if parsed.empty else "ok"
    detail = "no announcements in this feed today" if parsed.empty else (parsed.warning or "")
    return SourceReport(
        source.name, status, counts.new, counts.updated, counts.duplicate, parsed.skipped, detail
    )


def speaks_for_arxiv(source: SourceSettings, kind: str, fetched: FetchResult) -> bool:
    """Whether this feed may change the stored text of arXiv papers: an arXiv kind that the operator
    configured, or read from a local file, or detected in a feed that came from arXiv's own hosts. A
    kind detected elsewhere is only the feed's claim (a channel link to arxiv.org is easy to write)."""
    if kind not in ARXIV_KINDS:
        return False
    if source.kind != "auto" or fetched.status is None:
        return True
    host = (urlsplit(fetched.location).hostname or "").lower()
    return host == "arxiv.org" or host.endswith(".arxiv.org")


def outcome_counts(reports: Sequence[SourceReport]) -> dict[str, int]:
    """What a run records about its fetches (the metrics add these up across runs)."""
    counts = {f"sources_{s}": sum(r.status == s for r in reports) for s in ("ok", "not_modified", "empty", "failed")}
    counts["papers_new"] = sum(r.new for r in reports)
    return counts


def failures(reports: Sequence[SourceReport]) -> list[dict[str, str]]:
    """The failed sources of a fetch, as a run records them for `digest status`."""
    return [{"name": r.name, "error": r.detail.removeprefix(f"{r.name}: ")} for r in reports if r.failed]


def record_ingest(engine: Engine, reports: Sequence[SourceReport], started: datetime, finished: datetime) -> None:
    """A fetch with no digest run after it (`digest ingest`, a dry run) is recorded as an "ingested" run:
    its new papers and failed sources count in /metrics and show in `digest status`."""
    if not reports:
        return
    with engine.begin() as conn:
        run_store.record(conn, digest_date=started.astimezone(UTC).date(), started=naive_utc(started),
                         finished=naive_utc(finished), status="ingested", counts=outcome_counts(reports),
                         failed_sources=failures(reports))
