"""Turn a rendered digest into a MIME message: multipart/alternative, text/plain first, then HTML.

Every header value passes through :func:`header_value` (CR/LF and controls become spaces, length
bounded), so a paper title or an address can never start a new header. Addresses are parsed
strictly; one that does not parse as a single addr-spec raises ValueError. The bytes are written
by digest.mail.mime (no EmailMessage: it was most of the cost of a digest).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import format_datetime

from digest.mail import mime
from digest.mail.mime import ComposedMessage
from digest.mail.render import RenderedDigest
from digest.text import safe_url

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
# A dot-atom local part at a dot-atom ASCII domain, no "=?": every such address is one the stdlib
# parser accepts unchanged, so it skips that parser (about 40 us); anything else goes through it
# ("=?" would be read as an encoded-word there).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_MESSAGE_ID = re.compile(r"<[^<>@]+@[^<>@]+>")

__all__ = ["ComposedMessage", "compose_message", "header_value", "make_message_id", "message_domain"]


def header_value(value: str, limit: int) -> str:
    """One line: CR, LF and other controls become spaces, whitespace collapsed, at most ``limit`` chars."""
    return " ".join(_CONTROLS.sub(" ", value).split())[:limit].rstrip()


def _addr_spec(value: str, *, what: str) -> str:
    """The address as written in the header (ASCII: an IDN domain in its xn-- form); ValueError naming ``what``."""
    spec = header_value(value, MAX_ADDRESS + 1)
    if not spec or len(spec) > MAX_ADDRESS:
        raise ValueError(f"{what}: not an email address: {spec[:80]!r}")
    if _PLAIN_ADDRESS.fullmatch(spec) and "=?" not in spec:
        return spec
    try:
        parsed = Address(addr_spec=spec)
        local = parsed.addr_spec.rpartition("@")[0]
        domain = parsed.domain.encode("idna").decode("ascii") if not parsed.domain.isascii() else parsed.domain
    except (ValueError, IndexError, UnicodeError, HeaderParseError):
        # The stdlib parser raises ValueError, a header defect (also a ValueError) or, for some
        # malformed domains ("a@b..c"), HeaderParseError; the IDNA codec UnicodeError.
        raise ValueError(f"{what}: not an email address: {spec[:80]!r}") from None
    # The parser drops comments ("a(x)@b" is a@b): an address it had to change is not the one stored.
    if not local.isascii() or not domain or local != spec.rpartition("@")[0]:
        raise ValueError(f"{what}: not an email address: {spec[:80]!r}")
    return f"{local}@{domain}"


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
) -> ComposedMessage:
    """The digest email, ready for ``as_bytes()`` (CRLF line ends, 7-bit clean).

    ``date`` should be timezone-aware; a naive datetime is written with the "-0000" (unknown
    zone) offset, as RFC 5322 prescribes. List-Unsubscribe is added for an http(s) URL, verbatim on
    one line (folding or encoding would break the URL); List-Unsubscribe-Post (RFC 8058 one-click)
    only for https, which that RFC requires.
    """
    sender = _addr_spec(from_addr, what="from_addr")
    name = header_value(from_name, MAX_NAME)
    recipient = _addr_spec(to_addr, what="to_addr")
    mid = header_value(message_id, MAX_MESSAGE_ID).replace(" ", "")
    if not _MESSAGE_ID.fullmatch(mid):
        raise ValueError(f"message_id: not a <local@domain> Message-ID: {mid[:80]!r}")
    subject = header_value(rendered.subject, MAX_SUBJECT)
    when = format_datetime(date)
    headers = [("From", f"{name} <{sender}>" if name else sender), ("To", recipient), ("Subject", subject),
               ("Date", when), ("Message-ID", mid)]
    lines = [mime.mailbox("From", name, sender), f"To: {recipient}", mime.unstructured("Subject", subject),
             f"Date: {when}", f"Message-ID: {mid}"]
    unsubscribe = _unsubscribe(unsubscribe_url)
    if unsubscribe:
        headers.append(("List-Unsubscribe", f"<{unsubscribe}>"))
        if unsubscribe.lower().startswith("https://"):
            headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        lines += [f"{key}: {value}" for key, value in headers[5:]]  # ASCII, one line each, unfolded
    headers += [("MIME-Version", "1.0"), ("Content-Type", "multipart/alternative")]
    lines.append("MIME-Version: 1.0")
    data = mime.multipart_alternative(lines, [("plain", rendered.text), ("html", rendered.html)])
    return ComposedMessage(headers=tuple(headers), data=data)


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
