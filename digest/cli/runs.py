"""The daily workflow from the command line: ingest, run, retry, preview and the demo (digest.daily)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.cli.group import Context, fail, main, parse_date, pass_ctx, stop_on_sigterm, today
from digest.errors import InputError

# Heavy modules are imported inside the commands that use them (see group.py).
if TYPE_CHECKING:
    from digest.config import SourceSettings
    from digest.daily import Day
    from digest.pipeline.collect import SourceReport
    from digest.pipeline.report import RunReport
    from digest.wiring import App


def print_sources(reports: Sequence[SourceReport]) -> None:
    for r in reports:
        if r.status == "failed":
            detail = r.detail.removeprefix(f"{r.name}: ")
            click.echo(f"  {r.name}: failed: {detail}")
        elif r.status == "stopped":
            click.echo(f"  {r.name}: not fetched, stopped on request")
        elif r.status == "not_modified":
            click.echo(f"  {r.name}: not modified since the last fetch")
        else:
            extra = f", {r.skipped} skipped" if r.skipped else ""
            note = f" ({r.detail})" if r.detail else ""
            click.echo(f"  {r.name}: {r.new} new, {r.updated} updated, {r.duplicate} duplicate{extra}{note}")



@main.command()
@click.argument("sources", nargs=-1)
@click.option("--kind", type=click.Choice(["auto", "arxiv_rss", "arxiv_api", "hf_daily", "rss"]), default="auto",
              help="Format of the given SOURCES (default: detected from the content).")
@pass_ctx
def ingest(obj: Context, sources: tuple[str, ...], kind: str) -> None:
    """Fetch and store papers from the configured sources, or from the given URLs / files."""
    from pydantic import ValidationError

    from digest.daily import Day
    from digest.pipeline.collect import source_from_argument

    try:
        chosen = [source_from_argument(s, kind) for s in sources] if sources else list(obj.settings.sources)
    except ValidationError as exc:
        raise InputError(f"bad source: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    if not chosen:
        raise InputError("no sources: give URLs or files, or list them under `sources` in the config")
    app = obj.app()
    try:
        started = datetime.now(UTC)
        with stop_on_sigterm() as stop:
            day = Day(app, stop)
            reports = _fetch(day, chosen, started)
        day.record_fetch(reports, started)
    finally:
        app.close()
    click.echo(f"Ingested {len(reports)} source(s):")
    print_sources(reports)
    failed = [r for r in reports if r.failed]
    if failed:
        fail(f"{len(failed)} of {len(reports)} source(s) failed: {', '.join(r.name for r in failed)}")
    if stop.is_set():  # a requested stop is a clean exit: the next ingest fetches what was left
        click.echo("Stopped on request.")


def _print_run(report: RunReport) -> None:
    for o in report.outcomes:
        where = f"  -> {o.location}" if o.location else ""
        detail = f"  ({o.detail})" if o.detail and o.status not in ("sent",) else ""
        click.echo(f"  {o.email}: {o.status.replace('_', ' ')}, {o.n_picks} picks{detail}{where}")
    for o in report.chat:
        detail = f"  ({o.detail})" if o.detail and o.status != "sent" else ""
        click.echo(f"  {o.email} via {o.channel}: {o.status.replace('_', ' ')}{detail}")
    c = report.counts()
    click.echo(
        f"Digest {report.digest_date}: {c['candidates']} new papers considered, "
        + (f"{c['would_send']} would be sent (dry run)" if report.dry_run else f"{c['sent']} sent")
        + (f", {c['recorded']} for feeds only" if c["recorded"] else "")
        + f", {c['already_sent']} already sent, {c['quiet']} quiet, {c['failed']} failed, "
        f"{report.to_retry or 0} to retry"
        + (", stopped early on request" if report.stopped else "")
        + (_chat_summary(report) if report.chat else "")
    )


def _chat_summary(report: RunReport) -> str:
    if report.dry_run:
        would = sum(o.status == "would_send" for o in report.chat)
        return f"; chat: {would} would be sent, {sum(o.status == 'paused' for o in report.chat)} paused"
    c = report.counts()
    return f"; chat: {c['chat_sent']} sent, {c['chat_failed']} failed"


def _daily(app: App, *, digest_date: date, now: datetime, only: str | None, dry_run: bool,
           ingest_first: bool, force_outbox: bool = False,
           stop: threading.Event | None = None) -> tuple[list[SourceReport], RunReport]:
    """The daily workflow (digest.daily) for one date, with a progress display and the fetch listed."""
    from digest.daily import Day
    from digest.process.progress import progress

    day = Day(app, stop or threading.Event())
    reports: list[SourceReport] = []
    if ingest_first and app.settings.sources and not day.stop.is_set():
        reports = _fetch(day, app.settings.sources, now)
        click.echo(f"Ingested {len(reports)} source(s):")
        print_sources(reports)
    if day.stop.is_set():  # stopped before ranking: recorded as such, all left for the next run
        return reports, day.send(digest_date, now, fetched=reports, dry_run=dry_run)
    pipeline = app.pipeline(force_outbox=force_outbox)
    if app.encoder_notice:
        click.echo(f"notice: {app.encoder_notice}")
    with progress("Digests", len(pipeline.active_subscribers(only))) as step:
        report = day.send(digest_date, now, fetched=reports, only=only, dry_run=dry_run, force_outbox=force_outbox,
                          progress=lambda o: step("digest", date=digest_date, subscriber=o.email, status=o.status,
                                                  picks=o.n_picks))
    return reports, report


def _fetch(day: Day, sources: Sequence[SourceSettings], now: datetime) -> list[SourceReport]:
    from digest.process.progress import progress

    with progress("Fetching", len(sources)) as step:
        return day.fetch(now, sources, each=lambda r: step("fetched", source=r.name, status=r.status, new=r.new))


@main.command()
@click.option("--date", "date_", metavar="YYYY-MM-DD", help="Digest date (default: today in schedule.timezone).")
@click.option("--dry-run", is_flag=True, help="Rank and render, but send and record nothing.")
@click.option("--only", metavar="EMAIL", help="Only this subscriber.")
@click.option("--no-ingest", is_flag=True, help="Skip fetching the sources; rank what is stored.")
@pass_ctx
def run(obj: Context, date_: str | None, dry_run: bool, only: str | None, no_ingest: bool) -> None:
    """Ingest the sources, rank new papers for every subscriber, render and deliver the digest."""
    from digest.pipeline.collect import failures
    from digest.subscribe_input import normalise_email

    now = datetime.now(UTC)
    digest_date = parse_date(date_, obj.settings, now)
    only_addr = normalise_email(only) if only else None
    app = obj.app()
    try:
        with stop_on_sigterm() as stop:
            sources, report = _daily(app, digest_date=digest_date, now=now, only=only_addr, dry_run=dry_run,
                                     ingest_first=not no_ingest, stop=stop)
    finally:
        app.close()
    _print_run(report)
    if report.stopped:
        return  # a requested stop is a clean exit: the rest is recorded and waits for the next run
    for failed in failures(sources):  # the digests went out with the other sources: 1, as `digest ingest` does
        click.echo(f"error: source {failed['name']} failed: {failed['error']}", err=True)
    if report.error:
        fail(report.error)
    # A dry run attempts nothing, so what is left to retry is not its failure.
    chat_failed = any(o.status == "failed" for o in report.chat)
    if report.count("failed") or chat_failed or (report.to_retry and not report.dry_run) or failures(sources):
        sys.exit(1)


@main.command()
@pass_ctx
def retry(obj: Context) -> None:
    """Send again the digests of any date whose retry time has come (temp failures, interrupted runs)."""
    from digest.store import deliveries as ledger

    app = obj.app()
    try:
        with stop_on_sigterm() as stop:
            outcomes = app.pipeline().retry_due(datetime.now(UTC), stop=stop)
        with app.engine.connect() as conn:
            left = ledger.to_retry(conn, datetime.now(UTC).replace(tzinfo=None))
    finally:
        app.close()
    for o in outcomes:
        detail = f"  ({o.detail})" if o.detail and o.status != "sent" else ""
        via = f" via {o.channel}" if o.channel != "email" else ""
        click.echo(f"  {o.email}{via}: {o.status.replace('_', ' ')}{detail}")
    sent = sum(o.status == "sent" for o in outcomes)
    click.echo(f"Retried {len(outcomes)} digest(s): {sent} sent, {len(left)} to retry")
    if any(o.status in ("failed", "temp_failed", "unknown") for o in outcomes):
        sys.exit(1)


@main.command()
@click.argument("email")
@click.option("--date", "date_", metavar="YYYY-MM-DD",
              help="Digest date (default: the subscriber's next digest, in their timezone and cadence).")
@click.option("--out", type=click.Path(dir_okay=False), help="Where to write the HTML (default: state/previews/).")
@pass_ctx
def preview(obj: Context, email: str, date_: str | None, out: str | None) -> None:
    """Write EMAIL's next digest as HTML (nothing is sent or recorded) and print the path."""
    from digest.service.due import DueDefaults, next_digest, oldest_date
    from digest.store import deliveries as ledger
    from digest.store import subscribers as sub_store
    from digest.store.deliveries import FINAL_STATES
    from digest.subscribe_input import normalise_email

    addr = normalise_email(email)
    now = datetime.now(UTC)
    app = obj.app()
    try:
        with app.engine.connect() as conn:
            sub = sub_store.require_subscriber(conn, addr)
            rows = ledger.recent_rows(conn, oldest_date(now), sub.id).get(sub.id, {})
        sched = app.settings.schedule
        defaults = DueDefaults(sched.timezone, sched.delivery_hour, timedelta(hours=sched.catch_up_hours))
        digest_date = (parse_date(date_, obj.settings, now) if date_ is not None
                       else next_digest(sub, rows, now, defaults, FINAL_STATES))
        pipeline = app.pipeline()
        if app.encoder_notice:
            click.echo(f"notice: {app.encoder_notice}", err=True)
        rendered, n = pipeline.preview(addr, digest_date, now)
        path = Path(out) if out else app.previews_path / f"{addr.replace('@', '_at_')}-{digest_date}.html"
    finally:
        app.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rendered.html, encoding="utf-8")
    hour = sched.delivery_hour if sub.delivery_hour is None else sub.delivery_hour
    quiet = " (a quiet day: no email would be sent)" if n == 0 and app.settings.digest.quiet_day == "skip" else ""
    click.echo(f"{addr}: {n} picks for {digest_date}{quiet} ({sub.cadence}, due {hour:02d}:00 "
               f"{sub.timezone or sched.timezone}; as ranked now)")
    click.echo(str(path))


