"""`digest serve`: the web endpoints behind the links in the email, run by uvicorn.

With the scheduler (digest.service) in the same process: on SIGTERM or SIGINT the running digest is
told to stop between two messages, the web finishes the requests in flight, the scheduler waits for
the digest, the lease is released, and the command exits 0.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import Any, Protocol

import click
import uvicorn
from starlette.types import ASGIApp

from digest.config import Settings
from digest.errors import DigestError
from digest.signing.tokens import LinkSigner
from digest.web.app import WebOptions, create_app
from digest.web.forms import FormDefaults
from digest.web.ratelimit import SignupLimits
from digest.wiring import App, secret_keys

log = logging.getLogger(__name__)
GRACEFUL_SHUTDOWN_S = 10


class _HasApp(Protocol):
    """What the CLI passes as the click context object (digest.cli._Context)."""

    def app(self) -> App: ...


def web_options(settings: Settings) -> WebOptions:
    w = settings.web
    return WebOptions(
        base_url=w.base_url,
        defaults=FormDefaults(sources=tuple(s.name for s in settings.sources), top_k=settings.digest.top_k,
                              timezone=settings.schedule.timezone, delivery_hour=settings.schedule.delivery_hour),
        signup_enabled=w.signup_enabled,
        signup_expiry=timedelta(hours=w.signup_expiry_hours),
        limits=SignupLimits(per_ip=w.signup_limit_per_ip, per_address=w.signup_limit_per_address,
                            window=timedelta(seconds=w.signup_window_s)),
        manage_days=w.manage_link_days,
        templates_dir=settings.digest.templates_dir,
        public_search=w.public_search,
        webhooks_allow_private=settings.fetch.allow_private,
    )


def _listen(host: str, port: int) -> socket.socket:
    """Bind here rather than in uvicorn, so that a busy port is a one-line error, not a log dump."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        raise DigestError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class _Server(uvicorn.Server):
    """uvicorn's server, telling on_stop as soon as a stop signal arrives (not after the web drained)."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None] | None) -> None:
        super().__init__(config)
        self.on_stop = on_stop

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.on_stop is not None:
            self.on_stop()
        super().handle_exit(sig, frame)


def run_server(app: ASGIApp, host: str, port: int, on_stop: Callable[[], None] | None = None,
               sock: socket.socket | None = None) -> None:
    """Serve app until SIGTERM or SIGINT, then shut down gracefully and return.

    on_stop: called at once on the signal, e.g. to let a running digest stop between messages.
    sock: a socket already listening on host:port (default: bind one here).
    """
    sock = sock or _listen(host, port)
    # log_config None: uvicorn logs through the handlers the CLI configured (-v for more).
    config = uvicorn.Config(app, log_config=None, log_level=None, access_log=False, server_header=False,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, lifespan="off")
    server = _Server(config, on_stop)

    def stop(signum: int, frame: Any) -> None:
        server.handle_exit(signum, frame)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # Ours until uvicorn takes the signals over (a stop request is not lost) and again after it
        # returns: uvicorn re-raises the signal that stopped it, which must not kill the process.
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop)
    try:
        server.run(sockets=[sock])
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sock.close()
    log.info("web server stopped")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--no-scheduler", is_flag=True, help="Serve the web endpoints only, without the scheduler.")
@click.pass_obj
def serve_command(obj: _HasApp, host: str, port: int, no_scheduler: bool) -> None:
    """Serve the links in the email, the subscribe, manage and web-view pages and, unless
    --no-scheduler, send each digest when it is due."""
    from digest.service.health import HealthCheck
    from digest.service.metrics import Metrics
    from digest.service.scheduler import Service, longest_gap, wake_trigger
    from digest.service.wake import utc_now

    app = obj.app()
    service: Service | None = None
    try:
        sock = _listen(host, port)  # a busy port fails before the scheduler takes the lease
        settings = app.settings
        signer = LinkSigner(secret_keys(settings))
        if not settings.web.base_url.startswith("https://"):
            # RFC 8058 one-click unsubscribe (List-Unsubscribe-Post) needs an https link.
            log.warning("web.base_url is not https: digests carry no one-click unsubscribe header")
        standby_for: str | None = None
        if not no_scheduler:
            service = Service(app)
            if not service.start():
                holder = service.lease.holder()
                standby_for = holder.owner if holder is not None else "another process"
        running = service
        # A wake may take a while (a long list, a slow relay): overdue an hour after the next one was due.
        overdue = longest_gap(wake_trigger(settings.schedule.cron, settings.schedule.timezone), utc_now())
        health = HealthCheck(app.engine, require_scheduler=not no_scheduler, clock=utc_now,
                             this_process=lambda: running is not None and running.scheduling,
                             wake_overdue=overdue + timedelta(hours=1))
        web = create_app(app.engine, signer, scanner_window_s=settings.feedback.scanner_window_s,
                         templates_dir=settings.digest.templates_dir, options=web_options(settings),
                         mailer=app.confirmation_mailer(), health=health, metrics=Metrics(app.engine, utc_now))
        shown = f"[{host}]" if ":" in host else host
        if service is None:
            what = "web endpoints only (--no-scheduler)"
        elif standby_for is not None:
            # The heartbeat keeps trying for the lease: this process takes the scheduler over once it frees.
            what = (f"web endpoints; the scheduler runs in another `digest serve` ({standby_for}), and this one "
                    "takes it over when that one's lease frees")
        else:
            what = "web endpoints and scheduler"
        click.echo(f"Serving on http://{shown}:{port}, {what} (links in the email point to {settings.web.base_url})")
        run_server(web, host, port, on_stop=service.stop_event.set if service is not None else None, sock=sock)
    finally:
        if service is not None:
            service.stop()  # waits for a running digest to stop between two messages
        app.close()
