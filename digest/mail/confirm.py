"""The sign-up confirmation email (double opt-in): rendered from email/confirm.*.j2, sent through the
configured transport (outbox or SMTP) like a digest, but outside the deliveries ledger.
"""

from __future__ import annotations

import email.policy
import secrets
from collections.abc import Callable
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import jinja2

from digest.domain import DeliveryOutcome, OutgoingMessage
from digest.mail.compose import MAX_ADDRESS, MAX_NAME, header_value, message_domain
from digest.mail.render import bundled_templates_dir
from digest.mail.transport import Transport, send_all

SUBJECT = "Confirm your paper digest subscription"
SUBJECT_UPDATE = "Confirm the change to your paper digest subscription"


class ConfirmationMailer:
    def __init__(self, transport_factory: Callable[[], Transport], *, from_addr: str, from_name: str,
                 templates_dir: str | None = None) -> None:
        self.transport_factory = transport_factory
        self.from_addr = from_addr
        self.from_name = from_name
        search = [Path(templates_dir).expanduser()] if templates_dir else []
        search.append(bundled_templates_dir())
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(p) for p in search]),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        )

    def compose(self, *, key: int, to_addr: str, confirm_url: str, expires_hours: int,
                now: datetime, updating: bool = False) -> OutgoingMessage:
        """updating: the address has a subscription, which confirming changes (the mail says so)."""
        ctx = {"confirm_url": confirm_url, "expires_hours": expires_hours, "to_addr": to_addr, "updating": updating}
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = Address(display_name=header_value(self.from_name, MAX_NAME), addr_spec=self.from_addr)
        msg["To"] = Address(addr_spec=header_value(to_addr, MAX_ADDRESS))
        msg["Subject"] = SUBJECT_UPDATE if updating else SUBJECT
        msg["Date"] = format_datetime(now)
        message_id = f"<confirm-{int(key)}-{secrets.token_hex(4)}@{message_domain(self.from_addr)}>"
        msg["Message-ID"] = message_id
        msg["Auto-Submitted"] = "auto-generated"  # no vacation auto-replies to a sign-up
        msg.set_content(self.env.get_template("email/confirm.txt.j2").render(ctx), subtype="plain", charset="utf-8",
                        cte="quoted-printable")
        msg.add_alternative(self.env.get_template("email/confirm.html.j2").render(ctx), subtype="html",
                            charset="utf-8", cte="quoted-printable")
        for part in msg.iter_parts():
            del part["MIME-Version"]
        return OutgoingMessage(key=key, to_addr=to_addr, message_id=message_id,
                               data=msg.as_bytes(policy=email.policy.SMTP))

    def send(self, *, key: int, to_addr: str, confirm_url: str, expires_hours: int, now: datetime,
             updating: bool = False) -> DeliveryOutcome:
        """One outcome (sent, failed, temp_failed); DeliveryError when the transport cannot start."""
        message = self.compose(key=key, to_addr=to_addr, confirm_url=confirm_url, expires_hours=expires_hours,
                               now=now, updating=updating)
        return send_all(self.transport_factory(), [message])[0]
