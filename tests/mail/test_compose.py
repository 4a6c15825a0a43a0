"""compose_message / make_message_id: MIME structure, headers, header-injection defence."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage

import pytest

from digest.mail.compose import ComposedMessage, compose_message, header_value, make_message_id
from digest.mail.render import RenderedDigest

NOW = datetime(2026, 11, 29, 6, 0, 5, tzinfo=UTC)
MID = "<digest-2026-11-29-s12-d345@example.org>"
UNSUB = "https://digest.example.org/unsubscribe?token=" + "Ab0_-" * 40
RENDERED = RenderedDigest(
    subject="Your paper digest for 29 Nov 2026: 2 picks",
    text="PAPER DIGEST\nSchr\u00f6dinger bridges \u2014 a survey\n",
    html="<p>Schr\u00f6dinger bridges \u2014 a survey</p>\n",
)


def compose(rendered: RenderedDigest = RENDERED, **kw: object) -> ComposedMessage:
    args: dict[str, object] = {
        "from_addr": "digest@example.org",
        "from_name": "Paper digest",
        "to_addr": "ada@example.org",
        "message_id": MID,
        "date": NOW,
        "unsubscribe_url": UNSUB,
    }
    args.update(kw)
    return compose_message(rendered, **args)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def header_lines(data: bytes) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return head.split("\r\n")


def test_text_first_then_html_and_both_parse() -> None:
    data = compose().as_bytes()
    msg = parse(data)
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert parts[0].get_content().replace("\r\n", "\n") == RENDERED.text
    assert parts[1].get_content().replace("\r\n", "\n") == RENDERED.html
    assert msg.get_body(preferencelist=("plain",)) is parts[0]
    assert msg.get_body(preferencelist=("html",)) is parts[1]
    assert max(data) < 128  # 7-bit clean: no relay needs 8BITMIME
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF line ends only


def test_headers() -> None:
    data = compose(from_name="Paper digest \u00b7 M\u00fcnchen").as_bytes()
    msg = parse(data)
    assert msg["From"].addresses[0].display_name == "Paper digest \u00b7 M\u00fcnchen"
    assert msg["From"].addresses[0].addr_spec == "digest@example.org"
    assert "=?utf-8?" in header_lines(data)[0]  # the non-ASCII name is RFC 2047-encoded
    assert msg["To"] == "ada@example.org"
    assert msg["Subject"] == RENDERED.subject
    assert msg["Date"].datetime == NOW
    assert msg["Message-ID"] == MID
    assert msg["MIME-Version"] == "1.0"
    assert msg["List-Unsubscribe"] == f"<{UNSUB}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p["MIME-Version"] for p in msg.iter_parts()] == [None, None]
    for name in ("Precedence", "Auto-Submitted", "Bcc", "Cc"):
        assert msg[name] is None


def test_long_unsubscribe_url_stays_one_verbatim_line() -> None:
    # The pipeline serialises with the stock SMTP policy; the URL must not be RFC 2047-encoded.
    for data in (compose().as_bytes(), compose().as_bytes(policy=email.policy.SMTP)):
        lines = header_lines(data)
        assert f"List-Unsubscribe: <{UNSUB}>" in lines
        assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in lines


@pytest.mark.parametrize("url", [None, "", "javascript:alert(1)", "mailto:x@example.org", "https://e.org/a b",
                                 "https://e.org/<x>", "https://e.org/" + "a" * 1000])
def test_no_list_unsubscribe_without_a_usable_url(url: str | None) -> None:
    msg = parse(compose(unsubscribe_url=url).as_bytes())
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None


def test_http_unsubscribe_gets_no_one_click_post() -> None:
    msg = parse(compose(unsubscribe_url="http://localhost:8000/u/abc").as_bytes())
    assert msg["List-Unsubscribe"] == "<http://localhost:8000/u/abc>"
    assert msg["List-Unsubscribe-Post"] is None  # RFC 8058 one-click needs https


def test_crlf_in_header_values_cannot_inject_headers() -> None:
    evil = RenderedDigest(subject="Top pick: <b>x</b>\r\nBcc: victim@example.net\r\n\r\nbody", text="t\n", html="h\n")
    data = compose(evil, from_name="Digest\r\nBcc: victim@example.net", to_addr="ada@example.org\r\n",
                   message_id=MID + "\r\n").as_bytes()
    msg = parse(data)
    assert msg["Bcc"] is None
    assert not any(line.lower().startswith("bcc:") for line in header_lines(data))
    assert msg["Subject"] == "Top pick: <b>x</b> Bcc: victim@example.net body"
    assert msg["To"] == "ada@example.org"
    assert msg["Message-ID"] == MID
    for name in ("From", "To", "Subject", "Message-ID", "Date"):
        assert "\n" not in str(msg[name]) and "\r" not in str(msg[name])


@pytest.mark.parametrize("addr", ["ada@example.org\r\nBcc: victim@example.net", "ada@example.org, eve@example.net",
                                  "Ada <ada@example.org>", "", "not an address", "a@" + "b" * 260 + ".org"])
def test_bad_recipient_is_refused(addr: str) -> None:
    with pytest.raises(ValueError, match="to_addr"):
        compose(to_addr=addr)


def test_an_address_the_parser_would_change_is_refused() -> None:
    # The stdlib parser reads "a(comment)@example.org" as a@example.org: not the address stored.
    with pytest.raises(ValueError, match="to_addr"):
        compose(to_addr="a(comment)@example.org")


@pytest.mark.parametrize("addr", ["digest@example.org\r\nBcc: victim@example.net", "a@b, c@d", "",
                                  "j\u00fcrgen@example.org", "digest@example..org"])
def test_bad_sender_is_refused(addr: str) -> None:
    with pytest.raises(ValueError, match="^from_addr: not an email address"):
        compose(from_addr=addr)


def test_bad_message_id_is_refused() -> None:
    with pytest.raises(ValueError, match="message_id"):
        compose(message_id="no-brackets@example.org")


def test_subject_is_bounded() -> None:
    msg = parse(compose(RenderedDigest(subject="word " * 200, text="t", html="h")).as_bytes())
    assert len(msg["Subject"]) <= 250
    assert header_value("a\r\nb\tc\x00d  e", 100) == "a b c d e"
    assert header_value("x" * 50, 10) == "x" * 10


def test_date_keeps_the_offset() -> None:
    cet = timezone(timedelta(hours=1))
    msg = parse(compose(date=datetime(2026, 11, 29, 7, 0, tzinfo=cet)).as_bytes())
    assert msg["Date"] == "Sun, 29 Nov 2026 07:00:00 +0100"


def test_make_message_id() -> None:
    mid = make_message_id(345, date(2026, 11, 29), 12, "Digest@Example.ORG")
    assert mid == "<digest-2026-11-29-s12-d345@example.org>"
    assert make_message_id(345, date(2026, 11, 29), 12, "Digest@Example.ORG") == mid  # stable per row
    assert make_message_id(346, date(2026, 11, 29), 12, "digest@example.org") != mid
    assert make_message_id(1, date(2026, 1, 2), 3, "digest@localhost") == "<digest-2026-01-02-s3-d1@localhost>"
    assert make_message_id(1, date(2026, 1, 2), 3, "bad@ho st>").endswith("@localhost>")
    idn = make_message_id(1, date(2026, 1, 2), 3, "d@b\u00fccher.example")
    assert idn == "<digest-2026-01-02-s3-d1@xn--bcher-kva.example>"
    assert parse(compose(message_id=mid).as_bytes())["Message-ID"] == mid


def test_address_fast_path_agrees_with_the_stdlib_parser() -> None:
    from email.headerregistry import Address

    for addr in ["ada@example.org", "Ada.Lovelace+digest@Sub.Example.ORG", "a!#$%&'*+/=?^_`{|}~-@x-y.z",
                 "a=?b@example.org", "a@b", "a@-x-", "=?utf-8?q?x?=@example.org", "a..b@example.org",
                 ".a@example.org", "a.@example.org", "a@b..c", '"a b"@example.org']:
        try:
            expected = Address(addr_spec=addr).addr_spec
        except Exception:  # ValueError, or HeaderParseError for "a@b..c"
            expected = None
        try:
            got = parse(compose(to_addr=addr).as_bytes())["To"]
        except ValueError as exc:
            assert str(exc).startswith("to_addr: not an email address")
            got = None
        assert (got and str(got)) == expected, addr
