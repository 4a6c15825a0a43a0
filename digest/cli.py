"""The `digest` command: thin commands over the library; typed errors become one-line messages."""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import click

from digest.errors import DigestError, InputError

# Only what every command needs is imported here; the rest where a command uses it, so that `--help`,
# `subscribe`, `subscribers` and `status` start without numpy, scikit-learn, Starlette and the mail
# stack (tests/test_cli.py checks it; README: start-up time). Annotations only: under TYPE_CHECKING.
if TYPE_CHECKING:
    from sqlalchemy import Connection

    from digest.config import Settings, SourceSettings
    from digest.domain import Subscriber
    from digest.ingest.collect import SourceReport
    from digest.pipeline.digests import RunReport
    from digest.store.lease import Lease
    from digest.wiring import App

F = TypeVar("F", bound=Callable[..., Any])
FAILURES_SHOWN = 20  # undelivered digests listed by `digest status`
log = logging.getLogger("digest")


class _Context:
    def __init__(self, config: str | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from digest.config import load_settings

            self._settings = load_settings(self.config)
        return self._settings

    def app(self) -> App:
        from digest.wiring import App

        return App.open(self.settings)


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# Commands whose modules load a heavy stack (uvicorn and Starlette, numpy, Celery's settings), imported
# when they run; `digest --help` lists them with this short help (a test keeps it equal to theirs).
LAZY_COMMANDS = {
    "eval": ("digest.evaluate.cli", "eval_command",
             "Offline evaluation: replay real users' likes day by day and compare recommenders."),
    "serve": ("digest.web.serve", "serve_command",
              "Serve the links in the email, the subscribe, manage and web-view pages and, unless "
              "--no-scheduler, send each digest when it is due."),
    "worker": ("digest.dispatch.worker_cli", "worker_command",
               "Run a Celery worker for dispatch.mode celery: it sends the shards of subscribers queued by "
               "`digest run` or `digest serve`, on this machine, with the same config and database."),
}


class _Group(click.Group):
    """Turns DigestError (and a few others) into `error: ...` on one line and an exit code; imports the
    heavy commands (LAZY_COMMANDS) only when they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module, attr, _ = LAZY_COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None:
                limit = formatter.width - 6 - len(name)
                rows.append((name, click.Command(name, help=LAZY_COMMANDS[name][2]).get_short_help_str(limit)))
            elif not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except BrokenPipeError:
            # The reader went away (digest status | head -2): click's main stops quietly, as Unix tools do.
            raise
        except OSError as exc:
            _fail(f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}")
        except Exception as exc:
            reason = _database_failure(exc)
            if reason is None:
                raise
            # A database file that cannot be written or read (read-only, immutable, damaged) is the
            # operator's to fix: one line naming it, not a trace of the driver's stack.
            damaged = any(w in reason for w in ("readonly", "malformed", "not a database", "unable to open"))
            _fail(f"database {_database_name(ctx)}: {reason}", 2 if damaged else 1)


def _database_failure(exc: BaseException) -> str | None:
    """The driver's own first line, when exc is a database error (checked by name: the CLI does not
    import SQLAlchemy before a command needs it)."""
    if not type(exc).__module__.startswith("sqlalchemy") or not hasattr(exc, "orig"):
        return None
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def _database_name(ctx: click.Context) -> str:
    try:
        from digest.config import masked_url

        return masked_url(ctx.find_object(_Context).settings.database_url)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - the name is a courtesy; the reason is the message
        return "(configured database)"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", type=click.Path(dir_okay=False), envvar="DIGEST_CONFIG",
              help="YAML config file (default: $DIGEST_CONFIG, else the embedded defaults).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="daily-paper-digest")
@click.pass_context
def main(ctx: click.Context, config: str | None, verbose: int) -> None:
    """A personalised daily paper digest: new papers ranked for each subscriber, sent by email."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = _Context(config)


pass_ctx = click.make_pass_decorator(_Context)


def _today(settings: Settings, now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.schedule.timezone)).date()


