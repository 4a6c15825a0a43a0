"""Transports: hand composed messages to an SMTP server or write them to an outbox directory.

Both return one DeliveryOutcome per message, in order: "sent", "failed" (permanent, a 5xx) or
"temp_failed" (try again later: a 4xx, or the connection went away). A transport that cannot
start at all (no connection, TLS or login failure, unwritable outbox) raises DeliveryError, so
nothing is recorded as attempted.
"""

from __future__ import annotations

import contextlib
import email.policy
import logging
import os
import re
import smtplib
import socket
import ssl
import tempfile
from collections.abc import Iterable
from email.parser import BytesHeaderParser, BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol

from digest.config import DeliverySettings, SmtpSettings
from digest.domain import DeliveryOutcome, OutgoingMessage
from digest.errors import DeliveryError

log = logging.getLogger(__name__)

SENT = "sent"
FAILED = "failed"
TEMP_FAILED = "temp_failed"

_MID_DATE = re.compile(r"^<digest-(\d{4}-\d{2}-\d{2})-")
_UNSAFE_NAME = re.compile(r"[^a-z0-9@._+-]+")
# An envelope address that could not be sent as one clean SMTP argument.
_BAD_ENVELOPE = re.compile(r"[\x00-\x20\x7f<>]")


class Transport(Protocol):
    def deliver(self, messages: Iterable[OutgoingMessage]) -> list[DeliveryOutcome]: ...


def _one_line(text: str | bytes, limit: int = 300) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text.split())[:limit]


# --- outbox ----------------------------------------------------------------------------------


def safe_file_part(address: str, limit: int = 80) -> str:
    """A recipient address as a file-name part: no separators, no leading dot, bounded."""
    name = _UNSAFE_NAME.sub("_", address.lower()).strip("._")
    return name[:limit] or "unknown"


def _atomic_write(path: Path, data: bytes) -> None:
    # Write beside the target and rename, so a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class OutboxTransport:
    """Writes ``<outbox>/<YYYY-MM-DD>/<recipient>-<key>.eml`` and an ``.html`` copy of the HTML part.

    The day folder is the digest date carried in the Message-ID (see compose.make_message_id),
    else the date of the Date header, else ``undated``. Re-delivering the same key overwrites
    the same files, so a retried run leaves one copy.
    """

    def __init__(self, outbox_dir: Path) -> None:
        self.outbox_dir = Path(outbox_dir)

    def path_for(self, message: OutgoingMessage) -> Path:
        return self.outbox_dir / _day_folder(message) / f"{safe_file_part(message.to_addr)}-{int(message.key)}.eml"

    def deliver(self, messages: Iterable[OutgoingMessage]) -> list[DeliveryOutcome]:
        outcomes: list[DeliveryOutcome] = []
        pending = list(messages)
        for i, message in enumerate(pending):
            path = self.path_for(message)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                html = _html_part(message.data)
                if html is not None:
                    _atomic_write(path.with_suffix(".html"), html.encode("utf-8"))
                # The .eml last: it is the record that the message was delivered.
                _atomic_write(path, message.data)
            except OSError as exc:
                problem = f"outbox {self.outbox_dir}: cannot write {path.name}: {exc.strerror or exc}"
                if not outcomes:
                    raise DeliveryError(problem) from None
                log.error("%s; %d message(s) left for a retry", problem, len(pending) - i)
                outcomes += [DeliveryOutcome(m.key, TEMP_FAILED, problem) for m in pending[i:]]
                return outcomes
            outcomes.append(DeliveryOutcome(message.key, SENT, "written to outbox", location=str(path)))
        if outcomes:
            log.info("outbox %s: wrote %d message(s)", self.outbox_dir, len(outcomes))
        return outcomes


def _day_folder(message: OutgoingMessage) -> str:
    found = _MID_DATE.match(message.message_id.strip())
    if found:
        return found.group(1)
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(message.data)
    with contextlib.suppress(TypeError, ValueError):
        return parsedate_to_datetime(str(headers.get("Date", ""))).strftime("%Y-%m-%d")
    return "undated"


def _html_part(data: bytes) -> str | None:
    msg = BytesParser(policy=email.policy.default).parsebytes(data)
    body = msg.get_body(preferencelist=("html",))
    if body is None:
        return None
    content = body.get_content()
    return content if isinstance(content, str) else None


# --- SMTP ------------------------------------------------------------------------------------


class _SessionLost(Exception):
    """The server closed the session or the socket failed: nothing more can go out on it."""


