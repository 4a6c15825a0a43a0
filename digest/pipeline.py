"""One daily run for one digest date: rank new papers for every subscriber, render, deliver, record.

Ingest happens before (digest.ingest.collect); this module starts from what is stored.
Every send goes through the deliveries ledger, so a re-run, a crash or a concurrent run sends
nothing twice: picks are recorded with their row, and a row is claimed before it is sent
(digest.sending: one row at a time; digest.store.deliveries: the states and the crash rules).
"""

from __future__ import annotations

import email.policy
import logging
import math
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine

from digest.addresses import address_key
from digest.domain import DigestContent, OutgoingMessage, Paper, Pick, Subscriber, SubscriberOutcome
from digest.errors import InputError
from digest.forked import fork_available, map_forked
from digest.links import LinkBuilder
from digest.mail.compose import compose_message, make_message_id
from digest.mail.deliver import Transport
from digest.mail.render import DigestRenderer, RenderedDigest
from digest.rank import features
from digest.rank.encoder import TextEncoder, is_sentence_encoder
from digest.rank.gcpause import paused_gc
from digest.rank.ranker import SCORE_CHUNK, DayPapers, RankOptions, rank_all
from digest.rank.semantic import Semantic
from digest.rank.training import KnownPapers, load_states
from digest.sending import Clock, DeliveryPolicy, Job, Sender
from digest.store import deliveries as ledger
from digest.store import learning
from digest.store import papers as paper_store
from digest.store import runs as run_store
from digest.store import subscribers as sub_store
from digest.store.embeddings import StoredMeaning
from digest.store.terms import StoredTerms

log = logging.getLogger(__name__)
RECORD_CHUNK = 500  # digests recorded per ledger transaction


@dataclass(frozen=True)
class DigestOptions:
    top_k: int = 10
    min_score: float = 0.1
    quiet_day: str = "skip"  # skip: no email when nothing matches; note: a short note
    lookback_days: int = 3
    include_replacements: bool = False
    diversity: float = 0.3
    popularity_weight: float = 0.0
    trending_k: int = 3
    explore: bool = False


__all__ = ["DigestOptions", "DigestPipeline", "RunReport", "SubscriberOutcome", "record_run"]


@dataclass
class RunReport:
    digest_date: date
    dry_run: bool = False
    candidates: int = 0
    outcomes: list[SubscriberOutcome] = field(default_factory=list)
    error: str | None = None  # the run could not finish its work (delivery paused: relay down)
    stopped: bool = False  # a stop was requested; what was not sent waits for the next run
    to_retry: int | None = None  # the date's rows still to retry after the run (ledger.to_retry)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def counts(self) -> dict[str, int]:
        keys = ("sent", "failed", "temp_failed", "unknown", "deferred", "quiet", "already_sent", "in_progress",
                "would_send")
        out = {k: self.count(k) for k in keys}
        out["candidates"] = self.candidates
        out["subscribers"] = len(self.outcomes)
        if self.to_retry is not None:
            out["to_retry"] = self.to_retry
        return out


@dataclass(frozen=True)
class _Planned:
    subscriber: Subscriber
    picks: list[Pick]
    candidates: int
    trending: list[Pick] = field(default_factory=list)


