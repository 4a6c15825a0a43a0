"""`digest worker`: a Celery worker that runs the shards `digest run` and `digest serve` enqueue."""

from __future__ import annotations

import os

import click

from digest.config import load_settings
from digest.errors import DigestError


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default: the number of CPUs).")
@click.option("--loglevel", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), default="INFO")
@click.pass_context
def worker_command(ctx: click.Context, concurrency: int | None, loglevel: str) -> None:
    """Run a Celery worker for dispatch.mode celery: it sends the shards of subscribers queued by
    `digest run` or `digest serve`, on this machine, with the same config and database."""
    settings = ctx.obj.settings if ctx.obj is not None else load_settings()
    try:
        from digest.dispatch.celery_app import run_worker
    except ImportError as exc:  # celery is in the install, but say it plainly if it is not
        raise DigestError(f"digest worker needs Celery: pip install 'celery[redis]' ({exc})") from None
    run_worker(settings, concurrency=concurrency or os.cpu_count() or 1, loglevel=loglevel)