def _parse_date(value: str | None, settings: Settings, now: datetime) -> date:
    if value is None:
        return _today(settings, now)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"--date: not a date in YYYY-MM-DD form: {value!r}") from None


def _print_sources(reports: Sequence[SourceReport]) -> None:
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


# ---- ingest ---------------------------------------------------------------------------------
@main.command()
@click.argument("sources", nargs=-1)
@click.option("--kind", type=click.Choice(["auto", "arxiv_rss", "arxiv_api", "hf_daily", "rss"]), default="auto",
              help="Format of the given SOURCES (default: detected from the content).")
@pass_ctx
def ingest(obj: _Context, sources: tuple[str, ...], kind: str) -> None:
    """Fetch and store papers from the configured sources, or from the given URLs / files."""
    from pydantic import ValidationError

    from digest.ingest.collect import record_ingest, source_from_argument

    try:
        chosen = [source_from_argument(s, kind) for s in sources] if sources else list(obj.settings.sources)
    except ValidationError as exc:
        raise InputError(f"bad source: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    if not chosen:
        raise InputError("no sources: give URLs or files, or list them under `sources` in the config")
    app = obj.app()
    try:
        started = datetime.now(UTC)
        with _stop_on_sigterm() as stop:
            reports = _fetch(app, chosen, started, stop)
        record_ingest(app.engine, reports, started, datetime.now(UTC))
    finally:
        app.close()
    click.echo(f"Ingested {len(reports)} source(s):")
    _print_sources(reports)
    failed = [r for r in reports if r.failed]
    if failed:
        _fail(f"{len(failed)} of {len(reports)} source(s) failed: {', '.join(r.name for r in failed)}")
    if stop.is_set():  # a requested stop is a clean exit: the next ingest fetches what was left
        click.echo("Stopped on request.")


# ---- subscribers ----------------------------------------------------------------------------
@main.command()
@click.argument("email")
@click.option("--keywords", "-k", default=None,
              help='Comma-separated interests: "sparse attention, diffusion models" (needed to subscribe; '
                   'an update keeps them when left out).')
@click.option("--exclude", default=None, help="Comma-separated keywords: papers matching any are never sent.")
@click.option("--top-k", type=click.IntRange(1, 100), default=None, help="Picks per digest (default: digest.top_k).")
@click.option("--timezone", "tz", default=None, help="IANA timezone, e.g. Europe/Berlin (default: schedule.timezone).")
@click.option("--hour", type=click.IntRange(0, 23), default=None,
              help="Local hour the digest is due (default: schedule.delivery_hour).")
@click.option("--cadence", type=click.Choice(["daily", "weekly"]), default=None, help="How often (default: daily).")
@click.option("--trending/--no-trending", default=None,
              help='Show the "trending today" block: upvoted papers that touch these interests (default: on).')
@pass_ctx
def subscribe(obj: _Context, email: str, keywords: str | None, exclude: str | None, top_k: int | None,
              tz: str | None, hour: int | None, cadence: str | None, trending: bool | None) -> None:
    """Subscribe EMAIL (or update an existing subscription) with interest keywords.

    An update changes only the options given; the others keep what the subscriber had."""
    from digest.store import subscribers as sub_store
    from digest.subscribe_input import normalise_email, parse_keywords, parse_timezone

    addr = normalise_email(email)
    kws = parse_keywords(keywords) if keywords is not None else None
    excl = parse_keywords(exclude, option="--exclude", required=False) if exclude is not None else None
    zone = parse_timezone(tz) if tz is not None else None
    app = obj.app()
    try:
        with app.engine.begin() as conn:
            if kws is None and sub_store.get_subscriber(conn, addr) is None:
                kws = parse_keywords(None)  # a new subscriber: the error says how to give them
            sub, created = sub_store.upsert_subscriber(
                conn, email=addr, keywords=kws, exclude=excl, top_k=top_k, timezone=zone, delivery_hour=hour,
                cadence=cadence, trending=trending, now=datetime.now(UTC).replace(tzinfo=None),
            )
    finally:
        app.close()
    verb = "Subscribed" if created else "Updated"
    sched = app.settings.schedule
    hour_shown = sched.delivery_hour if sub.delivery_hour is None else sub.delivery_hour
    click.echo(f"{verb} {sub.email}: {', '.join(sub.keywords)} ({sub.top_k or app.settings.digest.top_k} picks, "
               f"{sub.cadence} at {hour_shown:02d}:00 {sub.timezone or sched.timezone})")


@main.command()
@click.argument("email")
@pass_ctx
def unsubscribe(obj: _Context, email: str) -> None:
    """Stop sending to EMAIL. Its history is kept; subscribing again resumes it."""
    from digest.store import subscribers as sub_store

    addr, changed = _change_subscriber(obj, email, lambda conn, sub, now: sub_store.deactivate(conn, sub.id, now))
    click.echo(f"Unsubscribed {addr}" if changed else f"{addr} was already unsubscribed")


def _change_subscriber(obj: _Context, email: str,
                       change: Callable[[Connection, Subscriber, datetime], bool]) -> tuple[str, bool]:
    """Apply change to an existing subscriber in one transaction: (the address, whether it changed)."""
    from digest.store import subscribers as sub_store
    from digest.subscribe_input import normalise_email

    addr = normalise_email(email)
    app = obj.app()
    try:
        with app.engine.begin() as conn:
            sub = sub_store.get_subscriber(conn, addr)
            if sub is None:
                raise InputError(f"no subscriber {addr}")
            changed = change(conn, sub, datetime.now(UTC).replace(tzinfo=None))
    finally:
        app.close()
    return addr, changed


@main.command()
@click.option("--all", "show_all", is_flag=True, help="Include unsubscribed addresses.")
@pass_ctx
def subscribers(obj: _Context, show_all: bool) -> None:
    """List the subscribers and their keywords."""
    from digest.store import subscribers as sub_store

    app = obj.app()
    try:
        with app.engine.connect() as conn:
            subs = sub_store.list_subscribers(conn, active_only=not show_all)
    finally:
        app.close()
    if not subs:
        click.echo("No subscribers yet. Add one with: digest subscribe EMAIL --keywords \"...\"")
        return
    sched = app.settings.schedule
    for s in subs:
        state = "" if s.active else "  [unsubscribed]"
        state += "  [paused]" if s.paused and s.active else ""
        state += f"  [suspended: {s.hard_bounces} hard bounces; digest resume to retry]" if s.suspended else ""
        excl = f"  (exclude: {', '.join(s.exclude)})" if s.exclude else ""
        when = f"{s.cadence} {s.delivery_hour if s.delivery_hour is not None else sched.delivery_hour:02d}:00 " \
               f"{s.timezone or sched.timezone}"
        click.echo(f"{s.email}  top_k={s.top_k or app.settings.digest.top_k}  {when}  {', '.join(s.keywords)}"
                   f"{excl}{state}")


def _set_paused(obj: _Context, email: str, paused: bool) -> None:
    from digest.store import subscribers as sub_store

    def change(conn: Connection, sub: Subscriber, now: datetime) -> bool:
        changed = sub_store.set_paused(conn, sub.id, paused, now)
        # Resuming is also how an operator vouches for an address suspended after hard bounces.
        return sub_store.unsuspend(conn, sub.id, now) or changed if not paused else changed

    addr, changed = _change_subscriber(obj, email, change)
    verb = "Paused" if paused else "Resumed"
    click.echo(f"{verb} {addr}" if changed else f"{addr} was already {verb.lower()}")


@main.command()
@click.argument("email")
@pass_ctx
def pause(obj: _Context, email: str) -> None:
    """Send EMAIL nothing until resumed; keywords and history stay."""
    _set_paused(obj, email, True)


@main.command()
@click.argument("email")
@pass_ctx
def resume(obj: _Context, email: str) -> None:
    """Send EMAIL digests again after a pause, or after a suspension for hard bounces."""
    _set_paused(obj, email, False)


@main.command()
@click.argument("email")
@click.argument("ids", nargs=-1)
@click.option("--file", "file_", type=click.Path(dir_okay=False),
              help="A file of arXiv ids (one per line) or a BibTeX library.")
@click.option("--fetch-missing", is_flag=True,
              help="Look arXiv ids that are not in the store up on arXiv (fetch.arxiv_api_url) and star them.")
@pass_ctx
def star(obj: _Context, email: str, ids: tuple[str, ...], file_: str | None, fetch_missing: bool) -> None:
    """Import papers EMAIL already likes (arXiv IDS, or --file) as stars: a warm start.

    What is known is starred and what is not is listed; the exit code is 1 when something was not starred."""
    from digest.library.references import read_library, reference_from_id
    from digest.library.stars import Fetcher, import_stars
    from digest.subscribe_input import normalise_email

    addr = normalise_email(email)
    if not ids and not file_:
        raise InputError("give arXiv ids or --file FILE")
    refs = [reference_from_id(i, f"argument {i}") for i in ids]
    if file_:
        refs += read_library(file_)
    fetcher: Fetcher | None = None
    if fetch_missing:
        fetcher = _arxiv_fetcher(obj.settings)
    app = obj.app()
    try:
        result = import_stars(app.engine, addr, refs, now=datetime.now(UTC).replace(tzinfo=None),
                              fetch_missing=fetcher)
    finally:
        app.close()
    click.echo(f"Starred {result.starred} paper(s) for {addr}"
               + (f" ({result.already} already starred)" if result.already else "")
               + (f"; {result.fetched} looked up on arXiv" if result.fetched else "")
               + (f"; {result.stored} stored from the library's own text" if result.stored else ""))
    if result.unmatched:
        shown = ", ".join(result.unmatched[:10]) + (f" and {len(result.unmatched) - 10} more"
                                                     if len(result.unmatched) > 10 else "")
        _fail(f"not starred ({len(result.unmatched)}): {shown}")


def _arxiv_fetcher(settings: Settings) -> Callable[[Sequence[str]], tuple[list[Any], dict[str, str]]]:
    from digest.ingest.arxiv_lookup import lookup_ids

    def fetch_ids(ids: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
        click.echo(f"Looking {len(ids)} id(s) up on arXiv ({settings.fetch.arxiv_api_url})...", err=True)
        found = lookup_ids(ids, settings.fetch, api_url=settings.fetch.arxiv_api_url)
        return found.papers, found.missing

    return fetch_ids


# ---- the daily run --------------------------------------------------------------------------
def _print_run(report: RunReport) -> None:
    for o in report.outcomes:
        where = f"  -> {o.location}" if o.location else ""
        detail = f"  ({o.detail})" if o.detail and o.status not in ("sent",) else ""
        click.echo(f"  {o.email}: {o.status.replace('_', ' ')}, {o.n_picks} picks{detail}{where}")
    c = report.counts()
    click.echo(
        f"Digest {report.digest_date}: {c['candidates']} new papers considered, "
        + (f"{c['would_send']} would be sent (dry run)" if report.dry_run else f"{c['sent']} sent")
        + f", {c['already_sent']} already sent, {c['quiet']} quiet, {c['failed']} failed, "
        f"{report.to_retry or 0} to retry"
        + (", stopped early on request" if report.stopped else "")
    )


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[threading.Event]:
    """An event SIGTERM sets: a fetch in progress is abandoned within a moment, a run finishes the
    message in hand, records it and returns."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.warning("received signal %d: stopping (a message in hand is finished first)", signum)
        stop.set()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an embedding caller): no handler, never set
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def _daily(app: App, *, digest_date: date, now: datetime, only: str | None, dry_run: bool,
           ingest_first: bool, force_outbox: bool = False,
           stop: threading.Event | None = None) -> tuple[list[SourceReport], RunReport]:
    from digest.dispatch.run import dispatch_date
    from digest.ingest.collect import failures, outcome_counts, record_ingest
    from digest.pipeline.digests import RunReport, record_run
    from digest.process.progress import progress

    reports: list[SourceReport] = []
    if ingest_first and app.settings.sources and not (stop and stop.is_set()):
        reports = _fetch(app, app.settings.sources, now, stop)
        click.echo(f"Ingested {len(reports)} source(s):")
        _print_sources(reports)
    if stop is not None and stop.is_set():  # stopped before ranking: nothing planned, all left for the next run
        report = RunReport(digest_date=digest_date, dry_run=dry_run, stopped=True)
        if not dry_run:
            record_run(app.engine, report, now, datetime.now(UTC), outcome_counts(reports))
        return reports, report
    pipeline = app.pipeline(force_outbox=force_outbox)
    if app.encoder_notice:
        click.echo(f"notice: {app.encoder_notice}")
    with progress("Digests", len(pipeline.active_subscribers(only))) as step:
        report = dispatch_date(app, digest_date, now, only=only, dry_run=dry_run, force_outbox=force_outbox, stop=stop,
                         progress=lambda o: step("digest", date=digest_date, subscriber=o.email, status=o.status,
                                                 picks=o.n_picks))
    if not dry_run:
        record_run(app.engine, report, now, datetime.now(UTC), outcome_counts(reports), failures(reports))
    else:  # no digest is recorded, but the papers it fetched are stored: that fetch is
        record_ingest(app.engine, reports, now, datetime.now(UTC))
    return reports, report


def _fetch(app: App, sources: Sequence[SourceSettings], now: datetime,
           stop: threading.Event | None = None) -> list[SourceReport]:
    from digest.domain import naive_utc
    from digest.ingest.collect import ingest_source
    from digest.process.progress import progress

    reports = []
    with progress("Fetching", len(sources)) as step:
        for source in sources:
            r = ingest_source(app.engine, source, app.settings.fetch, naive_utc(now), stop)
            step("fetched", source=r.name, status=r.status, new=r.new)
            reports.append(r)
    return reports


@main.command()
@click.option("--date", "date_", metavar="YYYY-MM-DD", help="Digest date (default: today in schedule.timezone).")
@click.option("--dry-run", is_flag=True, help="Rank and render, but send and record nothing.")
@click.option("--only", metavar="EMAIL", help="Only this subscriber.")
@click.option("--no-ingest", is_flag=True, help="Skip fetching the sources; rank what is stored.")
@pass_ctx
def run(obj: _Context, date_: str | None, dry_run: bool, only: str | None, no_ingest: bool) -> None:
    """Ingest the sources, rank new papers for every subscriber, render and deliver the digest."""
    from digest.ingest.collect import failures
    from digest.subscribe_input import normalise_email

    now = datetime.now(UTC)
    digest_date = _parse_date(date_, obj.settings, now)
    only_addr = normalise_email(only) if only else None
    app = obj.app()
    try:
        with _stop_on_sigterm() as stop:
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
        _fail(report.error)
    # A dry run attempts nothing, so what is left to retry is not its failure.
    if report.count("failed") or (report.to_retry and not report.dry_run) or failures(sources):
        sys.exit(1)


@main.command()
@pass_ctx
def retry(obj: _Context) -> None:
    """Send again the digests of any date whose retry time has come (temp failures, interrupted runs)."""
    from digest.store import deliveries as ledger

    app = obj.app()
    try:
        with _stop_on_sigterm() as stop:
            outcomes = app.pipeline().retry_due(datetime.now(UTC), stop=stop)
        with app.engine.connect() as conn:
            left = ledger.to_retry(conn, datetime.now(UTC).replace(tzinfo=None))
    finally:
        app.close()
    for o in outcomes:
        detail = f"  ({o.detail})" if o.detail and o.status != "sent" else ""
        click.echo(f"  {o.email}: {o.status.replace('_', ' ')}{detail}")
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
def preview(obj: _Context, email: str, date_: str | None, out: str | None) -> None:
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
            sub = sub_store.get_subscriber(conn, addr)
            if sub is None:
                raise InputError(f"no subscriber {addr}")
            rows = ledger.recent_rows(conn, oldest_date(now), sub.id).get(sub.id, {})
        sched = app.settings.schedule
        defaults = DueDefaults(sched.timezone, sched.delivery_hour, timedelta(hours=sched.catch_up_hours))
        digest_date = (_parse_date(date_, obj.settings, now) if date_ is not None
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


@main.command()
@click.option("--limit", type=click.IntRange(1, 1000), default=10, help="How many runs to show.")
@pass_ctx
def status(obj: _Context, limit: int) -> None:
    """Show the recent daily runs and what they did."""
    from digest.service.leadership import SCHEDULER
    from digest.store import deliveries as ledger
    from digest.store import lease, runs

    now = datetime.now(UTC).replace(tzinfo=None)
    app = obj.app()
    try:
        with app.engine.connect() as conn:
            rows = runs.recent(conn, limit)
            held = lease.get(conn, SCHEDULER)
            # Asked of the ledger now, as `digest run` and `digest retry` ask it.
            left = Counter(r.digest_date for r in ledger.to_retry(conn, now))
            failed = ledger.failures(conn, {r["digest_date"] for r in rows}, limit=FAILURES_SHOWN + 1)
    finally:
        app.close()
    click.echo(_scheduler_line(held, now))
    if not rows:
        click.echo("No runs yet.")
    for r in rows:
        c = r["counts"] or {}
        if r["status"] == "ingested":  # `digest ingest`, a dry run, or a scheduler wake that found nobody due
            click.echo(f"{r['started_at']:%Y-%m-%d %H:%M} UTC  fetched: {c.get('sources_ok', 0)} ok, "
                       f"{c.get('sources_not_modified', 0)} not modified, {c.get('sources_failed', 0)} failed, "
                       f"{c.get('papers_new', 0)} new papers")
        else:
            click.echo(
                f"{r['started_at']:%Y-%m-%d %H:%M} UTC  digest {r['digest_date']}  {r['status']}: "
                f"{c.get('sent', 0)} sent, {c.get('failed', 0)} failed, {left[r['digest_date']]} to retry, "
                f"{c.get('quiet', 0)} quiet, {c.get('candidates', 0)} papers"
                + (f", {c['sources_failed']} of {_fetched(c)} source(s) failed" if c.get("sources_failed") else "")
            )
        for failed_source in r.get("failed_sources") or []:
            click.echo(f"    source {failed_source.get('name')} failed: {failed_source.get('error')}")
    click.echo(f"All digest dates: {sum(left.values())} to retry")
    if failed:
        click.echo("Not delivered:")
    for f in failed[:FAILURES_SHOWN]:
        click.echo(f"  digest {f.digest_date}  {f.email}: {f.reason}")
    if len(failed) > FAILURES_SHOWN:
        click.echo(f"  ... and more (the first {FAILURES_SHOWN} are shown)")


def _fetched(counts: dict[str, int]) -> int:
    return sum(counts.get(f"sources_{s}", 0) for s in ("ok", "not_modified", "empty", "failed"))


def _scheduler_line(held: Lease | None, now: datetime) -> str:
    if held is None:
        return "Scheduler: never started (run `digest serve`)"
    age = int((now - held.heartbeat_at).total_seconds())
    if held.expired(now):
        return f"Scheduler: not running (last heartbeat {age} s ago, from {held.owner})"
    nxt = f", next wake {held.next_wake_at:%Y-%m-%d %H:%M} UTC" if held.next_wake_at else ""
    return f"Scheduler: running in {held.owner} (heartbeat {age} s ago{nxt})"


# ---- the demo -------------------------------------------------------------------------------
DEMO_SUBSCRIBERS = {
    "ada@example.org": "diffusion models, image generation, video generation",
    "grace@example.org": "large language models, reasoning, reinforcement learning",
    "alan@example.org": "graph neural networks, molecules, drug discovery",
}


@main.command()
@pass_ctx
def demo(obj: _Context) -> None:
    """Run the whole daily digest offline on the bundled sample listing, into state/outbox."""
    from digest.config import masked_url
    from digest.store import subscribers as sub_store
    from digest.subscribe_input import parse_keywords

    settings = obj.settings
    now = datetime.now(UTC)
    digest_date = _today(settings, now)
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


if __name__ == "__main__":  # pragma: no cover
    main()
