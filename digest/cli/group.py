"""The `digest` command group: typed errors become one-line messages and exit codes, the settings are
read when a command first needs them, and the heavy commands (LAZY_COMMANDS) are imported when run."""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NoReturn
from zoneinfo import ZoneInfo

import click

from digest.errors import DigestError, InputError

# Only what every command needs is imported at the top; the rest where a command uses it, so that
# `--help`, `subscribe`, `subscribers` and `status` start without numpy, scikit-learn, Starlette and
# the mail stack (tests/cli/test_cli.py checks it; README: start-up time). Annotations: TYPE_CHECKING.
if TYPE_CHECKING:
    from digest.config import Settings
    from digest.wiring import App

log = logging.getLogger("digest")


class Context:
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


def fail(message: str, code: int = 1) -> NoReturn:
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


class DigestGroup(click.Group):
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
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:
            # The reader went away (digest status | head -2): click's main stops quietly, as Unix tools do.
            raise
        except OSError as exc:
            fail(f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}")
        except Exception as exc:
            reason = _database_failure(exc)
            if reason is None:
                raise
            # A database file that cannot be written or read (read-only, immutable, damaged) is the
            # operator's to fix: one line naming it, not a trace of the driver's stack.
            damaged = any(w in reason for w in ("readonly", "malformed", "not a database", "unable to open"))
            fail(f"database {_database_name(ctx)}: {reason}", 2 if damaged else 1)


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

        return masked_url(ctx.find_object(Context).settings.database_url)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - the name is a courtesy; the reason is the message
        return "(configured database)"


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", type=click.Path(dir_okay=False), envvar="DIGEST_CONFIG",
              help="YAML config file (default: $DIGEST_CONFIG, else the embedded defaults).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="daily-paper-digest")
@click.pass_context
def main(ctx: click.Context, config: str | None, verbose: int) -> None:
    """A personalised daily paper digest: new papers ranked for each subscriber, sent by email."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config)


pass_ctx = click.make_pass_decorator(Context)

def today(settings: Settings, now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.schedule.timezone)).date()


def parse_date(value: str | None, settings: Settings, now: datetime) -> date:
    if value is None:
        return today(settings, now)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"--date: not a date in YYYY-MM-DD form: {value!r}") from None



@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[threading.Event]:
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