DEMO_SUBSCRIBERS = {
    "ada@example.org": "diffusion models, image generation, video generation",
    "grace@example.org": "large language models, reasoning, reinforcement learning",
    "alan@example.org": "graph neural networks, molecules, drug discovery",
}


@main.command()
@pass_ctx
def demo(obj: Context) -> None:
    """Run the whole daily digest offline on the bundled sample listing, into state/outbox."""
    from digest.config import masked_url
    from digest.store import subscribers as sub_store
    from digest.subscribe_input import parse_keywords

    settings = obj.settings
    now = datetime.now(UTC)
    digest_date = today(settings, now)
    click.echo(f"digest demo: database {masked_url(settings.database_url)}, outbox {settings.outbox_path}")
    app = obj.app()
    try:
        with app.engine.begin() as conn:
            for addr, kws in DEMO_SUBSCRIBERS.items():
                if sub_store.get_subscriber(conn, addr) is None:
                    sub_store.upsert_subscriber(conn, email=addr, keywords=parse_keywords(kws),
                                                now=now.replace(tzinfo=None))
        click.echo(f"Demo subscribers: {', '.join(DEMO_SUBSCRIBERS)}")
        # Demo mail goes to the outbox whatever the config says: the addresses are not real.
        _sources, report = _daily(app, digest_date=digest_date, now=now, only=None, dry_run=False,
                                  ingest_first=True, force_outbox=True)
        with app.engine.connect() as conn:
            from digest.store import deliveries

            rows = [d for d in deliveries.deliveries_for_date(conn, digest_date) if d.location]
    finally:
        app.close()
    _print_run(report)
    if rows:
        click.echo("\nThe digests are in the outbox (.eml to open in a mail client, .html in a browser):")
        for d in rows:
            click.echo(f"  {Path(d.location or '').with_suffix('.html')}")
        click.echo(f"Their links (open, star, less like this, unsubscribe) go through {settings.web.base_url}: "
                   "run `digest serve` to follow them; tomorrow's picks learn from what you star.")
    if report.count("already_sent"):
        click.echo("Today's demo digests were already sent: a second run sends nothing twice. "
                   f"Delete {settings.state_path} to start the demo afresh.")


