"""A send-rate limit: at most rate_per_s messages a second, waiting in a way a stop can cut short."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self.clock = clock
        self._next = 0.0

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Block until the next message may go. False if stop was set meanwhile (send nothing)."""
        if self.interval:
            delay = self._next - self.clock()
            if delay > 0:
                if stop is not None:
                    if stop.wait(delay):
                        return False
                else:
                    time.sleep(delay)
            self._next = max(self._next, self.clock()) + self.interval
        return not (stop is not None and stop.is_set())
