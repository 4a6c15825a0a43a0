"""The send loop: one ledger row at a time, claimed, handed to the transport, recorded.

Claiming and recording each message on its own (not the batch at the end) is what bounds a crash
to one ambiguous message: at any moment this process holds at most one row in "sending". The loop
also applies the rate limit, pauses after too many consecutive errors, and stops between messages
when asked (SIGTERM).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import Connection, Engine

from digest.domain import DeliveryOutcome, OutgoingMessage, Status, SubscriberOutcome
from digest.errors import DeliveryError
from digest.mail.ahead import open_composer
from digest.mail.pacing import RateLimiter
from digest.mail.transport import Transport
from digest.process import owner
from digest.store import deliveries as ledger
from digest.store import subscribers as sub_store

log = logging.getLogger(__name__)


class Relay(Enum):
    """What one message told of the relay: the send loop pauses after too many errors in a row."""

    ERROR = "error"  # no session, or a refusal that is not about the address: counts towards a pause
    WORKS = "works"  # a delivery, or a refusal of that one address: the count starts again
    SILENT = "silent"  # nothing about it (the message never reached the relay)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try: retry schedule and deadline, bounces, rate, when to pause."""

    retry_backoff_s: float = 300.0
    retry_backoff_max_s: float = 7200.0
    retry_for: timedelta = timedelta(hours=24)
    max_hard_bounces: int = 3
    rate_per_s: float = 0.0
    max_consecutive_errors: int = 5

    def next_attempt(self, attempts: int, now: datetime, retry_after_s: float | None = None) -> datetime:
        """When a row that has failed `attempts` times may be tried again: exponential backoff, or what
        the server asked for (retry_after_s, HTTP Retry-After), within retry_backoff_max_s either way."""
        delay = self.retry_backoff_s * 2 ** max(attempts - 1, 0) if retry_after_s is None else retry_after_s
        return now + timedelta(seconds=min(max(delay, 0.0), self.retry_backoff_max_s))


@dataclass(frozen=True)
class Job:
    """One ledger row to send; compose builds its message (ValueError: an address it refuses)."""

    row: ledger.Delivery
    subscriber_id: int
    email: str
    n_picks: int
    compose: Callable[[], OutgoingMessage]
    channel: str = "email"  # a chat channel's masked label: no bounce bookkeeping, shown in its outcome


@dataclass
class SendReport:
    outcomes: list[SubscriberOutcome] = field(default_factory=list)
    paused: str | None = None  # why the loop paused (consecutive errors), if it did
    stopped: bool = False  # a stop was requested; the rest were left for the next run
    listener: Callable[[SubscriberOutcome], None] | None = None  # told of each outcome as it is added

    def add(self, *outcomes: SubscriberOutcome) -> None:
        self.outcomes.extend(outcomes)
        if self.listener is not None:
            for o in outcomes:
                self.listener(o)


class Clock:
    """The run's notion of now, advancing in real time from the time the run was given."""

    def __init__(self, start: datetime) -> None:
        self.start, self._t0 = start, time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self._t0)


