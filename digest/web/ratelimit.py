"""The sign-up rate limit: per IP and per address, counted in the signups table.

Counting stored rows (not an in-memory counter) means every server process and every restart sees
the same numbers; the rows are needed for double opt-in anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from digest.store import signups


@dataclass(frozen=True)
class SignupLimits:
    per_ip: int = 10  # 0: no limit
    per_address: int = 3
    window: timedelta = timedelta(hours=1)


def refusal(conn: Connection, limits: SignupLimits, *, ip: str, email: str, now: datetime) -> str | None:
    """Why this sign-up must wait, or None when it may go ahead."""
    since = now - limits.window
    if limits.per_ip and signups.count_since(conn, since, ip=ip) >= limits.per_ip:
        return "Too many sign-ups from your network in a short time."
    if limits.per_address and signups.count_since(conn, since, email=email) >= limits.per_address:
        return "Several confirmation emails went to this address recently: please use the latest one."
    return None
