"""The send-rate limit, with a clock passed in."""

from __future__ import annotations

import threading
import time

from digest.mail.pacing import RateLimiter


def test_unlimited_never_waits() -> None:
    limiter = RateLimiter(0)
    started = time.monotonic()
    assert all(limiter.wait() for _ in range(1000))
    assert time.monotonic() - started < 0.5


def test_messages_are_spaced_by_the_rate() -> None:
    limiter = RateLimiter(20)  # one every 50 ms
    started = time.monotonic()
    for _ in range(5):
        assert limiter.wait()
    assert time.monotonic() - started >= 4 * 0.05 - 0.01


def test_a_stop_cuts_the_wait_short() -> None:
    limiter = RateLimiter(0.1)  # one every 10 s
    stop = threading.Event()
    assert limiter.wait(stop)
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    assert not limiter.wait(stop)  # stopped while waiting: send nothing
    assert time.monotonic() - started < 2