class SmtpTransport:
    """Sends a batch over ONE SMTP connection (STARTTLS or implicit TLS with verified certificates).

    envelope_from: the MAIL FROM address; None takes it from each message's From header.
    """

    def __init__(self, settings: SmtpSettings, *, envelope_from: str | None = None) -> None:
        self.settings = settings
        self.envelope_from = envelope_from

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _tls_context(self) -> ssl.SSLContext:
        # Verified certificates and host names; ca_file replaces the system trust store (tests, private CAs).
        if self.settings.ca_file:
            return ssl.create_default_context(cafile=self.settings.ca_file)
        return ssl.create_default_context()

    def _scrub(self, text: str) -> str:
        secret = self.settings.password.get_secret_value() if self.settings.password else ""
        return text.replace(secret, "***") if secret else text

    def _fail(self, what: str) -> DeliveryError:
        return DeliveryError(self._scrub(f"SMTP {self.where}: {_one_line(what)}"))

    def connect(self) -> smtplib.SMTP:
        """An open, greeted, TLS-protected (per settings) and logged-in connection, or DeliveryError."""
        s = self.settings
        conn: smtplib.SMTP | None = None
        try:
            if s.security == "ssl":
                conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=self._tls_context())
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
            conn.ehlo()
            if s.security == "starttls":
                conn.starttls(context=self._tls_context())
                conn.ehlo()
            if s.username:
                if s.security == "none":
                    log.warning("SMTP %s: logging in without TLS (smtp.security is none)", self.where)
                password = s.password.get_secret_value() if s.password else ""
                conn.login(s.username, password)
            return conn
        except Exception as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            raise self._fail(self._explain(exc)) from None

    def _explain(self, exc: BaseException) -> str:
        s = self.settings
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed: {exc.verify_message or exc.reason}"
        if isinstance(exc, ssl.SSLError):
            return f"TLS handshake failed: {exc.reason or exc}"
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return f"login failed for user {s.username!r}: {exc.smtp_code} {_one_line(exc.smtp_error)}"
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return f"server does not support what smtp.security/username need: {exc}"
        if isinstance(exc, smtplib.SMTPResponseException):
            return f"server refused the session: {exc.smtp_code} {_one_line(exc.smtp_error)}"
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return f"server closed the connection: {exc}"
        if isinstance(exc, TimeoutError):
            return f"connection timed out after {s.timeout_s:g}s"
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve host: {exc.strerror}"
        if isinstance(exc, OSError):
            return f"cannot connect: {exc.strerror or exc}"
        return f"cannot connect: {type(exc).__name__}: {exc}"

    def deliver(self, messages: Iterable[OutgoingMessage]) -> list[DeliveryOutcome]:
        pending = list(messages)
        if not pending:
            return []
        conn = self.connect()
        outcomes: list[DeliveryOutcome] = []
        try:
            for i, message in enumerate(pending):
                try:
                    outcomes.append(self._send_one(conn, message))
                except _SessionLost as lost:
                    detail = self._scrub(f"SMTP {self.where}: {lost}")
                    log.warning("%s; %d message(s) left for a retry", detail, len(pending) - i)
                    outcomes += [DeliveryOutcome(m.key, TEMP_FAILED, detail) for m in pending[i:]]
                    break
        finally:
            with contextlib.suppress(Exception):
                conn.quit()
            conn.close()
        counts = {st: sum(o.status == st for o in outcomes) for st in (SENT, FAILED, TEMP_FAILED)}
        log.info("SMTP %s: sent %d, failed %d, temp_failed %d", self.where, *counts.values())
        return outcomes

    def _sender(self, message: OutgoingMessage) -> str:
        if self.envelope_from:
            return self.envelope_from
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(message.data)
        with contextlib.suppress(AttributeError, IndexError, TypeError):
            return str(headers["From"].addresses[0].addr_spec)
        return ""

    def _send_one(self, conn: smtplib.SMTP, message: OutgoingMessage) -> DeliveryOutcome:
        key = message.key
        if not message.to_addr or _BAD_ENVELOPE.search(message.to_addr) or not message.to_addr.isascii():
            return DeliveryOutcome(key, FAILED, "invalid recipient address (not sent)")
        try:
            code, reply = conn.mail(self._sender(message))
            if code != 250:
                return self._refused(conn, key, "MAIL FROM", code, reply)
            code, reply = conn.rcpt(message.to_addr)
            if code not in (250, 251):
                return self._refused(conn, key, "RCPT TO", code, reply)
            try:
                code, reply = conn.data(message.data)
            except smtplib.SMTPDataError as exc:  # the server would not start DATA (no 354)
                return self._refused(conn, key, "DATA", exc.smtp_code, exc.smtp_error)
            if code != 250:
                return self._refused(conn, key, "DATA", code, reply)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _SessionLost(f"connection lost: {_one_line(str(exc)) or type(exc).__name__}") from None
        log.debug("SMTP %s: message %s accepted: %d %s", self.where, key, code, _one_line(reply))
        return DeliveryOutcome(key, SENT, f"{code} {_one_line(reply)}")

    def _refused(self, conn: smtplib.SMTP, key: int, stage: str, code: int, reply: bytes | str) -> DeliveryOutcome:
        detail = f"{stage} refused: {code} {_one_line(reply)}"
        if code == 421 or code < 0:
            # 421: the server is closing the session; -1: smtplib already lost it.
            raise _SessionLost(detail)
        status = FAILED if 500 <= code < 600 else TEMP_FAILED
        log.warning("SMTP %s: message %s %s: %s", self.where, key, status, detail)
        with contextlib.suppress(smtplib.SMTPException, OSError):
            conn.rset()  # abort this transaction, keep the session for the others
        return DeliveryOutcome(key, status, detail)


def make_transport(delivery: DeliverySettings, smtp: SmtpSettings, outbox_dir: Path) -> Transport:
    if delivery.method == "smtp":
        return SmtpTransport(smtp, envelope_from=delivery.from_addr)
    return OutboxTransport(outbox_dir)
