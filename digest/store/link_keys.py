"""Each subscriber's link key, for the link builder: read per link on the web (a reader who just
signed out gets fresh links at once), read once for all readers in a run that mails thousands."""

from __future__ import annotations

from sqlalchemy import Engine

from digest.store import subscribers as sub_store


class StoredLinkKeys:
    def __init__(self, engine: Engine, *, whole_table: bool = False) -> None:
        self.engine = engine
        self.whole_table = whole_table
        self._known: dict[int, str | None] | None = None

    def __call__(self, subscriber_id: int) -> str | None:
        if not self.whole_table:
            with self.engine.connect() as conn:
                state = sub_store.link_key_state(conn, subscriber_id)
            return state[0] if state else None
        if self._known is None or subscriber_id not in self._known:
            with self.engine.connect() as conn:  # a reader who subscribed since the last read
                self._known = sub_store.link_keys(conn)
        return self._known.get(subscriber_id)