@dataclass(frozen=True)
class _Batch:
    sub: Subscriber
    row: ledger.Delivery
    picks: list[Pick]
    candidates: int
    trending: list[Pick] = field(default_factory=list)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class DigestPipeline:
    def __init__(
        self,
        engine: Engine,
        *,
        renderer: DigestRenderer,
        links: LinkBuilder,
        transport_factory: Callable[[], Transport],
        options: DigestOptions,
        from_addr: str,
        from_name: str,
        policy: DeliveryPolicy | None = None,
        encoder: TextEncoder | None = None,
        rank_processes: int = 1,
    ) -> None:
        """encoder: a sentence encoder (the embed extra); None ranks on tf-idf alone.
        rank_processes: groups of subscribers ranked in this many forked processes (1: here)."""
        self.rank_processes = rank_processes
        self.engine = engine
        self.policy = policy or DeliveryPolicy()
        self.encoder = encoder
        self.embedded = 0  # texts the encoder embedded in this pipeline's runs (the rest came from the store)
        self.renderer = renderer
        self.links = links
        self.transport_factory = transport_factory
        self.options = options
        self.from_addr = from_addr
        self.from_name = from_name

    # ---- ranking -------------------------------------------------------------------------
    def _window(self, digest_date: date) -> tuple[datetime, datetime]:
        until = datetime.combine(digest_date + timedelta(days=1), time())
        return until - timedelta(days=self.options.lookback_days), until

    def plan(self, subscribers: Sequence[Subscriber], digest_date: date,
             now: datetime | None = None, stop: threading.Event | None = None) -> list[_Planned]:
        """Rank the candidate papers for these subscribers (models retrained where feedback is new).
        stop: checked between groups of subscribers (about a second each at 2,000); when set, the
        groups not ranked yet are left for the next run (the first group is always ranked)."""
        since, until = self._window(digest_date)
        with self.engine.connect() as conn:
            candidates = paper_store.candidate_papers(
                conn, since=since, until=until, include_replacements=self.options.include_replacements
            )
            stats = learning.load_df(conn, features.N_FEATURES)
        if stats is not None and stats[0] > 0:
            space = features.FeatureSpace.from_stats(stats[1], stats[0], terms=StoredTerms(self.engine))
        else:
            space = features.FeatureSpace.from_texts([features.paper_text(p) for p in candidates])
        # Papers are embedded once, lazily, in the run that first needs them (then read from the store).
        stored = StoredMeaning(self.engine, self.encoder) if self.encoder is not None and candidates else None
        rank_options = RankOptions(top_k=self.options.top_k, min_score=self.options.min_score,
                                   diversity=self.options.diversity,
                                   popularity_weight=self.options.popularity_weight,
                                   trending_k=self.options.trending_k,
                                   explore=self.options.explore)
        day = DayPapers.build(candidates, space) if candidates else None
        # Subscribers in groups: their models and labels are held for one group at a time.
        forking = stored is None and self.rank_processes > 1 and len(subscribers) > SCORE_CHUNK and fork_available()
        groups = _groups(subscribers, self.rank_processes if forking else 1)
        known = KnownPapers()
        when = _naive_utc(now or datetime.now(UTC))

        ids = [p.id for p in candidates if p.id is not None]

        def plan_group(g: int) -> list[_Planned]:
            with paused_gc():
                return self._plan_group(groups[g], candidates, ids, space, when, rank_options, day, stored,
                                        known)

        if forking:
            # Groups ranked in forked processes (the encoder's model is not forked: torch holds threads).
            col_of = {p.id: c for c, p in enumerate(candidates)}
            compact = map_forked(lambda g: [_compact(k, x, col_of) for k, x in enumerate(plan_group(g))], len(groups),
                                 self.rank_processes, initializer=lambda: self.engine.dispose(close=False))
            with paused_gc():  # a hundred thousand picks made again here, none of them in a cycle
                planned = [_expand(groups[g][k], picks, trending, candidates)
                           for g, part in enumerate(compact) for k, picks, trending in part]
        else:
            planned = []
            for g in range(len(groups)):
                # After the first group: a small day (one group) is ranked whole and left pending, as
                # before; a large one stops within a group's time.
                if g > 0 and stop is not None and stop.is_set():
                    log.info("stop requested: %d of %d groups of subscribers left unranked", len(groups) - g,
                             len(groups))
                    break
                planned += plan_group(g)
        if stored is not None:
            log.info("encoder %s: %d text(s) embedded this run", stored.encoder.name, stored.embedded)
            self.embedded += stored.embedded
        return planned

    def _plan_group(self, group: Sequence[Subscriber], candidates: Sequence[Paper], ids: Sequence[int],
                    space: features.FeatureSpace, now: datetime, rank_options: RankOptions, day: DayPapers | None,
                    stored: StoredMeaning | None, known: KnownPapers) -> list[_Planned]:
        """One group's plans (ids: the candidates' ids)."""
        states = load_states(self.engine, group, ids, space, now, stored, known)
        for st in states:  # a subscriber's source filter: papers from other sources count as already shown
            if st.subscriber.sources:
                st.shown |= {p.id for p in candidates if p.id is not None and p.source not in st.subscriber.sources}
        meaning = None
        if stored is not None and states:
            liked = [[p for _, p in st.liked] for st in states]
            stored.ensure([p for mine in liked for p in mine])  # one read for the group, not one per reader
            meaning = Semantic(stored.papers(candidates), stored.keywords([st.subscriber for st in states]),
                               [stored.papers(mine) for mine in liked],
                               sentences=is_sentence_encoder(stored.encoder))
        ranked = rank_all(states, candidates, space, rank_options, day, meaning)
        return [_Planned(st.subscriber, r.picks, len(candidates), r.trending)
                for st, r in zip(states, ranked, strict=True)]

    # ---- rendering -----------------------------------------------------------------------
    def render(
        self, sub: Subscriber, picks: Sequence[Pick], digest_date: date, candidates: int,
        delivery_id: int | None = None, trending: Sequence[Pick] = (),
    ) -> RenderedDigest:
        content = DigestContent(
            trending=tuple(trending),
            trending_links=tuple(self.links.pick_links(sub.id, p.paper, delivery_id) for p in trending),
            to_addr=sub.email,
            digest_date=digest_date,
            picks=tuple(picks),
            links=tuple(self.links.pick_links(sub.id, p.paper, delivery_id) for p in picks),
            unsubscribe_url=self.links.unsubscribe_url(sub.id),
            keywords=sub.keywords,
            candidates=candidates,
            quiet=not picks,
            manage_url=self.links.manage_url(sub.id),
            view_url=self.links.view_url(sub.id, delivery_id) if delivery_id is not None else None,
        )
        return self.renderer.render(content)

    def _message(self, b: _Batch, now: datetime) -> OutgoingMessage:
        sub, row = b.sub, b.row
        rendered = self.render(sub, b.picks, row.digest_date, b.candidates, row.id, b.trending)
        message_id = row.message_id or make_message_id(row.id, row.digest_date, sub.id, self.from_addr)
        msg = compose_message(
            rendered,
            from_addr=self.from_addr,
            from_name=self.from_name,
            to_addr=sub.email,
            message_id=message_id,
            date=now,
            unsubscribe_url=self.links.unsubscribe_url(sub.id),
        )
        return OutgoingMessage(key=row.id, to_addr=sub.email, message_id=message_id,
                               data=msg.as_bytes(policy=email.policy.SMTP))

    def _stored(self, sub: Subscriber, row: ledger.Delivery) -> _Batch:
        """A recorded delivery as it was chosen: a resend carries the same picks."""
        with self.engine.connect() as conn:
            items = ledger.stored_picks(conn, row.id)
            by_id = paper_store.papers_by_ids(conn, [i.paper_id for i in items])
        chosen = [(i.rank, Pick(by_id[i.paper_id], i.score, i.matched, i.reason)) for i in items
                  if i.paper_id in by_id]
        picks = [p for r, p in chosen if r < ledger.TRENDING_RANK_BASE]
        trending = [p for r, p in chosen if r >= ledger.TRENDING_RANK_BASE]
        return _Batch(sub, row, picks, 0, trending)

    # ---- the run -------------------------------------------------------------------------
    def active_subscribers(self, only: str | None = None,
                           subscriber_ids: Collection[int] | None = None) -> list[Subscriber]:
        with self.engine.connect() as conn:
            subs = sub_store.list_subscribers(conn, receiving_only=True)
        if subscriber_ids is not None:  # the scheduler's due subscribers for this date
            subs = [s for s in subs if s.id in subscriber_ids]
        if only is not None:
            subs = [s for s in subs if address_key(s.email) == address_key(only.strip())]
            if not subs:
                raise InputError(f"no active subscriber {only}")
        return subs

    def run(
        self, digest_date: date, now: datetime, *, only: str | None = None, dry_run: bool = False,
        subscriber_ids: Collection[int] | None = None, stop: threading.Event | None = None,
        progress: Callable[[SubscriberOutcome], None] | None = None,
    ) -> RunReport:
        """Plan, record and send the digests for digest_date (subscriber_ids: only these, the
        scheduler's due ones). stop: checked between messages; when set, the message in hand is
        finished and recorded and the rest wait for the next run. progress: told of each
        subscriber's outcome (the CLI's progress bar)."""
        now_db = _naive_utc(now)
        report = RunReport(digest_date=digest_date, dry_run=dry_run)
        subs = self.active_subscribers(only, subscriber_ids)
        with self.engine.connect() as conn:
            # One query for the day's rows, not one per subscriber.
            on_date = {row.subscriber_id: row for row in ledger.deliveries_for_date(conn, digest_date)}
        existing = {s.id: on_date.get(s.id) for s in subs}

        to_rank = [s for s in subs if existing[s.id] is None]
        to_send: list[_Batch] = []
        for sub in subs:
            row = existing[sub.id]
            if row is None:
                continue
            outcome = self._triage(sub, row, now_db, dry_run)
            if outcome is None:
                to_send.append(self._stored(sub, row))
            else:
                report.outcomes.append(outcome)

        # A restart with every row already planned skips ranking altogether.
        to_record: list[_Planned] = []
        planned = self.plan(to_rank, digest_date, now, stop) if to_rank else []
        if stop is not None and stop.is_set() and len(planned) < len(to_rank):  # the rest wait for the next run
            ranked = {p.subscriber.id for p in planned}
            report.stopped = True
            report.outcomes.extend(SubscriberOutcome(s.email, "deferred", 0, "not ranked: stop requested")
                                   for s in to_rank if s.id not in ranked)
        for item in planned:
            report.candidates = item.candidates
            sub, picks = item.subscriber, item.picks
            if not picks and self.options.quiet_day == "skip":
                report.outcomes.append(SubscriberOutcome(sub.email, "quiet", 0, "no new paper matched"))
            elif dry_run:
                report.outcomes.append(SubscriberOutcome(sub.email, "would_send", len(picks)))
            else:
                to_record.append(item)
        # Recorded in chunks, one transaction each: a crash loses at most a chunk of plans, which
        # the next run makes again; nothing of it was sent.
        for start in range(0, len(to_record), RECORD_CHUNK):
            chunk = to_record[start:start + RECORD_CHUNK]
            with self.engine.begin() as conn:
                rows = ledger.create_deliveries(
                    conn, [ledger.Planned(i.subscriber.id, i.picks, i.trending) for i in chunk],
                    digest_date=digest_date, now=now_db)
            for item in chunk:
                new_row = rows.get(item.subscriber.id)
                if new_row is None:  # another run got there first
                    report.outcomes.append(SubscriberOutcome(item.subscriber.email, "in_progress", len(item.picks)))
                else:
                    to_send.append(_Batch(item.subscriber, new_row, item.picks, item.candidates, item.trending))

        if dry_run:
            report.outcomes.extend(SubscriberOutcome(b.sub.email, "would_send", len(b.picks)) for b in to_send)
            _tell(progress, report.outcomes)
            return report
        _tell(progress, report.outcomes)
        sent = Sender(self.engine, self.transport_factory, self.policy).send(
            [self._job(b, now) for b in to_send], Clock(now_db), stop, progress)
        report.outcomes.extend(sent.outcomes)
        report.stopped = report.stopped or sent.stopped
        deferred = [o for o in sent.outcomes if o.status == "deferred"]
        if sent.paused:
            report.error = sent.paused
        elif deferred and not sent.stopped and not any(o.status == "sent" for o in sent.outcomes):
            report.error = f"nothing could be delivered: {deferred[-1].detail}"
        return report

    def retry_due(self, now: datetime, *, stop: threading.Event | None = None) -> list[SubscriberOutcome]:
        """Send again every undelivered digest, of any date, whose retry time has come (temp_failed,
        unknown, left pending by a paused or stopped run, abandoned by a dead one); give up on those
        past the retry deadline. Subscribers no longer receiving (unsubscribed, paused, suspended)
        are left alone. For a scheduler to call between daily runs."""
        now_db = _naive_utc(now)
        with self.engine.connect() as conn:
            rows = ledger.to_retry(conn, now_db, due_only=True)
            receiving = {s.id: s for s in sub_store.list_subscribers(conn, receiving_only=True)}
        outcomes: list[SubscriberOutcome] = []
        batch: list[_Batch] = []
        for row in rows:
            sub = receiving.get(row.subscriber_id)
            if sub is None:
                continue
            outcome = self._triage(sub, row, now_db, dry_run=False)
            if outcome is None:
                batch.append(self._stored(sub, row))
            else:
                outcomes.append(outcome)
        sent = Sender(self.engine, self.transport_factory, self.policy).send(
            [self._job(b, now) for b in batch], Clock(now_db), stop)
        return outcomes + sent.outcomes

    def _triage(self, sub: Subscriber, row: ledger.Delivery, now: datetime, dry_run: bool) -> SubscriberOutcome | None:
        """The outcome for a row this run will not send, or None: send it (again)."""
        what = ledger.triage(row, now, self.policy.retry_for)
        if what == "abandoned" and not dry_run:
            with self.engine.begin() as conn:
                ledger.take_over(conn, row, now)
                fresh = ledger.get_by_id(conn, row.id)
            log.warning("delivery %s to %s was left in sending by %s: now %s", row.id, sub.email, row.claimed_by,
                        fresh.status if fresh else "gone")
            if fresh is None:
                return SubscriberOutcome(sub.email, "in_progress", row.n_picks)
            row, what = fresh, ledger.triage(fresh, now, self.policy.retry_for)
        if what == "send" or (what == "abandoned" and dry_run):
            return None
        if what in ("expired", "exhausted") and not dry_run:
            detail = (ledger.gave_up_detail(row.last_error) if what == "exhausted" else
                      f"gave up after {row.attempts} attempt(s) in {self.policy.retry_for}: {row.last_error or ''}")
            with self.engine.begin() as conn:
                ledger.expire(conn, row.id, now, detail)
            return SubscriberOutcome(sub.email, "failed", row.n_picks, detail)
        if what == "not_due":
            when = f"{row.next_attempt_at:%Y-%m-%d %H:%M} UTC" if row.next_attempt_at else "later"
            return SubscriberOutcome(sub.email, "deferred", row.n_picks, f"next attempt at {when}: {row.last_error}")
        status = {"sent": "already_sent", "expired": "failed", "exhausted": "failed"}.get(what, what)
        return SubscriberOutcome(sub.email, status, row.n_picks, row.last_error or "")

    def _job(self, b: _Batch, now: datetime) -> Job:
        return Job(row=b.row, subscriber_id=b.sub.id, email=b.sub.email, n_picks=len(b.picks),
                   compose=lambda: self._message(b, now))

    def preview(self, email_addr: str, digest_date: date,
                now: datetime | None = None) -> tuple[RenderedDigest, int]:
        """The subscriber's digest for digest_date as a run now would send it; records nothing. A digest
        already planned for that date (picks recorded, not sent yet) shows its recorded picks, as its
        send will; otherwise the picks are ranked as the run ranks them (plan)."""
        with self.engine.connect() as conn:
            sub = sub_store.get_subscriber(conn, email_addr.strip())
            row = ledger.get_delivery(conn, sub.id, digest_date) if sub is not None else None
        if sub is None:
            raise InputError(f"no subscriber {email_addr}")
        if row is not None:
            b = self._stored(sub, row)
            return self.render(sub, b.picks, digest_date, b.candidates, row.id, b.trending), len(b.picks)
        item = self.plan([sub], digest_date, now)[0]
        return self.render(sub, item.picks, digest_date, item.candidates, trending=item.trending), len(item.picks)


