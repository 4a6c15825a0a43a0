"""The outbox transport: each message written as a file (and its HTML part beside it), for a
demo, a test, or a relay that picks files up."""

from __future__ import annotations

import contextlib
import email.policy
import logging
import os
import re
import tempfile
from email.parser import BytesHeaderParser, BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from digest.domain import DeliveryOutcome, OutgoingMessage
from digest.errors import DeliveryError
from digest.mail.transport import SENT, OnHandover

log = logging.getLogger(__name__)

_MID_DATE = re.compile(r"^<digest-(\d{4}-\d{2}-\d{2})-")
_UNSAFE_NAME = re.compile(r"[^a-z0-9@._+-]+")


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

    def send(self, message: OutgoingMessage, on_handover: OnHandover | None = None) -> DeliveryOutcome:
        path = self.path_for(message)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            html = _html_part(message.data)
            if html is not None:
                _atomic_write(path.with_suffix(".html"), html.encode("utf-8"))
            if on_handover is not None:
                on_handover()
            # The .eml last: it is the record that the message was delivered.
            _atomic_write(path, message.data)
        except OSError as exc:
            raise DeliveryError(f"outbox {self.outbox_dir}: cannot write {path.name}: {exc.strerror or exc}") from None
        return DeliveryOutcome(message.key, SENT, "written to outbox", location=str(path))

    def close(self) -> None:
        pass


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
