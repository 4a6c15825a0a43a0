"""APScheduler wiring for `digest serve`: one wake job on the schedule.cron, a persistent job store in
the project's database, and a heartbeat thread that holds the lease (or waits to take it over).

Only the lease holder starts the scheduler: APScheduler 3.x's job store must never be shared.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import SQLAlchemyError

from digest.service.leadership import LeaseKeeper
from digest.service.wake import Waker, WakeResult, utc_now
from digest.wiring import App

log = logging.getLogger(__name__)
JOB_ID = "digest-wake"
JOB_FUNC = "digest.service.scheduler:wake_job"  # by reference: the job store pickles the job

# The job store keeps a reference to the job function; the function finds this process's service here.
_current: Service | None = None


def wake_job() -> WakeResult | None:
    service = _current
    if service is None:  # a job left over from a scheduler that has stopped
        return None
    result = service.waker.wake()
    service.wake_finished()
    return result


def wake_trigger(cron: str, timezone: str) -> CronTrigger:
    return CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))


def longest_gap(trigger: CronTrigger, start: datetime, span: timedelta = timedelta(days=2)) -> timedelta:
    """The longest time between two wakes over span: digests can be this late."""
    gap, prev = timedelta(0), None
    t = trigger.get_next_fire_time(None, start)
    while t is not None and t - start < span:
        if prev is not None:
            gap = max(gap, t - prev)
        prev = t
        t = trigger.get_next_fire_time(t, t + timedelta(seconds=1))
    return gap


class Service:
    def __init__(self, app: App, *, clock: Callable[[], datetime] = utc_now,
                 stop: threading.Event | None = None) -> None:
        s = app.settings.schedule
        self.app = app
        self.clock = clock
        self.stop_event = stop or threading.Event()
        self.waker = Waker(app, clock=clock, stop=self.stop_event)
        self.lease = LeaseKeeper(app.engine, timedelta(seconds=s.lease_seconds), clock)
        self.trigger = wake_trigger(s.cron, s.timezone)
        self.heartbeat_s = max(1.0, s.lease_seconds / 4)
        self.scheduler: BackgroundScheduler | None = None
        self._heartbeat_stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stood_by = False

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> bool:
        """Take the lease and start the scheduler, or stand by. True if this process schedules."""
        global _current
        _current = self
        gap = longest_gap(self.trigger, self.clock())
        if gap > timedelta(hours=1):
            log.warning("schedule.cron wakes only every %s at times: digests can be that late", gap)
        self._tick()
        self._thread = threading.Thread(target=self._beat, name="digest-heartbeat", daemon=True)
        self._thread.start()
        return self.scheduling

    @property
    def scheduling(self) -> bool:
        return self.scheduler is not None

    def stop(self) -> None:
        """SIGTERM: the running wake stops between messages; wait for it, then give the lease up."""
        global _current
        self.stop_event.set()
        self._heartbeat_stop.set()
        if self._thread is not None:
            self._thread.join()
        self._stop_scheduler(wait=True)
        try:
            self.lease.release()
        except SQLAlchemyError as exc:  # it expires by itself
            log.warning("could not release the scheduler lease: %s", str(exc).splitlines()[0])
        if _current is self:
            _current = None

    def wake_finished(self) -> None:
        """/healthz and `digest status` show a wake as soon as it finished (the start-up wake too),
        not a heartbeat later."""
        finished = self.waker.last_finished
        if finished is None:
            return
        try:
            self.lease.record_wake(finished)
        except SQLAlchemyError as exc:  # the next heartbeat carries it
            log.warning("could not record the wake: %s", str(exc).splitlines()[0])

    # ---- heartbeat ------------------------------------------------------------------------
    def _beat(self) -> None:
        while not self._heartbeat_stop.wait(self.heartbeat_s):
            self._tick()

    def _tick(self) -> None:
        try:
            if self.lease.held:
                if not self.lease.renew(self.next_wake(), self.waker.last_finished):
                    log.error("scheduler lease lost (another process took it over): standing down")
                    self._stop_scheduler(wait=False)
            elif not self.stop_event.is_set() and self.lease.try_acquire():
                if self._stood_by:  # the start-up line said another process schedules: say what changed
                    log.warning("the scheduler's lease was free: this process runs the scheduler now")
                self._start_scheduler()
                self.lease.renew(self.next_wake())  # so that /healthz and `digest status` show it at once
            else:
                self._stood_by = True  # the caller says so (`digest serve` prints it once)
        except SQLAlchemyError as exc:  # the database is away: try again at the next beat
            log.error("scheduler heartbeat: database error: %s", str(exc).splitlines()[0])

    def next_wake(self) -> datetime | None:
        job = self.scheduler.get_job(JOB_ID) if self.scheduler is not None else None
        nxt = job.next_run_time if job is not None else None
        return nxt if isinstance(nxt, datetime) else None

    # ---- the APScheduler ------------------------------------------------------------------
    def _start_scheduler(self) -> None:
        grace = int(timedelta(hours=self.app.settings.schedule.catch_up_hours).total_seconds()) or 60
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.app.engine)},
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
            timezone=UTC,
        )
        scheduler.start()
        # Wake at once as well (real time: APScheduler runs on it): a restarted service catches up at once.
        scheduler.add_job(JOB_FUNC, trigger=self.trigger, id=JOB_ID, name="wake: send the digests that are due",
                          replace_existing=True, next_run_time=datetime.now(UTC))
        self.scheduler = scheduler
        log.info("scheduler started: wakes on %r (%s), next at %s", self.app.settings.schedule.cron,
                 self.app.settings.schedule.timezone, self.next_wake())

    def _stop_scheduler(self, *, wait: bool) -> None:
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=wait)
            log.info("scheduler stopped")
