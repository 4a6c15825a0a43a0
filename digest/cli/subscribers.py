"""Subscribers from the command line: subscribe, unsubscribe, pause, resume, list, their feed's address."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from digest.cli.group import Context, main, pass_ctx
from digest.errors import InputError

# Heavy modules are imported inside the commands that use them (see group.py).
if TYPE_CHECKING:
    from sqlalchemy import Connection

    from digest.domain import Subscriber


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
@click.option("--authors", default=None,
              help='Authors to follow, comma-separated: "Yann LeCun, M. Welling" (or "Welling, Max; LeCun, Y."). '
                   'Their new papers are always in the digest; "" follows none.')
@click.option("--webhook", default=None, metavar="URL",
              help="Also post each digest to this chat webhook (Slack, Discord or JSON, read from the host; "
                   "Matrix and the rest: digest channel add). Checked before anything is stored.")
@click.option("--email/--no-email", "mail", default=None,
              help="Mail the digest (default), or --no-email: feed only, each digest is recorded for the private "
                   "feed (digest feed-url EMAIL) and not mailed.")
@pass_ctx
def subscribe(obj: Context, email: str, keywords: str | None, exclude: str | None, top_k: int | None,
              tz: str | None, hour: int | None, cadence: str | None, trending: bool | None,
              mail: bool | None, authors: str | None, webhook: str | None) -> None:
    """Subscribe EMAIL (or update an existing subscription) with interest keywords.

    An update changes only the options given; the others keep what the subscriber had."""
    from digest.store import subscribers as sub_store
    from digest.subscribe_input import normalise_email, parse_authors, parse_keywords, parse_timezone

    addr = normalise_email(email)
    kws = parse_keywords(keywords) if keywords is not None else None
    excl = parse_keywords(exclude, option="--exclude", required=False) if exclude is not None else None
    zone = parse_timezone(tz) if tz is not None else None
    followed = parse_authors(authors) if authors is not None else None
    hook = None
    if webhook is not None:
        from digest.hooks.spec import check_hook

        fetch = obj.settings.fetch
        try:  # a URL that cannot be used changes nothing: checked before the database is opened
            hook = check_hook(webhook, kind=None, room=None, token=None, allow_private=fetch.allow_private,
                              resolve_timeout_s=fetch.connect_timeout_s)
        except InputError as exc:
            raise InputError(f"--webhook: {exc}") from None
    app = obj.app()
    now = datetime.now(UTC).replace(tzinfo=None)
    channel = None
    try:
        with app.engine.begin() as conn:
            if kws is None and sub_store.get_subscriber(conn, addr) is None:
                kws = parse_keywords(None)  # a new subscriber: the error says how to give them
            sub, created = sub_store.upsert_subscriber(
                conn, email=addr, keywords=kws, exclude=excl, top_k=top_k, timezone=zone, delivery_hour=hour,
                cadence=cadence, trending=trending, email_enabled=mail, authors=followed, now=now,
            )
            if hook is not None:
                from digest.store import channels as channel_store

                channel, _ = channel_store.add(conn, sub.id, kind=hook.kind, url=hook.url, room_id=None, token=None,
                                               now=now)
    finally:
        app.close()
    verb = "Subscribed" if created else "Updated"
    sched = app.settings.schedule
    hour_shown = sched.delivery_hour if sub.delivery_hour is None else sub.delivery_hour
    click.echo(f"{verb} {sub.email}: {', '.join(sub.keywords)} ({sub.top_k or app.settings.digest.top_k} picks, "
               f"{sub.cadence} at {hour_shown:02d}:00 {sub.timezone or sched.timezone})"
               + ("; feed only, no email" if not sub.email_enabled else "")
               + (f"; follows {'; '.join(sub.authors)}" if sub.authors else "")
               + (f"; chat channel {channel.id}: {channel.label}" if channel is not None else ""))


@main.command()
@click.argument("email")
@pass_ctx
def unsubscribe(obj: Context, email: str) -> None:
    """Stop sending to EMAIL. Its history is kept; subscribing again resumes it."""
    from digest.store import subscribers as sub_store

    addr, changed = _change_subscriber(obj, email, lambda conn, sub, now: sub_store.deactivate(conn, sub.id, now))
    click.echo(f"Unsubscribed {addr}" if changed else f"{addr} was already unsubscribed")


def _change_subscriber(obj: Context, email: str,
                       change: Callable[[Connection, Subscriber, datetime], bool]) -> tuple[str, bool]:
    """Apply change to an existing subscriber in one transaction: (the address, whether it changed)."""
    from digest.store import subscribers as sub_store
    from digest.subscribe_input import normalise_email

    addr = normalise_email(email)
    app = obj.app()
    try:
        with app.engine.begin() as conn:
            sub = sub_store.require_subscriber(conn, addr)
            changed = change(conn, sub, datetime.now(UTC).replace(tzinfo=None))
    finally:
        app.close()
    return addr, changed


@main.command()
@click.option("--all", "show_all", is_flag=True, help="Include unsubscribed addresses.")
@pass_ctx
def subscribers(obj: Context, show_all: bool) -> None:
    """List the subscribers and their keywords."""
    from digest.store import channels as channel_store
    from digest.store import subscribers as sub_store

    app = obj.app()
    try:
        with app.engine.connect() as conn:
            subs = sub_store.list_subscribers(conn, active_only=not show_all)
            chats = channel_store.active_by_subscriber(conn, paused_too=True)
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
        state += "  [feed only]" if not s.email_enabled else ""
        excl = f"  (exclude: {', '.join(s.exclude)})" if s.exclude else ""
        # The kind only: the URL is a secret (`digest channel list` shows it masked).
        chat = ", ".join(c.kind + (" [paused]" if c.paused_at else "") for c in chats.get(s.id, []))
        excl += f"  (chat: {chat})" if chat else ""
        excl += f"  (follows: {'; '.join(s.authors)})" if s.authors else ""
        when = f"{s.cadence} {s.delivery_hour if s.delivery_hour is not None else sched.delivery_hour:02d}:00 " \
               f"{s.timezone or sched.timezone}"
        click.echo(f"{s.email}  top_k={s.top_k or app.settings.digest.top_k}  {when}  {', '.join(s.keywords)}"
                   f"{excl}{state}")


def _set_paused(obj: Context, email: str, paused: bool) -> None:
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
def pause(obj: Context, email: str) -> None:
    """Send EMAIL nothing until resumed; keywords and history stay."""
    _set_paused(obj, email, True)


@main.command()
@click.argument("email")
@pass_ctx
def resume(obj: Context, email: str) -> None:
    """Send EMAIL digests again after a pause, or after a suspension for hard bounces."""
    _set_paused(obj, email, False)


@main.command("feed-url")
@click.argument("email")
@click.option("--new", "renew", is_flag=True, help="Give the feed a new address first: the old one stops working.")
@pass_ctx
def feed_url(obj: Context, email: str, renew: bool) -> None:
    """Print EMAIL's private Atom feed address (their picks of the last 14 days), for a feed reader."""
    from digest.store import subscribers as sub_store
    from digest.subscribe_input import normalise_email

    addr = normalise_email(email)
    app = obj.app()
    try:
        with app.engine.begin() as conn:
            sub = sub_store.require_subscriber(conn, addr)
            now = datetime.now(UTC).replace(tzinfo=None)
            key = sub_store.renew_feed_key(conn, sub.id, now) if renew else sub_store.feed_key(conn, sub.id)
            if key is None:  # a row written by hand, without a key: it gets one
                key = sub_store.renew_feed_key(conn, sub.id, now)
        assert key is not None
        url = app.links().feed_url(sub.id, key)
    finally:
        app.close()
    if renew:
        click.echo(f"{addr}: a new feed address; the old one no longer works.", err=True)
    if not sub.active:
        click.echo(f"{addr} is unsubscribed: the feed answers 410 until they subscribe again.", err=True)
    click.echo(url)
