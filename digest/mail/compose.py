"""Turn a rendered digest into a MIME message: multipart/alternative, text/plain first, then HTML.

Every header value passes through :func:`header_value` (CR/LF and controls become spaces, length
bounded), so a paper title or an address can never start a new header. Addresses are parsed
strictly; one that does not parse as a single addr-spec raises ValueError.
"""

from __future__ import annotations

import binascii
import email.policy
import re
from datetime import date, datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from digest.mail.render import RenderedDigest, safe_url

MAX_SUBJECT = 250
MAX_NAME = 120
MAX_ADDRESS = 254
MAX_MESSAGE_ID = 250
# List-Unsubscribe stays one physical line, so keep it under the 998-octet line limit.
MAX_UNSUBSCRIBE_URL = 900

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_URL_FORBIDDEN = re.compile(r"[^\x21-\x7e]|[<>\"',]")


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


def header_value(value: str, limit: int) -> str:
    """One line: CR, LF and other controls become spaces, whitespace collapsed, at most ``limit`` chars."""
    return " ".join(_CONTROLS.sub(" ", value).split())[:limit].rstrip()


def _address(value: str, display_name: str = "", *, what: str) -> Address:
    spec = header_value(value, MAX_ADDRESS + 1)
    if not spec or len(spec) > MAX_ADDRESS:
        raise ValueError(f"{what}: not an email address: {spec[:80]!r}")
    try:
        return Address(display_name=header_value(display_name, MAX_NAME), addr_spec=spec)
    except (ValueError, IndexError):
        # The stdlib parser raises ValueError or a header defect (also a ValueError).
        raise ValueError(f"{what}: not an email address: {spec[:80]!r}") from None


def _unsubscribe(url: str | None) -> str | None:
    url = safe_url(url)
    if url is None or len(url) > MAX_UNSUBSCRIBE_URL or _URL_FORBIDDEN.search(url):
        return None
    return url


def compose_message(
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


def message_domain(from_addr: str) -> str:
    """The domain of an address, lower-cased and checked; "localhost" when there is none usable."""
    domain = header_value(from_addr, MAX_ADDRESS).rpartition("@")[2].strip().lower().rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"
    return domain if _HOSTNAME.match(domain) else "localhost"


def make_message_id(delivery_id: int, digest_date: date, subscriber_id: int, from_addr: str) -> str:
    """A stable Message-ID for one deliveries-ledger row: a resend of the row reuses it.

    Example: ``<digest-2026-11-29-s12-d345@example.org>``. OutboxTransport reads the date back
    from it to choose the day folder.
    """
    return f"<digest-{digest_date:%Y-%m-%d}-s{int(subscriber_id)}-d{int(delivery_id)}@{message_domain(from_addr)}>"
