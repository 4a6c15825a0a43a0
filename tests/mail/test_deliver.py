"""Transports against a real aiosmtpd server on 127.0.0.1 and a real outbox directory."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from digest.config import DeliverySettings, SmtpSettings
from digest.domain import OutgoingMessage
from digest.errors import DeliveryError
from digest.mail.compose import compose_message, make_message_id
from digest.mail.outbox import OutboxTransport, safe_file_part
from digest.mail.render import RenderedDigest
from digest.mail.smtp import SmtpTransport, is_hard_bounce
from digest.mail.transport import make_transport, send_all
from tests.smtp_server import SmtpServer, TlsFiles, free_port, make_tls_files

# The plain-text AUTH tests are deliberate; aiosmtpd warns about them.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

FROM = "digest@example.org"
DAY = date(2026, 11, 29)
PASSWORD = "s3cret-Pa55word!"
MakeServer = Callable[..., SmtpServer]


def outgoing(key: int, to_addr: str) -> OutgoingMessage:
    rendered = RenderedDigest(subject=f"Digest {key}", text=f"text {key} \u00e9\n", html=f"<p>html {key} \u00e9</p>\n")
    mid = make_message_id(key, DAY, key + 100, FROM)
    msg = compose_message(rendered, from_addr=FROM, from_name="Paper digest", to_addr=to_addr, message_id=mid,
                          date=datetime(2026, 11, 29, 6, 0, tzinfo=UTC), unsubscribe_url="https://d.example/u/1")
    return OutgoingMessage(key=key, to_addr=to_addr, message_id=mid, data=msg.as_bytes(policy=email.policy.SMTP))


def batch(*addrs: str) -> list[OutgoingMessage]:
    return [outgoing(i + 1, a) for i, a in enumerate(addrs)]


THREE = ("a@example.org", "b@example.org", "c@example.org")


def plain(server: SmtpServer, **kw: Any) -> SmtpSettings:
    return SmtpSettings(host=server.host, port=server.port, security="none", timeout_s=5, **kw)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


# --- SMTP ------------------------------------------------------------------------------------


def test_batch_goes_over_one_connection(smtp_server: SmtpServer) -> None:
    outcomes = send_all(SmtpTransport(plain(smtp_server), envelope_from=FROM), batch(*THREE))
    assert [(o.key, o.status) for o in outcomes] == [(1, "sent"), (2, "sent"), (3, "sent")]
    assert all(o.detail.startswith("250 ") for o in outcomes)
    assert smtp_server.handler.connections == 1
    got = smtp_server.handler.messages
    assert [r.rcpt_tos for r in got] == [(a,) for a in THREE]
    assert {r.mail_from for r in got} == {FROM}
    parsed = email.message_from_bytes(got[0].data, policy=email.policy.default)
    assert parsed["Message-ID"] == "<digest-2026-11-29-s101-d1@example.org>"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_envelope_sender_from_header_by_default(smtp_server: SmtpServer) -> None:
    send_all(SmtpTransport(plain(smtp_server)), batch("a@example.org"))
    assert smtp_server.handler.messages[0].mail_from == FROM


def test_empty_batch_does_not_connect() -> None:
    closed = SmtpSettings(host="127.0.0.1", port=free_port(), security="none")
    assert send_all(SmtpTransport(closed), []) == []


def test_refused_recipient_fails_alone(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_replies["b@example.org"] = "550 5.1.1 <b@example.org>: Recipient address rejected"
    outcomes = send_all(SmtpTransport(plain(smtp_server)), batch(*THREE))
    assert [o.status for o in outcomes] == ["sent", "failed", "sent"]
    assert "550" in outcomes[1].detail and "Recipient address rejected" in outcomes[1].detail
    assert [r.rcpt_tos for r in smtp_server.handler.messages] == [("a@example.org",), ("c@example.org",)]
    assert smtp_server.handler.connections == 1


def test_temporary_rcpt_refusal_is_temp_failed(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_replies["a@example.org"] = "451 4.7.1 Greylisted, try again later"
    outcomes = send_all(SmtpTransport(plain(smtp_server)), batch(*THREE))
    assert [o.status for o in outcomes] == ["temp_failed", "sent", "sent"]
    assert "451" in outcomes[0].detail


def test_refusal_after_data(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_replies["b@example.org"] = "554 5.7.1 Message rejected as spam"
    outcomes = send_all(SmtpTransport(plain(smtp_server)), batch(*THREE))
    assert [o.status for o in outcomes] == ["sent", "failed", "sent"]
    assert outcomes[1].detail.startswith("DATA refused: 554")


def test_421_mid_batch_reconnects_for_the_rest(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_replies["b@example.org"] = "421 4.3.2 Service shutting down"
    outcomes = send_all(SmtpTransport(plain(smtp_server)), batch(*THREE))
    assert [o.status for o in outcomes] == ["sent", "temp_failed", "sent"]
    assert "421" in outcomes[1].detail and "127.0.0.1" in outcomes[1].detail
    assert [r.rcpt_tos for r in smtp_server.handler.messages] == [("a@example.org",), ("c@example.org",)]
    assert smtp_server.handler.connections == 2  # the server hung up; the next message reconnected


def test_connection_closed_after_data_is_unknown(smtp_server: SmtpServer) -> None:
    smtp_server.handler.drop_after_data.add("b@example.org")
    seen: list[int] = []
    transport = SmtpTransport(plain(smtp_server))
    outcomes = [transport.send(m, on_handover=lambda m=m: seen.append(m.key)) for m in batch(*THREE)]
    transport.close()
    assert [o.status for o in outcomes] == ["sent", "unknown", "sent"]
    assert "may have arrived" in outcomes[1].detail
    assert seen == [1, 2, 3]  # each message was announced before it was handed over
    assert [r.rcpt_tos for r in smtp_server.handler.messages] == [(a,) for a in THREE]  # b's did arrive
    assert smtp_server.handler.connections == 2


def test_greeting_421_is_a_delivery_error_and_the_next_connection_works(smtp_server: SmtpServer) -> None:
    smtp_server.handler.greetings.append("421 4.3.2 Too busy, try later")
    transport = SmtpTransport(plain(smtp_server))
    with pytest.raises(DeliveryError, match="421") as err:
        transport.send(outgoing(1, "a@example.org"))
    assert f"{smtp_server.host}:{smtp_server.port}" in str(err.value)
    assert transport.send(outgoing(1, "a@example.org")).status == "sent"
    transport.close()


def test_451_at_data_is_temp_failed(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_replies["a@example.org"] = "451 4.3.0 Local error in processing"
    outcomes = send_all(SmtpTransport(plain(smtp_server)), batch(*THREE))
    assert [(o.status, o.bounce) for o in outcomes] == [("temp_failed", False), ("sent", False), ("sent", False)]


def test_idle_connection_closed_by_the_server_is_reopened(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(idle_timeout_s=0.5)
    transport = SmtpTransport(plain(server))
    assert transport.send(outgoing(1, "a@example.org")).status == "sent"
    time.sleep(1.0)  # the server hangs up on the idle connection
    assert transport.send(outgoing(2, "b@example.org")).status == "sent"
    transport.close()
    assert server.handler.connections == 2 and len(server.handler.messages) == 2


@pytest.mark.parametrize(("stage", "code", "reply", "bounce"), [
    ("RCPT TO", 550, "5.1.1 <b@x.org>: Recipient address rejected: User unknown", True),
    ("RCPT TO", 550, "No such user here", True),
    ("RCPT TO", 554, "5.7.1 Relay access denied", False),  # our relay setup, not the address
    ("RCPT TO", 550, "5.7.1 Client host rejected", False),
    ("DATA", 552, "5.2.2 Mailbox full", True),
    ("DATA", 554, "5.7.1 Message rejected as spam", False),
    ("DATA", 554, "Transaction failed", False),
    ("MAIL FROM", 553, "5.1.8 Sender address rejected", False),
    ("RCPT TO", 450, "4.2.1 Mailbox busy", False),
])
def test_hard_bounce_classification(stage: str, code: int, reply: str, bounce: bool) -> None:
    assert is_hard_bounce(stage, code, reply) is bounce


def test_rcpt_refusal_is_a_hard_bounce(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_replies["b@example.org"] = "550 5.1.1 <b@example.org>: User unknown"
    outcomes = send_all(SmtpTransport(plain(smtp_server)), batch(*THREE))
    assert [(o.status, o.bounce) for o in outcomes] == [("sent", False), ("failed", True), ("sent", False)]


def test_lines_starting_with_a_dot_survive(smtp_server: SmtpServer) -> None:
    msg = outgoing(1, "a@example.org")
    data = msg.data.replace(b"text 1", b".hidden line\r\n..two dots\r\n.", 1)
    send_all(SmtpTransport(plain(smtp_server)), [OutgoingMessage(1, msg.to_addr, msg.message_id, data)])
    got = smtp_server.handler.messages[0].data
    assert b"\r\n.hidden line\r\n..two dots\r\n. =C3=A9\r\n" in got  # the server un-stuffs what we stuffed


def test_invalid_envelope_recipient_is_not_sent(smtp_server: SmtpServer) -> None:
    msgs = batch(*THREE)
    evil = "b@example.org\r\nRCPT TO:<x@evil.example>"
    msgs[1] = OutgoingMessage(msgs[1].key, evil, msgs[1].message_id, msgs[1].data)
    outcomes = send_all(SmtpTransport(plain(smtp_server)), msgs)
    assert [o.status for o in outcomes] == ["sent", "failed", "sent"]
    assert all("evil" not in " ".join(r.rcpt_tos) for r in smtp_server.handler.messages)


def test_connection_refused_names_host_and_port() -> None:
    port = free_port()
    with pytest.raises(DeliveryError) as err:
        settings = SmtpSettings(host="127.0.0.1", port=port, security="none", timeout_s=5)
        send_all(SmtpTransport(settings), batch("a@x.org"))
    assert f"127.0.0.1:{port}" in str(err.value) and "refused" in str(err.value)
    assert "\n" not in str(err.value)


def test_starttls_with_ca_file(make_smtp_server: MakeServer, tls: TlsFiles) -> None:
    server = make_smtp_server(tls=tls, starttls=True)
    settings = SmtpSettings(host=server.host, port=server.port, security="starttls", ca_file=str(tls.ca_file))
    outcomes = send_all(SmtpTransport(settings), batch(*THREE))
    assert [o.status for o in outcomes] == ["sent"] * 3
    assert server.handler.connections == 1
    assert [r.rcpt_tos for r in server.handler.messages] == [(a,) for a in THREE]


def test_starttls_without_ca_file_fails_verification(make_smtp_server: MakeServer, tls: TlsFiles) -> None:
    server = make_smtp_server(tls=tls, starttls=True)
    with pytest.raises(DeliveryError, match="certificate verification failed") as err:
        send_all(SmtpTransport(SmtpSettings(host=server.host, port=server.port, security="starttls")), batch("a@x.org"))
    assert f"{server.host}:{server.port}" in str(err.value)
    assert server.handler.messages == []


def test_starttls_required_but_not_offered(smtp_server: SmtpServer) -> None:
    settings = SmtpSettings(host=smtp_server.host, port=smtp_server.port, security="starttls")
    with pytest.raises(DeliveryError, match="STARTTLS"):
        send_all(SmtpTransport(settings), batch("a@x.org"))


def test_implicit_tls(make_smtp_server: MakeServer, tls: TlsFiles) -> None:
    server = make_smtp_server(tls=tls, implicit_tls=True)
    settings = SmtpSettings(host=server.host, port=server.port, security="ssl", ca_file=str(tls.ca_file))
    assert [o.status for o in send_all(SmtpTransport(settings), batch(*THREE))] == ["sent"] * 3
    with pytest.raises(DeliveryError, match="certificate verification failed"):
        send_all(SmtpTransport(SmtpSettings(host=server.host, port=server.port, security="ssl")), batch("a@x.org"))


def test_login_with_the_right_password(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(auth=("mailer", PASSWORD), auth_require_tls=False)
    settings = plain(server, username="mailer", password=SecretStr(PASSWORD))
    assert [o.status for o in send_all(SmtpTransport(settings), batch(*THREE))] == ["sent"] * 3


@pytest.mark.parametrize("password", [None, "wrong-" + PASSWORD])
def test_login_failure_is_one_line_without_the_password(
    make_smtp_server: MakeServer, password: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_smtp_server(auth=("mailer", PASSWORD), auth_require_tls=False)
    settings = plain(server, username="mailer", password=SecretStr(password) if password else None)
    with pytest.raises(DeliveryError) as err:
        send_all(SmtpTransport(settings), batch("a@x.org"))
    message = str(err.value)
    assert "\n" not in message and f"{server.host}:{server.port}" in message and "login failed" in message
    assert "535" in message and "'mailer'" in message
    assert PASSWORD not in message and PASSWORD not in caplog.text
    assert server.handler.messages == []


def test_no_login_when_the_server_requires_it(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(auth=("mailer", PASSWORD), auth_require_tls=False)
    outcomes = send_all(SmtpTransport(plain(server)), batch("a@x.org", "b@x.org"))
    assert [o.status for o in outcomes] == ["failed", "failed"]  # 530 authentication required at MAIL
    assert "530" in outcomes[0].detail


def test_starttls_and_login(make_smtp_server: MakeServer, tls: TlsFiles) -> None:
    server = make_smtp_server(tls=tls, starttls=True, auth=("mailer", PASSWORD))  # AUTH only after TLS
    settings = SmtpSettings(host=server.host, port=server.port, security="starttls", ca_file=str(tls.ca_file),
                            username="mailer", password=SecretStr(PASSWORD))
    assert [o.status for o in send_all(SmtpTransport(settings), batch(*THREE))] == ["sent"] * 3


# --- outbox ----------------------------------------------------------------------------------


def test_outbox_writes_eml_and_html(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outcomes = send_all(OutboxTransport(outbox), batch("Ada@Example.org", "b@example.org"))
    assert [o.status for o in outcomes] == ["sent", "sent"]
    first = Path(outcomes[0].location or "")
    assert first == outbox / "2026-11-29" / "ada@example.org-1.eml"
    msg = email.message_from_bytes(first.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["To"] == "Ada@Example.org" and msg["Message-ID"] == "<digest-2026-11-29-s101-d1@example.org>"
    html = first.with_suffix(".html").read_text(encoding="utf-8")
    assert html.strip() == "<p>html 1 \u00e9</p>"
    assert sorted(p.name for p in (outbox / "2026-11-29").iterdir()) == [
        "ada@example.org-1.eml", "ada@example.org-1.html", "b@example.org-2.eml", "b@example.org-2.html"]


def test_outbox_redelivery_overwrites(tmp_path: Path) -> None:
    transport = OutboxTransport(tmp_path)
    send_all(transport, batch("a@example.org"))
    send_all(transport, batch("a@example.org"))
    assert len(list((tmp_path / "2026-11-29").iterdir())) == 2  # one .eml, one .html, no temp files


def test_outbox_file_names_are_safe(tmp_path: Path) -> None:
    assert safe_file_part("../../etc/passwd@x.org") == "etc_passwd@x.org"
    assert safe_file_part("..") == "unknown"
    assert len(safe_file_part("a" * 500 + "@x.org")) == 80
    msg = outgoing(7, "a@example.org")
    hostile = OutgoingMessage(7, "../../../evil/" + "x" * 300 + "@example.org", "<not-ours@example.org>", msg.data)
    [outcome] = send_all(OutboxTransport(tmp_path / "out"), [hostile])
    path = Path(outcome.location or "")
    assert path.parent == tmp_path / "out" / "2026-11-29"  # no Message-ID date: the Date header's
    assert path.name.endswith("-7.eml") and "/" not in path.name and len(path.name) < 100


def test_outbox_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.raises(DeliveryError, match="outbox"):
        send_all(OutboxTransport(blocker / "outbox"), batch("a@example.org"))


def test_make_transport(tmp_path: Path) -> None:
    smtp = SmtpSettings()
    assert isinstance(make_transport(DeliverySettings(), smtp, tmp_path), OutboxTransport)
    t = make_transport(DeliverySettings(method="smtp", from_addr=FROM), smtp, tmp_path)
    assert isinstance(t, SmtpTransport) and t.envelope_from == FROM


def test_dot_stuffing_equals_the_line_by_line_rule() -> None:
    """CRLF line ends, a dot doubled at the start of every line, the terminating dot line: the
    byte-replace version gives what the regex rule gives, for clean and for mixed line ends."""
    import re

    from digest.mail.smtp import _dot_stuffed

    def reference(data: bytes) -> bytes:
        body = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
        body = re.sub(rb"(?m)^\.", b"..", body)
        return body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"

    for data in (b"plain\r\ntext\r\n", b".first\r\n.second\r\n..third\r\nend", b"bare\n.lf\r.cr\r\n.\r\n",
                 b"", b".", b"x\r\n.\r\n", b"a=\r\n.6Tz9kJlUq\r\n"):
        assert _dot_stuffed(data) == reference(data), data
