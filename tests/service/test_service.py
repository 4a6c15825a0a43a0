"""The scheduler's parts on a real database and a real SMTP server, with a clock passed in:
the wake job, the lease, the health check, the metrics, and the APScheduler wiring."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from digest.config import FetchSettings, Settings, SourceSettings
from digest.domain import SubscriberOutcome
from digest.pipeline.report import RunReport, record_run
from digest.service.health import HealthCheck
from digest.service.leadership import LeaseKeeper, _process_space
from digest.service.metrics import Metrics
from digest.service.scheduler import JOB_ID, Service, longest_gap, wake_trigger
from digest.service.wake import Waker
from digest.store import deliveries as ledger
from digest.store import lease as lease_store
from digest.store import runs
from digest.store import sources as source_store
from digest.store.engine import create_db_engine, open_engine
from digest.store.schema import deliveries
from digest.store.subscribers import upsert_subscriber
from digest.wiring import App
from tests.clock import Clock
from tests.http_server import LocalHttpServer, QuietHandler
from tests.smtp_server import SmtpServer

KEY = "service-test-key-0123456789abcdef"
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
KEYWORDS = ["diffusion models", "image generation"]  # match papers of the bundled sample listing


def make_settings(tmp_path: Path, db_url: str, smtp: SmtpServer | None, **schedule: Any) -> Settings:
    delivery = {"method": "smtp", "from_addr": "digest@example.org"} if smtp else {"method": "outbox"}
    return Settings(**{
        "state_dir": str(tmp_path / "state"),
        "database": {"url": db_url},
        "sources": [{"name": "sample", "path": "builtin:arxiv-cs-2024-11-28.xml", "kind": "arxiv_rss"}],
        "delivery": delivery,
        "smtp": {"host": smtp.host if smtp else "localhost", "port": smtp.port if smtp else 25,
                 "security": "none", "timeout_s": 10},
        "web": {"secret_key": KEY},
        "schedule": {"timezone": "UTC", "delivery_hour": 6, **schedule},
    })


def subscribe(app: App, email: str, tz: str | None = None, hour: int | None = None, cadence: str | None = None,
              ) -> int:
    with app.engine.begin() as conn:
        sub, _ = upsert_subscriber(conn, email=email, keywords=KEYWORDS, timezone=tz, delivery_hour=hour,
                                   cadence=cadence, now=datetime(2026, 1, 1))
    return sub.id


def recipients(smtp: SmtpServer) -> list[str]:
    return [m.rcpt_tos[0] for m in smtp.handler.messages]


# ---- the wake ------------------------------------------------------------------------------------
def test_wake_delivers_each_subscriber_at_their_local_hour_once(tmp_path: Path, db_url: str,
                                                                smtp_server: SmtpServer) -> None:
    app = App.open(make_settings(tmp_path, db_url, smtp_server))
    subscribe(app, "ada@example.org", "Europe/Berlin", 7)
    subscribe(app, "bob@example.org", "America/New_York", 7)
    # Spring-forward day in Berlin, and the service was down until 10:00: ada's 07:00 digest is 3 h late.
    clock = Clock(datetime(2026, 3, 29, 10, 0, tzinfo=BERLIN).astimezone(UTC))
    waker = Waker(app, clock=clock)
    first = waker.wake()
    assert [s.status for s in first.sources] == ["ok"] and first.sources[0].new > 0
    assert [(d.subscriber.email, d.digest_date) for d in first.due] == [("ada@example.org", date(2026, 3, 29))]
    assert recipients(smtp_server) == ["ada@example.org"]

    clock.advance(timedelta(minutes=15))
    again = waker.wake()
    assert again.sources == [] and again.due == [] and len(smtp_server.handler.messages) == 1  # no refetch

    clock.now = datetime(2026, 3, 29, 7, 0, tzinfo=NEW_YORK).astimezone(UTC)
    later = waker.wake()
    assert [s.name for s in later.sources] == ["sample"]  # 3 h since the last fetch: fetched again
    assert recipients(smtp_server) == ["ada@example.org", "bob@example.org"]
    with app.engine.connect() as conn:
        recorded = runs.recent(conn, 10)
        rows = conn.execute(select(deliveries.c.digest_date, deliveries.c.status)).all()
    assert sorted(rows) == [(date(2026, 3, 29), "sent")] * 2
    assert [r["counts"]["sent"] for r in recorded] == [1, 1]
    assert recorded[-1]["counts"]["sources_ok"] == 1
    app.close()


def test_wakes_every_15_minutes_across_fall_back_send_one_digest_per_local_date(tmp_path: Path,
                                                                               sqlite_url: str) -> None:
    app = App.open(make_settings(tmp_path, sqlite_url, None, ingest_every_minutes=24 * 60))
    subscribe(app, "ny@example.org", "America/New_York", 1)  # 01:00 is lived twice on 1 November
    subscribe(app, "berlin@example.org", "Europe/Berlin", 2)  # Berlin fell back a week earlier: a plain day
    clock = Clock(datetime(2026, 10, 31, 0, 0, tzinfo=NEW_YORK).astimezone(UTC))
    waker = Waker(app, clock=clock)
    end = datetime(2026, 11, 2, 6, 0, tzinfo=NEW_YORK).astimezone(UTC)
    while clock.now < end:
        waker.wake()
        clock.advance(timedelta(minutes=15))
    with app.engine.connect() as conn:
        rows = conn.execute(select(deliveries.c.subscriber_id, deliveries.c.digest_date, deliveries.c.status)
                            .order_by(deliveries.c.subscriber_id, deliveries.c.digest_date)).all()
    days = [date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)]
    assert [(r.digest_date, r.status) for r in rows if r.subscriber_id == 1] == [(d, "sent") for d in days]
    assert [r.digest_date for r in rows if r.subscriber_id == 2] == days
    app.close()


def test_a_stop_request_leaves_the_rest_for_the_next_wake(tmp_path: Path, sqlite_url: str,
                                                          smtp_server: SmtpServer) -> None:
    app = App.open(make_settings(tmp_path, sqlite_url, smtp_server))
    subscribe(app, "ada@example.org", hour=0)
    clock = Clock(datetime(2026, 6, 10, 12, tzinfo=UTC))
    Waker(app, clock=clock).ingest(clock.now)
    pipeline = app.pipeline()
    stop = threading.Event()
    stop.set()  # SIGTERM arrived while ranking
    report = pipeline.run(date(2026, 6, 10), clock.now, stop=stop)
    assert [o.status for o in report.outcomes] == ["deferred"] and smtp_server.handler.messages == []
    with app.engine.connect() as conn:
        (row,) = ledger.deliveries_for_date(conn, date(2026, 6, 10))
    assert row.status == "pending"
    result = Waker(app, clock=clock).wake()  # the next process: the unfinished row is a retry
    assert [d.retry for d in result.due] == [True] and recipients(smtp_server) == ["ada@example.org"]
    app.close()


def test_quiet_subscribers_are_not_ranked_again_until_new_papers_arrive(tmp_path: Path, sqlite_url: str) -> None:
    app = App.open(make_settings(tmp_path, sqlite_url, None))
    with app.engine.begin() as conn:
        upsert_subscriber(conn, email="q@example.org", keywords=["zzqx qqzx"], now=datetime(2026, 1, 1))
    clock = Clock(datetime(2026, 6, 10, 12, tzinfo=UTC))
    waker = Waker(app, clock=clock)
    first = waker.wake()
    assert [o.status for r in first.runs for o in r.outcomes] == ["quiet"]
    clock.advance(timedelta(minutes=15))
    assert waker.wake().due == []  # remembered as quiet for today
    app.close()


# ---- the lease -----------------------------------------------------------------------------------
def test_lease_one_holder_renewed_taken_over_when_expired(db_url: str) -> None:
    engine = open_engine(db_url)
    clock = Clock(datetime(2026, 6, 10, 12, tzinfo=UTC))
    ttl = timedelta(seconds=60)
    a, b = LeaseKeeper(engine, ttl, clock, owner="host-a:1:a"), LeaseKeeper(engine, ttl, clock, owner="host-b:1:b")
    assert a.try_acquire() and not b.try_acquire()
    clock.advance(timedelta(seconds=45))
    assert a.renew(clock.now + timedelta(minutes=15)) and not b.try_acquire()  # renewed: still a's
    lease = a.holder()
    assert lease is not None and lease.owner == "host-a:1:a" and lease.next_wake_at == datetime(2026, 6, 10, 12, 15, 45)
    clock.advance(timedelta(seconds=61))  # a stopped beating (hung, or its host died)
    assert b.try_acquire() and not a.renew()
    assert not a.held and not a.try_acquire()
    b.release()
    assert a.try_acquire()  # released at shutdown: taken at once
    engine.dispose()


def test_lease_of_a_dead_process_on_this_host_is_taken_at_once(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    clock = Clock(datetime(2026, 6, 10, 12, tzinfo=UTC))
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = LeaseKeeper(engine, timedelta(minutes=5), clock, owner=f"{_process_space()}:{gone.pid}:dead")
    assert dead.try_acquire()
    mine = LeaseKeeper(engine, timedelta(minutes=5), clock)
    assert mine.try_acquire()
    mine.release()
    remote = LeaseKeeper(engine, timedelta(minutes=5), clock, owner=f"other-host:{gone.pid}:x")
    assert remote.try_acquire()
    assert not mine.try_acquire()  # a process on another host: only the lease's expiry tells
    engine.dispose()


def test_second_service_stands_by_and_takes_over_when_the_first_stops_beating(tmp_path: Path, sqlite_url: str,
                                                                             smtp_server: SmtpServer) -> None:
    settings = make_settings(tmp_path, sqlite_url, smtp_server, lease_seconds=30)
    first_app, second_app = App.open(settings), App.open(settings)
    subscribe(first_app, "ada@example.org", hour=0)
    first, second = Service(first_app), Service(second_app)
    clock = Clock(datetime.now(UTC))
    second.clock = second.lease.clock = clock
    try:
        assert first.start() is True
        deadline = time.monotonic() + 30
        while not smtp_server.handler.messages:  # the scheduler wakes at once on start
            assert time.monotonic() < deadline, "the scheduler did not deliver"
            time.sleep(0.1)
        assert recipients(smtp_server) == ["ada@example.org"]
        assert second.start() is False and not second.scheduling
        with first_app.engine.connect() as conn:
            jobs = conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars().all()
            lease = lease_store.get(conn, "scheduler")
        assert jobs == [JOB_ID]  # the job store is in the project's database
        assert lease is not None and lease.owner == first.lease.owner and lease.next_wake_at is not None
        first._heartbeat_stop.set()  # first hangs: no more heartbeats
        first._thread.join()  # type: ignore[union-attr]
        clock.advance(timedelta(seconds=31))
        second._tick()
        assert second.scheduling
        first._tick()  # first wakes up: its lease is gone, it stands down
        assert not first.scheduling
    finally:
        second.stop()
        first.stop()
        first_app.close()
        second_app.close()
    assert len(smtp_server.handler.messages) == 1  # the second scheduler's wake sent nothing twice


def test_the_start_up_wake_shows_in_healthz_at_once(tmp_path: Path, sqlite_url: str,
                                                    smtp_server: SmtpServer) -> None:
    # A heartbeat only every 15 minutes: the wake itself must publish that it finished.
    settings = make_settings(tmp_path, sqlite_url, smtp_server, lease_seconds=3600)
    app = App.open(settings)
    subscribe(app, "ada@example.org", hour=0)
    service = Service(app)
    health = HealthCheck(app.engine, require_scheduler=True, clock=lambda: datetime.now(UTC))
    try:
        assert service.start()
        deadline = time.monotonic() + 30
        while not (last_wake := health()[1]["scheduler"].get("last_wake")):
            assert time.monotonic() < deadline, ("no last_wake after the start-up wake", health())
            time.sleep(0.1)
        assert recipients(smtp_server) == ["ada@example.org"]  # that wake sent the digest
        assert datetime.fromisoformat(last_wake) <= datetime.now(UTC)
    finally:
        service.stop()
        app.close()


def test_stop_abandons_the_fetch_in_flight_and_the_wake_stops(tmp_path: Path, sqlite_url: str) -> None:
    paths: list[str] = []

    class SlowFeed(QuietHandler):
        """Answers only after 2 s; records the paths asked for."""

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            paths.append(self.path)
            time.sleep(2)
            self.send_body(b"<rss version='2.0'><channel><title>t</title></channel></rss>")

    feed = LocalHttpServer(SlowFeed)
    settings = make_settings(tmp_path, sqlite_url, None).model_copy(update={
        "sources": [SourceSettings(name=n, url=f"{feed.base}/{n}", kind="rss") for n in ("one", "two")],
        "fetch": FetchSettings(allow_private=True, deadline_s=10, read_timeout_s=10),
    })
    app = App.open(settings)
    service = Service(app)
    try:
        assert service.start()
        deadline = time.monotonic() + 10
        while not paths:  # the wake at start-up is fetching the first source
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = time.monotonic()
        service.stop()  # SIGTERM: the fetch in flight is abandoned at once, then the wake stops
        took = time.monotonic() - started
        with app.engine.connect() as conn:
            fetched = source_store.last_fetched(conn, ["one", "two"])
    finally:
        feed.close()
        app.close()
    assert paths == ["/one"] and took < 1.5, (paths, took)
    assert fetched == {"one": None, "two": None}  # nothing recorded: both are fetched at the next wake
    assert not service.scheduling


def test_cron_that_wakes_rarely_is_noticed() -> None:
    start = datetime(2026, 6, 10, tzinfo=UTC)
    assert longest_gap(wake_trigger("*/15 * * * *", "UTC"), start) == timedelta(minutes=15)
    assert longest_gap(wake_trigger("0 6 * * *", "Europe/Berlin"), start) == timedelta(days=1)


# ---- health and metrics --------------------------------------------------------------------------
def test_health_reports_the_scheduler_heartbeat_and_last_success(sqlite_url: str, tmp_path: Path) -> None:
    engine = open_engine(sqlite_url)
    clock = Clock(datetime(2026, 6, 10, 12, tzinfo=UTC))
    health = HealthCheck(engine, require_scheduler=True, clock=clock)
    status, body = health()
    assert status == 503 and body["scheduler"] == {"running": False, "in_this_process": False}
    keeper = LeaseKeeper(engine, timedelta(seconds=60), clock)
    assert keeper.try_acquire()
    clock.advance(timedelta(seconds=20))
    record_run(engine, RunReport(date(2026, 6, 10), outcomes=[SubscriberOutcome("a@example.org", "sent", 3)]),
               clock.now - timedelta(seconds=5), clock.now)
    status, body = health()
    assert status == 200 and body["status"] == "ok" and body["scheduler"]["heartbeat_age_s"] == 20.0
    assert body["last_success"] == "2026-06-10T12:00:20+00:00"
    clock.advance(timedelta(seconds=60))  # the scheduler stopped beating
    assert health()[0] == 503
    assert HealthCheck(engine, require_scheduler=False, clock=clock)()[0] == 200  # --no-scheduler
    dead = create_db_engine(f"sqlite:///{tmp_path}/gone/x.db")
    (tmp_path / "gone").rmdir()
    assert HealthCheck(dead, require_scheduler=False, clock=clock)() == (503, {"status": "error",
                                                                           "database": "unreachable"})
    dead.dispose()
    engine.dispose()


def test_health_fails_when_the_scheduler_beats_but_no_wake_finishes(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    clock = Clock(datetime(2026, 6, 10, 12, tzinfo=UTC))
    health = HealthCheck(engine, require_scheduler=True, clock=clock, wake_overdue=timedelta(minutes=75))
    keeper = LeaseKeeper(engine, timedelta(seconds=60), clock)
    assert keeper.try_acquire()
    for _ in range(4):  # wakes every 15 min finish, the heartbeat carries the time of the last one
        clock.advance(timedelta(minutes=15))
        assert keeper.renew(clock.now + timedelta(minutes=15), last_wake_at=clock.now)
    status, body = health()
    assert status == 200 and body["scheduler"]["last_wake"] == "2026-06-10T13:00:00+00:00"
    for _ in range(80):  # a wake hangs: the heartbeat goes on, no wake finishes
        clock.advance(timedelta(minutes=1))
        assert keeper.renew(clock.now + timedelta(minutes=15))
    status, body = health()
    assert status == 503 and body["scheduler"]["running"] and "hang" in body["scheduler"]["problem"]
    engine.dispose()


def _metric(text_: str, name: str) -> float:
    for line in text_.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics")


def test_metrics_count_runs_of_every_process(db_url: str) -> None:
    engine, other = open_engine(db_url), open_engine(db_url)  # other: `digest run` from cron, say
    clock = Clock(datetime(2026, 6, 10, 12, tzinfo=UTC))
    metrics = Metrics(engine, clock)
    body = metrics()[0].decode()
    assert _metric(body, "digest_digests_sent_total") == 0 and _metric(body, "digest_database_up") == 1
    sent = [SubscriberOutcome(f"s{i}@example.org", "sent", 3) for i in range(3)]
    report = RunReport(date(2026, 6, 10), outcomes=[*sent, SubscriberOutcome("t@example.org", "temp_failed")])
    record_run(engine, report, clock.now, clock.now + timedelta(seconds=4),
               {"sources_ok": 2, "sources_failed": 1, "papers_new": 40})
    record_run(other, RunReport(date(2026, 6, 10), outcomes=[SubscriberOutcome("f@example.org", "failed")]),
               clock.now, clock.now + timedelta(seconds=2))
    body = metrics()[0].decode()
    assert _metric(body, "digest_digests_sent_total") == 3
    assert _metric(body, "digest_digests_failed_total") == 1
    assert _metric(body, "digest_digests_deferred_total") == 1
    assert _metric(body, 'digest_feed_fetches_total{outcome="failed"}') == 1
    assert _metric(body, 'digest_feed_fetches_total{outcome="ok"}') == 2
    assert _metric(body, "digest_run_duration_seconds_count") == 2
    assert _metric(body, "digest_run_duration_seconds_sum") == 6
    assert _metric(body, "digest_last_success_timestamp_seconds") == (clock.now + timedelta(seconds=4)).timestamp()
    record_run(other, RunReport(date(2026, 6, 11), outcomes=sent[:1]), clock.now, clock.now)
    assert _metric(metrics()[0].decode(), "digest_digests_sent_total") == 4  # counted once each, across scrapes
    engine.dispose()
    other.dispose()
