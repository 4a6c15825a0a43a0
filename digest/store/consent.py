"""Consent records: when a subscriber signed up and confirmed, from which IP, to which wording."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from digest.store.schema import consents


def record_consent(conn: Connection, *, subscriber_id: int, signed_up_at: datetime, signup_ip: str,
                   confirmed_at: datetime, confirm_ip: str, wording_version: str, wording_sha256: str,
                   wording: str) -> int:
    return int(conn.execute(
        insert(consents).values(subscriber_id=subscriber_id, signed_up_at=signed_up_at, signup_ip=signup_ip[:64],
                                confirmed_at=confirmed_at, confirm_ip=confirm_ip[:64],
                                wording_version=wording_version, wording_sha256=wording_sha256, wording=wording)
        .returning(consents.c.id)
    ).scalar_one())


def consents_for(conn: Connection, subscriber_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(consents).where(consents.c.subscriber_id == subscriber_id).order_by(consents.c.id))
    return [{k: v for k, v in r._mapping.items() if k not in ("id", "subscriber_id")} for r in rows]
