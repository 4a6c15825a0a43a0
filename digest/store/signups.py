"""Pending sign-ups (double opt-in): created by the subscribe page, confirmed once by a signed link.

A row keeps its confirmed_at after use, so a replayed link is told apart from a forged one until the
row is purged. The rows also count the sign-ups per IP and per address for the rate limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from digest.addresses import address_key, mailbox_key
from digest.store.schema import signups


@dataclass(frozen=True)
class Signup:
    id: int
    email: str
    nonce: str
    preferences: dict[str, Any]
    ip: str
    consent_version: str
    consent_sha256: str
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None


def create_signup(conn: Connection, *, email: str, nonce: str, preferences: dict[str, Any], ip: str,
                  consent_version: str, consent_sha256: str, now: datetime, expires_at: datetime) -> int:
    return int(conn.execute(
        insert(signups).values(email=email, mailbox=mailbox_key(email), nonce=nonce, preferences=preferences,
                               ip=ip[:64], consent_version=consent_version, consent_sha256=consent_sha256,
                               created_at=now, expires_at=expires_at)
        .returning(signups.c.id)
    ).scalar_one())


def get_signup(conn: Connection, signup_id: int) -> Signup | None:
    row = conn.execute(select(signups).where(signups.c.id == signup_id)).first()
    if row is None:
        return None
    m = row._mapping
    return Signup(m["id"], m["email"], m["nonce"], dict(m["preferences"] or {}), m["ip"], m["consent_version"],
                  m["consent_sha256"], m["created_at"], m["expires_at"], m["confirmed_at"])


def mark_confirmed(conn: Connection, signup_id: int, now: datetime) -> bool:
    """Use the sign-up. False if it was used already (two clicks racing: only one wins)."""
    res = conn.execute(
        update(signups).where(signups.c.id == signup_id, signups.c.confirmed_at.is_(None)).values(confirmed_at=now)
    )
    return res.rowcount == 1


def newest_id(conn: Connection, email: str) -> int | None:
    """The newest sign-up for this address: only its link may act (an older one was replaced)."""
    value = conn.execute(select(func.max(signups.c.id)).where(signups.c.email == email)).scalar()
    return int(value) if value is not None else None


def count_since(conn: Connection, since: datetime, *, ip: str | None = None, email: str | None = None) -> int:
    """Sign-ups since then from this IP, or to this address's mailbox (any case, any +tag)."""
    q = select(func.count()).select_from(signups).where(signups.c.created_at >= since)
    if ip is not None:
        q = q.where(signups.c.ip == ip[:64])
    if email is not None:
        q = q.where(signups.c.mailbox == mailbox_key(email))
    return int(conn.execute(q).scalar_one())


def delete_signup(conn: Connection, signup_id: int) -> None:
    conn.execute(delete(signups).where(signups.c.id == signup_id))


def purge(conn: Connection, before: datetime) -> int:
    """Forget sign-ups that expired (or were used) before this time."""
    return int(conn.execute(delete(signups).where(signups.c.expires_at < before)).rowcount)


def delete_for_email(conn: Connection, email: str) -> int:
    """Forget the sign-ups of this address, whatever its case."""
    return int(conn.execute(delete(signups).where(func.lower(signups.c.email) == address_key(email))).rowcount)


def list_for_email(conn: Connection, email: str) -> list[Signup]:
    ids = conn.execute(select(signups.c.id).where(func.lower(signups.c.email) == address_key(email))
                       .order_by(signups.c.id)).scalars()
    return [s for s in (get_signup(conn, i) for i in list(ids)) if s is not None]
