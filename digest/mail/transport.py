"""Transports: hand composed messages to an SMTP server (smtp.py) or write them to an outbox (outbox.py).

A transport sends one message at a time (send) and is closed after the batch (close); send_all()
does a whole list. Each message gets a DeliveryOutcome: "sent", "failed" (permanent, a 5xx),
"temp_failed" (try again later: a 4xx, or the connection went away before the message was handed
over) or "unknown" (the connection died after the message was handed over and before the reply).
A transport that cannot start at all (no connection, TLS or login failure, unwritable outbox)
raises DeliveryError from send, so nothing is recorded as attempted for that message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from digest.config import DeliverySettings, SmtpSettings
from digest.domain import DeliveryOutcome, OutgoingMessage, Status
from digest.errors import DeliveryError

log = logging.getLogger(__name__)

SENT, FAILED, TEMP_FAILED, UNKNOWN = Status.SENT, Status.FAILED, Status.TEMP_FAILED, Status.UNKNOWN

# Called right before a message's content is handed over (the ledger marks the ambiguous window).
OnHandover = Callable[[], None]


class Transport(Protocol):
    def send(self, message: OutgoingMessage, on_handover: OnHandover | None = None) -> DeliveryOutcome: ...

    def close(self) -> None: ...


def send_all(transport: Transport, messages: Iterable[OutgoingMessage]) -> list[DeliveryOutcome]:
    """Send a list and close. If the transport cannot start for the first message, DeliveryError;
    if it stops working later, the rest are temp_failed."""
    outcomes: list[DeliveryOutcome] = []
    pending = list(messages)
    try:
        for i, message in enumerate(pending):
            try:
                outcomes.append(transport.send(message))
            except DeliveryError as exc:
                if not outcomes:
                    raise
                log.error("%s; %d message(s) left for a retry", exc, len(pending) - i)
                outcomes += [DeliveryOutcome(m.key, TEMP_FAILED, str(exc)) for m in pending[i:]]
                break
    finally:
        transport.close()
    return outcomes


def make_transport(delivery: DeliverySettings, smtp: SmtpSettings, outbox_dir: Path) -> Transport:
    # Imported here: both import this module's protocol and outcomes.
    from digest.mail.outbox import OutboxTransport
    from digest.mail.smtp import SmtpTransport

    if delivery.method == "smtp":
        return SmtpTransport(smtp, envelope_from=delivery.from_addr)
    return OutboxTransport(outbox_dir)