def _groups(subscribers: Sequence[Subscriber], processes: int) -> list[Sequence[Subscriber]]:
    """Groups of at most SCORE_CHUNK subscribers, as many as a multiple of the processes and of
    even sizes, so that no process is left ranking a last small group while the others wait."""
    n = len(subscribers)
    count = math.ceil(math.ceil(n / SCORE_CHUNK) / processes) * processes
    size = max(1, math.ceil(n / count)) if n else 1
    return [subscribers[i:i + size] for i in range(0, n, size)]


# A pick as it travels back from a forked ranking process: the paper as its place among the candidates.
_CompactPick = tuple[int, float, tuple[str, ...], str]


def _compact(k: int, item: _Planned,
             col_of: dict[int | None, int]) -> tuple[int, list[_CompactPick], list[_CompactPick]]:
    """The group's k-th subscriber's plan, small enough to pickle back cheaply."""
    def small(picks: Sequence[Pick]) -> list[_CompactPick]:
        return [(col_of[p.paper.id], p.score, tuple(p.matched), p.reason) for p in picks]
    return k, small(item.picks), small(item.trending)


def _expand(sub: Subscriber, picks: list[_CompactPick], trending: list[_CompactPick],
            candidates: Sequence[Paper]) -> _Planned:
    def full(small: list[_CompactPick]) -> list[Pick]:
        return [Pick(candidates[c], score, matched, reason) for c, score, matched, reason in small]
    return _Planned(sub, full(picks), len(candidates), full(trending))


def _tell(progress: Callable[[SubscriberOutcome], None] | None, outcomes: Sequence[SubscriberOutcome]) -> None:
    if progress is not None:
        for o in outcomes:
            progress(o)


def record_run(engine: Engine, report: RunReport, started: datetime, finished: datetime,
               sources: dict[str, int] | None = None, failed_sources: list[dict[str, str]] | None = None) -> None:
    counts: dict[str, int] = dict(report.counts())
    counts.update(sources or {})
    with engine.begin() as conn:
        run_store.record(conn, digest_date=report.digest_date, started=_naive_utc(started),
                         finished=_naive_utc(finished), status="failed" if report.error else "done",
                         counts=counts, error=report.error, failed_sources=failed_sources)
