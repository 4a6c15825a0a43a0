"""Messages composed ahead of the send loop, in order, so that the loop only claims, sends and records.

Composing (rendering both templates, signing the links, writing the MIME) is Python work of about a
millisecond a message. On a second thread it shares the interpreter lock with the send loop, whose
every database step and SMTP reply then waits for the lock: a large batch is composed in a forked
process instead, a window of messages ahead (memory stays bounded whatever the batch). A small
batch, a platform without fork, a process running other threads (the service: a lock another
thread held at the fork would stay locked in the child) or a daemonic one (a Celery worker's pool
process may not have children) uses the thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from digest.domain import OutgoingMessage
from digest.process.forked import ForkedWorker, fork_available

THREAD_AHEAD = 8  # messages a thread composes ahead of the one being sent (each some tens of KB)
PROCESS_MIN = 500  # messages: below, starting a process costs more than it saves
CHUNK = 16  # messages a forked process composes per request
WINDOW = 8  # requests outstanding: at most CHUNK * WINDOW messages wait in memory
# A forked composer that has not answered a request in this long is stuck: the run stops with an
# error instead of waiting for ever; no row was claimed for that message. (One that died fails its
# requests at once: the executor sees the process end.)
ANSWER_TIMEOUT_S = 300.0

Compose = Callable[[], OutgoingMessage]
log = logging.getLogger(__name__)


class Composer(Protocol):
    def next(self) -> Future[OutgoingMessage]:
        """The next message, in the order of the batch (ValueError inside: refused by the composer)."""

    def close(self) -> None: ...


def open_composer(composers: Sequence[Compose], initializer: Callable[[], None] | None = None) -> Composer:
    """initializer: run first in a forked composer (to drop inherited database connections)."""
    if len(composers) >= PROCESS_MIN and _may_fork():
        try:
            return ForkedComposer(composers, initializer)
        except (OSError, AssertionError, BrokenProcessPool) as exc:  # no process to be had: the thread does the work
            log.warning("composing on a thread: no forked process (%s)", exc)
    return ThreadComposer(composers)


def _may_fork() -> bool:
    return fork_available() and threading.active_count() == 1


class ThreadComposer:
    def __init__(self, composers: Sequence[Compose]) -> None:
        self.composers = composers
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compose")
        self._ahead: deque[Future[OutgoingMessage]] = deque()
        self._queued = self._taken = 0

    def next(self) -> Future[OutgoingMessage]:
        while self._queued < len(self.composers) and self._queued <= self._taken + THREAD_AHEAD:
            self._ahead.append(self._pool.submit(self.composers[self._queued]))
            self._queued += 1
        self._taken += 1
        return self._ahead.popleft()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _composed(compose: Compose) -> OutgoingMessage | str:
    """In the forked process: the message, or why the composer refused it (it travels as text)."""
    try:
        return compose()
    except ValueError as exc:
        return str(exc)


class ForkedComposer:
    def __init__(self, composers: Sequence[Compose], initializer: Callable[[], None] | None = None) -> None:
        self.composers = composers
        self._worker = ForkedWorker(lambda i: _composed(composers[i]), initializer)
        self._requests: deque[Future[list[OutgoingMessage | str]]] = deque()
        self._ready: deque[OutgoingMessage | str] = deque()
        self._requested = 0

    def next(self) -> Future[OutgoingMessage]:
        while self._requested < len(self.composers) and len(self._requests) < WINDOW:
            stop = min(self._requested + CHUNK, len(self.composers))
            self._requests.append(self._worker.submit(self._requested, stop))
            self._requested = stop
        if not self._ready:
            try:
                self._ready.extend(self._requests.popleft().result(timeout=ANSWER_TIMEOUT_S))
            except TimeoutError:
                self._worker.stop()  # stuck: closing would wait for it for ever
                raise RuntimeError(f"the composing process gave no message in {ANSWER_TIMEOUT_S:.0f} s") from None
            except BrokenProcessPool:
                raise RuntimeError("the composing process gave no message: it ended") from None
        item = self._ready.popleft()
        out: Future[OutgoingMessage] = Future()
        if isinstance(item, str):
            out.set_exception(ValueError(item))
        else:
            out.set_result(item)
        return out

    def close(self) -> None:
        self._worker.close()
