"""`digest status`: the recent runs, the scheduler's heartbeat, what is left to retry or failed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from digest.cli.group import Context, main, pass_ctx

# Heavy modules are imported inside the commands that use them (see group.py).
if TYPE_CHECKING:
    from digest.store.lease import Lease

FAILURES_SHOWN = 20  # undelivered digests listed by `digest status`


@main.command()
@click.option("--limit", type=click.IntRange(1, 1000), default=10, help="How many runs to show.")
@pass_ctx
def status(obj: Context, limit: int) -> None:
    """Show the recent daily runs and what they did."""
    from digest.service.leadership import SCHEDULER
    from digest.store import channels as channel_store
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
            paused = channel_store.paused(conn)
            hook_ids = [ledger.hook_id(f.channel) for f in failed]
            labels = {c.ledger_name: c.label
                      for c in channel_store.by_ids(conn, [i for i in hook_ids if i is not None]).values()}
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
                f"{c.get('sent', 0)} sent"
                + (f", {c['recorded']} for feeds only" if c.get("recorded") else "")
                + f", {c.get('failed', 0)} failed, {left[r['digest_date']]} to retry, "
                f"{c.get('quiet', 0)} quiet, {c.get('candidates', 0)} papers"
                + (f", {c['sources_failed']} of {_fetched(c)} source(s) failed" if c.get("sources_failed") else "")
            )
        for failed_source in r.get("failed_sources") or []:
            click.echo(f"    source {failed_source.get('name')} failed: {failed_source.get('error')}")
    click.echo(f"All digest dates: {sum(left.values())} to retry")
    if failed:
        click.echo("Not delivered:")
    for f in failed[:FAILURES_SHOWN]:
        via = "" if f.channel == ledger.EMAIL else f" via {labels.get(f.channel, 'a removed chat channel')}"
        click.echo(f"  digest {f.digest_date}  {f.email}{via}: {f.reason}")
    if len(failed) > FAILURES_SHOWN:
        click.echo(f"  ... and more (the first {FAILURES_SHOWN} are shown)")
    if paused:
        click.echo("Paused chat channels (the email and other channels go on):")
    for p in paused:
        c = p.channel
        click.echo(f"  {p.email}  channel {c.id} {c.label}: paused {c.paused_at:%Y-%m-%d %H:%M} UTC after "
                   f"{c.consecutive_failures} failed digests; last: {c.last_error}; "
                   f"`digest channel resume {p.email} {c.id}` after fixing it")


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


