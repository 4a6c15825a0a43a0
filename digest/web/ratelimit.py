"""The sign-up rate limit: per IP and per address, counted in the signups table; and the feed's
fetches, counted in memory.

Counting stored sign-ups (not an in-memory counter) means every server process and every restart
sees the same numbers; the rows are needed for double opt-in anyway. A feed poll stores nothing, and
a write per poll would cost more than the poll: its count is per server process (RecentRequests).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Hashable
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


class RecentRequests:
    """At most `limit` requests per key in any `window`, in this process's memory. The keys kept are
    bounded (the least recently seen go first), so a flood of keys cannot grow it without end."""

    def __init__(self, limit: int, window: timedelta, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._seen: OrderedDict[Hashable, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()  # sync routes run in a thread pool

    def wait(self, key: Hashable, now: datetime) -> float | None:
        """Count a request now: None when it may go ahead, else the seconds until one may."""
        with self._lock:
            times = self._seen.pop(key, None) or deque()
            while times and now - times[0] >= self.window:
                times.popleft()
            self._seen[key] = times
            if len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
            if len(times) >= self.limit:
                return (times[0] + self.window - now).total_seconds()
            times.append(now)
            return None