class Sender:
    def __init__(self, engine: Engine, transport_factory: Callable[[], Transport], policy: DeliveryPolicy) -> None:
        self.engine = engine
        self.transport_factory = transport_factory
        self.policy = policy
        self.holder = owner.this_process()
        self._held: Connection | None = None  # the send loop's connection, while it runs

    @contextmanager
    def _step(self) -> Iterator[Connection]:
        """One ledger step in a transaction of its own, committed when it ends, on the connection the
        send loop holds: taking one from the pool for each step cost as much as the statement."""
        if self._held is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._held.begin():
            yield self._held

    def send(self, jobs: Sequence[Job], clock: Callable[[], datetime],
             stop: threading.Event | None = None,
             progress: Callable[[SubscriberOutcome], None] | None = None) -> SendReport:
        """progress: told of each outcome as it happens (the CLI's progress bar moves per message)."""
        report = SendReport(listener=progress)
        if not jobs:
            return report
        limiter = RateLimiter(self.policy.rate_per_s)
        errors, last_error = 0, ""
        transport = self.transport_factory()
        # Messages are composed ahead, elsewhere (digest.mail.ahead): composing records nothing,
        # so a message composed and never sent costs nothing.
        composer = open_composer([j.compose for j in jobs], initializer=lambda: self.engine.dispose(close=False))
        try:
            self._held = self.engine.connect()
            for i, job in enumerate(jobs):
                composed = composer.next()
                if errors >= self.policy.max_consecutive_errors:
                    report.paused = f"delivery paused after {errors} consecutive errors; last: {last_error}"
                    log.error("%s; %d message(s) left for the next run", report.paused, len(jobs) - i)
                    report.add(*(_deferred(j, "paused after consecutive errors") for j in jobs[i:]))
                    break
                if (stop is not None and stop.is_set()) or not limiter.wait(stop):
                    report.stopped = True
                    log.info("stop requested: %d message(s) left for the next run", len(jobs) - i)
                    report.add(*(_deferred(j, "stopped before sending") for j in jobs[i:]))
                    break
                outcome, relay = self._one(transport, job, clock, composed)
                report.add(outcome)
                if relay is Relay.ERROR:
                    errors, last_error = errors + 1, outcome.detail
                elif relay is Relay.WORKS:
                    errors = 0
        finally:
            composer.close()
            transport.close()
            held, self._held = self._held, None
            if held is not None:  # None when the database refused the connection
                held.close()
        return report

    def _one(self, transport: Transport, job: Job, clock: Callable[[], datetime],
             composed: Future[OutgoingMessage]) -> tuple[SubscriberOutcome, Relay]:
        """Send one row (composed: its message, being built), and what that told of the relay."""
        row = job.row
        try:
            msg = composed.result()
        except ValueError as exc:  # an address the composer refuses: this one fails, the rest go
            with self._step() as conn:
                ledger.finish(conn, row.id, status="failed", now=clock(), detail=str(exc))
            return (SubscriberOutcome(job.email, Status.FAILED, job.n_picks, f"invalid address: {exc}",
                                      channel=job.channel), Relay.SILENT)
        with self._step() as conn:
            if not ledger.claim(conn, row.id, clock(), self.holder, msg.message_id):
                return SubscriberOutcome(job.email, Status.IN_PROGRESS, job.n_picks, channel=job.channel), Relay.SILENT

        def handover() -> None:
            with self._step() as conn:
                ledger.mark_data_started(conn, row.id, clock())

        try:
            result = transport.send(msg, on_handover=handover)
        except DeliveryError as exc:
            # No session at all: nothing went out, the row goes back as it was for the next run.
            with self._step() as conn:
                ledger.release(conn, row.id, clock(), self.holder, detail=str(exc))
            deferred = SubscriberOutcome(job.email, Status.DEFERRED, job.n_picks, str(exc), channel=job.channel)
            return deferred, Relay.ERROR
        except BaseException:
            with self._step() as conn:
                ledger.release(conn, row.id, clock(), self.holder)
            raise
        relay = Relay.WORKS if result.status == Status.SENT or result.bounce else Relay.ERROR
        return self._record(job, result, clock()), relay

    def _record(self, job: Job, res: DeliveryOutcome, now: datetime) -> SubscriberOutcome:
        row, status, detail = job.row, res.status, res.detail
        attempts = row.attempts + 1
        next_at: datetime | None = None
        if status in (Status.TEMP_FAILED, Status.UNKNOWN):
            if now >= row.created_at + self.policy.retry_for:
                if status == Status.TEMP_FAILED:  # past the deadline: give up (an unknown one may have arrived)
                    status, detail = Status.FAILED, f"gave up after {attempts} attempts: {detail}"
            else:
                next_at = self.policy.next_attempt(attempts, now, res.retry_after_s)
        with self._step() as conn:
            if not ledger.finish(conn, row.id, status=status, now=now, detail=detail, location=res.location,
                                 next_attempt_at=next_at, holder=self.holder):
                log.warning("delivery %s was taken over by another run while this one sent it", row.id)
            elif status == Status.UNKNOWN:  # ambiguous once too often: the ledger failed it
                after = ledger.get_by_id(conn, row.id)
                if after is not None and after.status == Status.FAILED:
                    status, detail = Status.FAILED, after.last_error or detail
            mailed = job.channel == "email"  # a chat message says nothing of the address
            if mailed and status == Status.SENT:
                sub_store.clear_bounces(conn, job.subscriber_id)
            elif mailed and res.bounce:
                detail = f"hard bounce: {detail}"
                if sub_store.record_bounce(conn, job.subscriber_id, now, self.policy.max_hard_bounces):
                    detail += f"; {job.email} suspended after {self.policy.max_hard_bounces} hard bounces"
                    log.warning("%s suspended after %d hard bounces", job.email, self.policy.max_hard_bounces)
        return SubscriberOutcome(job.email, status, job.n_picks, detail, res.location, channel=job.channel)


def _deferred(job: Job, why: str) -> SubscriberOutcome:
    return SubscriberOutcome(job.email, Status.DEFERRED, job.n_picks, why, channel=job.channel)
