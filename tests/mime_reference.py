"""The digest email as composed before digest.mail.mime: EmailMessage, the header registry and the
stdlib generator (commit 9ca092e's compose_message, unchanged but for its name).

The reference the new writer is checked against (tests/mail/test_mime.py) and the baseline that
benchmarks/compose_speed.py times it against. Not used by the package.
"""

from __future__ import annotations

import binascii
import email.policy
import re
from datetime import datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from digest.mail.compose import MAX_ADDRESS, MAX_MESSAGE_ID, MAX_NAME, MAX_SUBJECT, _unsubscribe, header_value
from digest.mail.render import RenderedDigest


class _VerbatimHeader(UnstructuredHeader, BaseHeader):
    """Written as-is on one line: the stdlib folder would RFC 2047-encode a long URL and break it."""

    max_count = 1

    def fold(self, *, policy: Any) -> str:
        return f"{self.name}: {self}{policy.linesep}"


def _policy() -> email.policy.EmailPolicy[EmailMessage]:
    # A private registry: mapping types on the shared default registry would leak into other code.
    registry = HeaderRegistry()
    registry.map_to_type("list-unsubscribe", _VerbatimHeader)
    registry.map_to_type("list-unsubscribe-post", _VerbatimHeader)
    return email.policy.SMTP.clone(header_factory=registry)


POLICY = _policy()


def _address(value: str, display_name: str = "", *, what: str) -> Address:
    spec = header_value(value, MAX_ADDRESS + 1)
    if not spec or len(spec) > MAX_ADDRESS:
        raise ValueError(f"{what}: not an email address: {spec[:80]!r}")
    try:
        return Address(display_name=header_value(display_name, MAX_NAME), addr_spec=spec)
    except (ValueError, IndexError):
        # The stdlib parser raises ValueError or a header defect (also a ValueError).
        raise ValueError(f"{what}: not an email address: {spec[:80]!r}") from None


def compose_stdlib(
    rendered: RenderedDigest,
    *,
    from_addr: str,
    from_name: str,
    to_addr: str,
    message_id: str,
    date: datetime,
    unsubscribe_url: str | None,
) -> EmailMessage:
    """The digest email, ready for ``as_bytes()`` (CRLF line ends, 7-bit clean).

    ``date`` should be timezone-aware; a naive datetime is written with the "-0000" (unknown
    zone) offset, as RFC 5322 prescribes. List-Unsubscribe is added for an http(s) URL;
    List-Unsubscribe-Post (RFC 8058 one-click) only for https, which that RFC requires.
    """
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _address(from_addr, from_name, what="from_addr")
    msg["To"] = _address(to_addr, what="to_addr")
    msg["Subject"] = header_value(rendered.subject, MAX_SUBJECT)
    msg["Date"] = format_datetime(date)
    mid = header_value(message_id, MAX_MESSAGE_ID).replace(" ", "")
    if not re.fullmatch(r"<[^<>@]+@[^<>@]+>", mid):
        raise ValueError(f"message_id: not a <local@domain> Message-ID: {mid[:80]!r}")
    msg["Message-ID"] = mid
    unsubscribe = _unsubscribe(unsubscribe_url)
    if unsubscribe:
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
        if unsubscribe.lower().startswith("https://"):
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = "multipart/alternative"
    msg.attach(_quoted_printable_part(rendered.text, "plain"))
    msg.attach(_quoted_printable_part(rendered.html, "html"))
    return msg


def _quoted_printable_part(body: str, subtype: str) -> EmailMessage:
    """A text part encoded quoted-printable, so the message stays 7-bit and no relay needs 8BITMIME.

    binascii's encoder (C) instead of set_content's (Python): composing ten thousand digests a day,
    it is most of the cost (about 3 ms a message otherwise).
    """
    part = EmailMessage(policy=POLICY)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    text = body if body.endswith("\n") else body + "\n"
    part.set_payload(binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"))
    return part
