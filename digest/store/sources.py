"""Per-source fetch state: ETag / Last-Modified for conditional requests, last outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from digest.store.schema import sources


@dataclass(frozen=True)
class SourceState:
    etag: str | None
    last_modified: str | None


def get_state(conn: Connection, name: str, location: str) -> SourceState:
    row = conn.execute(select(sources).where(sources.c.name == name)).first()
    # A source pointed somewhere else starts afresh: its old validators mean nothing there.
    if row is None or row.location != location:
        return SourceState(None, None)
    return SourceState(row.etag, row.last_modified)


def record_fetch(
    conn: Connection,
    *,
    name: str,
    location: str,
    kind: str,
    now: datetime,
    status: str,
    error: str | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    keep_validators: bool = False,
) -> None:
    values = {
        "location": location,
        "kind": kind,
        "last_fetched_at": now,
        "last_status": status,
        "last_error": error,
    }
    if not keep_validators:
        values.update(etag=etag, last_modified=last_modified)
    row = conn.execute(select(sources.c.id).where(sources.c.name == name)).first()
    if row is None:
        conn.execute(insert(sources).values(name=name, **values))
    else:
        conn.execute(update(sources).where(sources.c.id == row.id).values(**values))


def last_fetched(conn: Connection, names: list[str]) -> dict[str, datetime | None]:
    """When each named source was last fetched (None: never)."""
    rows = conn.execute(select(sources.c.name, sources.c.last_fetched_at).where(sources.c.name.in_(names)))
    found = {name: at for name, at in rows}
    return {n: found.get(n) for n in names}
