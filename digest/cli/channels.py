"""`digest channel`: a subscriber's chat channels (Slack, Discord, Matrix, a JSON webhook)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from digest.cli.group import Context, main, pass_ctx
from digest.errors import InputError


@main.group()
def channel() -> None:
    """Chat channels: post each digest to Slack, Discord, a Matrix room or a JSON webhook as well.

    A channel gets the email's picks and links, one message per digest, retried like the email;
    one that keeps failing is paused (`digest status` lists it) while the email goes on."""


@channel.command("add")
@click.argument("email")
@click.argument("url")
@click.option("--kind", type=click.Choice(["slack", "discord", "matrix", "json"]), default=None,
              help="What the URL is (default: from its host: hooks.slack.com is slack, discord.com/api/webhooks "
                   "discord, any other json).")
@click.option("--matrix-room", metavar="ROOM", help="Matrix: the room, !id:server or #alias:server.")
@click.option("--matrix-token", metavar="TOKEN", envvar="DIGEST_MATRIX_TOKEN", show_envvar=True,
              help="Matrix: the access token of the account that posts (better from the environment).")
@pass_ctx
def add(obj: Context, email: str, url: str, kind: str | None, matrix_room: str | None,
        matrix_token: str | None) -> None:
    """Add a chat channel for EMAIL. URL is the webhook URL (for Matrix, the homeserver's); give - to
    read it from standard input, out of the shell's history."""
    from digest.hooks.spec import check_hook
    from digest.store import channels as channel_store
    from digest.store import subscribers as sub_store
    from digest.subscribe_input import normalise_email

    addr = normalise_email(email)
    if url == "-":
        url = sys.stdin.readline().strip()
    if matrix_room or matrix_token:
        kind = kind or "matrix"
    fetch = obj.settings.fetch
    # Checked before anything is opened: a URL that cannot be used changes nothing.
    spec = check_hook(url, kind=kind, room=matrix_room, token=matrix_token, allow_private=fetch.allow_private,
                      resolve_timeout_s=fetch.connect_timeout_s)
    app = obj.app()
    try:
        with app.engine.begin() as conn:
            sub = sub_store.require_subscriber(conn, addr)
            found, created = channel_store.add(conn, sub.id, kind=spec.kind, url=spec.url, room_id=spec.room_id,
                                               token=spec.token, now=datetime.now(UTC).replace(tzinfo=None))
    finally:
        app.close()
    verb = "Added" if created else "Already there:"
    click.echo(f"{verb} channel {found.id} for {sub.email}: {found.label} (from the next digest on)")


@channel.command("list")
@click.argument("email")
@pass_ctx
def list_channels(obj: Context, email: str) -> None:
    """List EMAIL's chat channels (their URLs and tokens masked)."""
    from digest.store import channels as channel_store
    from digest.store import subscribers as sub_store
    from digest.subscribe_input import normalise_email

    addr = normalise_email(email)
    app = obj.app()
    try:
        with app.engine.connect() as conn:
            sub = sub_store.require_subscriber(conn, addr)
            found = channel_store.list_for(conn, sub.id)
    finally:
        app.close()
    if not found:
        click.echo(f"{sub.email}: no chat channel (add one with: digest channel add {sub.email} URL)")
    for c in found:
        state = f"  [paused {c.paused_at:%Y-%m-%d %H:%M} UTC: {c.last_error}]" if c.paused_at else ""
        failing = f"  ({c.consecutive_failures} failed in a row)" if c.consecutive_failures and not c.paused_at else ""
        click.echo(f"{c.id}  {c.label}{failing}{state}")


def _one(obj: Context, email: str, channel_id: int, verb: str) -> None:
    from digest.store import channels as channel_store
    from digest.store import subscribers as sub_store
    from digest.subscribe_input import normalise_email

    addr = normalise_email(email)
    app = obj.app()
    try:
        with app.engine.begin() as conn:
            sub = sub_store.require_subscriber(conn, addr)
            now = datetime.now(UTC).replace(tzinfo=None)
            done = (channel_store.remove(conn, sub.id, channel_id, now) if verb == "Removed"
                    else channel_store.resume(conn, sub.id, channel_id))
    finally:
        app.close()
    if done is None:
        raise InputError(f"{sub.email} has no chat channel {channel_id} (see: digest channel list {sub.email})")
    click.echo(f"{verb} channel {channel_id} of {sub.email}: {done.label}")


@channel.command("remove")
@click.argument("email")
@click.argument("channel_id", type=int)
@pass_ctx
def remove(obj: Context, email: str, channel_id: int) -> None:
    """Remove EMAIL's chat channel CHANNEL_ID (what it was sent stays in the ledger)."""
    _one(obj, email, channel_id, "Removed")


@channel.command("resume")
@click.argument("email")
@click.argument("channel_id", type=int)
@pass_ctx
def resume(obj: Context, email: str, channel_id: int) -> None:
    """Post to a paused chat channel again (after fixing its webhook)."""
    _one(obj, email, channel_id, "Resumed")
