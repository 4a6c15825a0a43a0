"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, a free port, scripted replies.

    server = start_smtp_server()                       # plain, no auth
    server.handler.rcpt_replies["bad@example.org"] = "550 5.1.1 <bad@example.org>: no such user"
    ... SmtpSettings(host=server.host, port=server.port, security="none") ...
    server.stop()

Options: auth=(user, password) requires AUTH (auth_require_tls=False allows it without TLS),
tls=TlsFiles (from make_tls_files) with starttls=True for STARTTLS or implicit_tls=True for
SMTP over TLS. handler.connections counts TCP connections made by the code under test.

Faults: handler.greetings = ["421 ..."] answers the next connections with that greeting and
hangs up; handler.drop_after_data = {"a@x"} keeps a@x's message and then closes the connection
without a reply (once per address); handler.hold_after = (k, seconds) holds the reply to the k-th
accepted message (handler.wait_for(k) tells when it arrived); handler.hold_rcpt = (k, seconds) holds
the reply to the k-th RCPT (handler.wait_for_rcpt(k)); handler.rcpt_delay_s slows every RCPT.

Fixtures (imported into tests/conftest.py): make_smtp_server(**options) and smtp_server (plain).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    at: float = field(default_factory=time.monotonic)  # when the server had the whole message


@dataclass
class RecordingHandler:
    """Stores accepted messages; replies can be scripted per recipient at RCPT and at end of DATA.

    A scripted reply starting with "421" also closes the connection, as a real server would.
    """

    messages: list[Received] = field(default_factory=list)
    peers: set[tuple[Any, ...]] = field(default_factory=set)  # client (ip, port) of each TCP connection
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    greetings: list[str] = field(default_factory=list)
    drop_after_data: set[str] = field(default_factory=set)
    hold_after: tuple[int, float] | None = None
    rcpt_delay_s: float = 0.0
    hold_rcpt: tuple[int, float] | None = None
    rcpts_seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, n: int, timeout: float = 30.0) -> bool:
        """Block until at least n messages were accepted (the reply to the n-th may still be held)."""
        return self._wait(lambda: len(self.messages) >= n, timeout)

    def wait_for_rcpt(self, n: int, timeout: float = 30.0) -> bool:
        """Block until at least n RCPT commands arrived (the reply to the n-th may still be held)."""
        return self._wait(lambda: self.rcpts_seen >= n, timeout)

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(left)
        return True

    @property
    def connections(self) -> int:
        """TCP connections seen (a STARTTLS upgrade is the same connection)."""
        return len(self.peers)

    def _reply(self, server: SMTP, reply: str) -> str:
        if reply.startswith("421") and server.transport is not None:
            assert server.loop is not None
            server.loop.call_soon(server.transport.close)
        return reply

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self.arrived:
            self.rcpts_seen += 1
            n = self.rcpts_seen
            self.arrived.notify_all()
        if self.rcpt_delay_s:
            await asyncio.sleep(self.rcpt_delay_s)
        if self.hold_rcpt is not None and n == self.hold_rcpt[0]:
            await asyncio.sleep(self.hold_rcpt[1])
        scripted = self.rcpt_replies.get(address.lower())
        if scripted:
            return self._reply(server, scripted)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for rcpt in envelope.rcpt_tos:
            scripted = self.data_replies.get(rcpt.lower())
            if scripted:
                return self._reply(server, scripted)
        content = envelope.original_content or b""
        with self.lock, self.arrived:
            self.messages.append(Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), bytes(content)))
            n = len(self.messages)
            self.arrived.notify_all()
        dropped = {r.lower() for r in envelope.rcpt_tos} & self.drop_after_data
        if dropped and server.transport is not None:
            # Kept, but the client never hears so: the ambiguous case of a relay dying after DATA.
            self.drop_after_data -= dropped
            server.transport.close()
            return "250 2.0.0 Ok (never seen by the client)"
        if self.hold_after is not None and n == self.hold_after[0]:
            await asyncio.sleep(self.hold_after[1])
        return f"250 2.0.0 Ok: queued as T{n}"


class _CountingSMTP(SMTP):
    def connection_made(self, transport: Any) -> None:
        # Called again on the TLS transport after STARTTLS: the peer address tells them apart.
        self.event_handler.peers.add(tuple(transport.get_extra_info("peername") or ()))
        super().connection_made(transport)

    async def _handle_client(self) -> None:
        greetings = self.event_handler.greetings
        if greetings and self.transport is not None:
            await self.push(greetings.pop(0))  # e.g. 421: busy, come back later; then hang up
            self.transport.close()
            return
        await super()._handle_client()


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path  # PEM of the test CA: SmtpSettings.ca_file
    server_context: ssl.SSLContext


def make_tls_files(directory: Path, *, hostnames: tuple[str, ...] = (HOST, "localhost")) -> TlsFiles:
    """A throwaway CA (trustme) and a server certificate for hostnames; the CA is written to directory."""
    ca = trustme.CA()
    cert = ca.issue_cert(*hostnames)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    ca_file = directory / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsFiles(ca_file=ca_file, server_context=ctx)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class SmtpServer:
    controller: Controller
    handler: RecordingHandler
    host: str
    port: int

    def stop(self) -> None:
        self.controller.stop()


def start_smtp_server(
    *,
    auth: tuple[str, str] | None = None,
    auth_require_tls: bool = True,
    tls: TlsFiles | None = None,
    starttls: bool = False,
    implicit_tls: bool = False,
    port: int | None = None,
    idle_timeout_s: float | None = None,
) -> SmtpServer:
    handler = RecordingHandler()
    kwargs: dict[str, Any] = {}
    if idle_timeout_s is not None:  # the server hangs up on a client silent this long
        kwargs["timeout"] = idle_timeout_s
    if auth is not None:
        user, password = auth

        def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and data.login == user.encode() and data.password == password.encode()
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=auth_require_tls)
    if starttls:
        assert tls is not None, "starttls needs tls=make_tls_files(...)"
        kwargs.update(tls_context=tls.server_context, require_starttls=True)
    ssl_context = None
    if implicit_tls:
        assert tls is not None, "implicit_tls needs tls=make_tls_files(...)"
        ssl_context = tls.server_context
    port = port or free_port()
    controller = _Controller(handler, hostname=HOST, port=port, ssl_context=ssl_context, **kwargs)
    controller.start()
    handler.peers.clear()  # start() makes one connection of its own to wake the server
    return SmtpServer(controller=controller, handler=handler, host=HOST, port=port)


@pytest.fixture
def make_smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """Start servers with start_smtp_server(**options); all are stopped at teardown."""
    started: list[SmtpServer] = []

    def make(**options: Any) -> SmtpServer:
        server = start_smtp_server(**options)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server(make_smtp_server: Callable[..., SmtpServer]) -> SmtpServer:
    """A plain SMTP server (no TLS, no auth) that records what it receives."""
    return make_smtp_server()
