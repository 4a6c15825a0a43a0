"""The SMTP transport: one connection for a batch (STARTTLS or SSL with certificate verification,
login when configured), reconnecting when the server drops it; each reply read into an outcome."""

from __future__ import annotations

import contextlib
import email.policy
import logging
import re
import smtplib
import socket
import ssl
from email.parser import BytesHeaderParser

from digest.config import SmtpSettings
from digest.domain import DeliveryOutcome, OutgoingMessage
from digest.errors import DeliveryError
from digest.mail.transport import FAILED, SENT, TEMP_FAILED, UNKNOWN, OnHandover
from digest.text import one_line

log = logging.getLogger(__name__)

# An envelope address that could not be sent as one clean SMTP argument.
_BAD_ENVELOPE = re.compile(r"[\x00-\x20\x7f<>]")
# An enhanced status code (RFC 3463) in a reply: class.subject.detail.
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


class _Lost(Exception):
    """The connection went away at stage; handed_over: after the whole message was written."""

    def __init__(self, detail: str, *, handed_over: bool, stage: str) -> None:
        super().__init__(detail)
        self.detail, self.handed_over, self.stage = detail, handed_over, stage


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, the terminating dot line."""
    # Composed messages already end every line in CRLF and rarely start one with a dot: counting
    # bytes (C speed) spares two regex passes over some 40 KB per message.
    crlf = data.count(b"\r\n")
    body = data if data.count(b"\r") == crlf == data.count(b"\n") else re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    # Every line now ends in CRLF, so a line start is the body's start or just after a CRLF: a bytes
    # replace (quoted-printable lines of long links often start with a dot) instead of a regex pass.
    body = body.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def is_hard_bounce(stage: str, code: int, reply: str) -> bool:
    """A permanent refusal of the address itself, not of the sender, the content or our relay setup.

    Enhanced codes 5.1.x (bad address) and 5.2.x (mailbox unusable) are; 5.7.x (policy, relaying
    denied) and 5.5.x/5.3.x (protocol, system) are not. Without an enhanced code only the classic
    "no such user" replies to RCPT (550, 551, 553) count.
    """
    if not 500 <= code < 600 or stage == "MAIL FROM":
        return False
    enhanced = _ENHANCED.match(reply)
    if enhanced:
        return enhanced.group(2) in ("1", "2")
    return stage == "RCPT TO" and code in (550, 551, 553)


class SmtpTransport:
    """Sends messages over one SMTP connection kept open across the batch (STARTTLS or implicit
    TLS with verified certificates), reconnecting when the server drops it mid-batch.

    envelope_from: the MAIL FROM address; None takes it from each message's From header.
    """

    def __init__(self, settings: SmtpSettings, *, envelope_from: str | None = None) -> None:
        self.settings = settings
        self.envelope_from = envelope_from
        self._conn: smtplib.SMTP | None = None
        self._fresh = False  # no message sent on this connection yet

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
        return DeliveryError(self._scrub(f"SMTP {self.where}: {one_line(what, 300)}"))

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
            return f"login failed for user {s.username!r}: {exc.smtp_code} {one_line(exc.smtp_error, 300)}"
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return f"server does not support what smtp.security/username need: {exc}"
        if isinstance(exc, smtplib.SMTPResponseException):
            return f"server refused the session: {exc.smtp_code} {one_line(exc.smtp_error, 300)}"
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

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.quit()
            with contextlib.suppress(Exception):
                conn.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _session(self) -> smtplib.SMTP:
        if self._conn is None:
            self._conn = self.connect()
            self._fresh = True
        return self._conn

    def send(self, message: OutgoingMessage, on_handover: OnHandover | None = None) -> DeliveryOutcome:
        """One message over the open connection (opened, or reopened after a drop, as needed)."""
        key = message.key
        if not message.to_addr or _BAD_ENVELOPE.search(message.to_addr) or not message.to_addr.isascii():
            # It can never be delivered: counted like a refusal of the address.
            return DeliveryOutcome(key, FAILED, "invalid recipient address (not sent)", bounce=True)
        for retry in (False, True):
            conn = self._session()
            reused = not self._fresh
            self._fresh = False
            try:
                return self._transaction(conn, message, on_handover)
            except _Lost as lost:
                self._drop()
                # An idle connection the server timed out fails at the first command: one fresh try.
                if reused and not retry and lost.stage == "MAIL FROM":
                    log.info("SMTP %s: connection was closed while idle; reconnecting", self.where)
                    continue
                detail = self._scrub(f"SMTP {self.where}: {lost.detail}")
                status = UNKNOWN if lost.handed_over else TEMP_FAILED
                log.warning("message %s %s: %s", key, status, detail)
                return DeliveryOutcome(key, status, detail)
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(self, conn: smtplib.SMTP, message: OutgoingMessage,
                     on_handover: OnHandover | None) -> DeliveryOutcome:
        key, stage = message.key, "MAIL FROM"
        try:
            code, reply = conn.mail(self._sender(message))
            if code != 250:
                return self._refused(conn, key, stage, code, reply)
            stage = "RCPT TO"
            code, reply = conn.rcpt(message.to_addr)
            if code not in (250, 251):
                return self._refused(conn, key, stage, code, reply)
            stage = "DATA"
            conn.putcmd("data")
            code, reply = conn.getreply()
            if code != 354:
                return self._refused(conn, key, stage, code, reply)
            if on_handover is not None:
                on_handover()
            # Until the final dot is written the server cannot accept the message: still a clean retry.
            conn.send(_dot_stuffed(message.data))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Lost(f"connection lost at {stage}: {one_line(str(exc), 300) or type(exc).__name__}",
                        handed_over=False, stage=stage) from None
        try:
            code, reply = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Lost("connection lost after the message was handed over, before the server's reply "
                        f"(it may have arrived): {one_line(str(exc), 300) or type(exc).__name__}",
                        handed_over=True, stage=stage) from None
        if code != 250:
            return self._refused(conn, key, "DATA", code, reply)
        log.debug("SMTP %s: message %s accepted: %d %s", self.where, key, code, one_line(reply, 300))
        return DeliveryOutcome(key, SENT, f"{code} {one_line(reply, 300)}")

    def _sender(self, message: OutgoingMessage) -> str:
        if self.envelope_from:
            return self.envelope_from
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(message.data)
        with contextlib.suppress(AttributeError, IndexError, TypeError):
            return str(headers["From"].addresses[0].addr_spec)
        return ""

    def _refused(self, conn: smtplib.SMTP, key: int, stage: str, code: int, reply: bytes | str) -> DeliveryOutcome:
        text = one_line(reply, 300)
        detail = f"{stage} refused: {code} {text}"
        if code == 421 or code < 0:
            # 421: the server is closing the session; -1: smtplib already lost it. The next message reconnects.
            self._drop()
            log.warning("SMTP %s: message %s temp_failed: %s", self.where, key, detail)
            return DeliveryOutcome(key, TEMP_FAILED, f"SMTP {self.where}: {detail}")
        status = FAILED if 500 <= code < 600 else TEMP_FAILED
        bounce = status == FAILED and is_hard_bounce(stage, code, text)
        log.warning("SMTP %s: message %s %s: %s", self.where, key, "hard bounce" if bounce else status, detail)
        try:
            conn.rset()  # abort this transaction, keep the session for the others
        except (smtplib.SMTPException, OSError):
            self._drop()
        return DeliveryOutcome(key, status, detail, bounce=bounce)
