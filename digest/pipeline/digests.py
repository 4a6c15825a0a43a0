"""One daily run for one digest date: plan (plan.py), record, render (messages.py) and send (send.py).

Ingest happens before (digest.daily); this module starts from what is stored. Every send goes
through the deliveries ledger, so a re-run, a crash or a concurrent run sends nothing twice: picks
are recorded with their row, and a row is claimed before it is sent (send.py: one row at a time;
triage.py: rows a run finds already there; digest.store.deliveries: the states and the crash rules).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine

from digest.addresses import address_key
from digest.config import FetchSettings
from digest.domain import OutgoingMessage, Pick, Status, Subscriber, SubscriberOutcome, naive_utc
from digest.errors import InputError
from digest.mail.render import DigestRenderer, RenderedDigest
from digest.mail.transport import Transport
from digest.pipeline.chat import Chat, ChatOptions
from digest.pipeline.messages import Batch, Messages, stored_batch
from digest.pipeline.plan import Planned, Planner
from digest.pipeline.report import RunReport
from digest.pipeline.send import Clock, DeliveryPolicy, Job, Sender
from digest.pipeline.triage import triage
from digest.rank.encoder import TextEncoder
from digest.rank.ranker import RankOptions
from digest.signing.links import LinkBuilder
from digest.store import deliveries as ledger
from digest.store import subscribers as sub_store

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
        chat: ChatOptions | None = None,
    ) -> None:
        """encoder: a sentence encoder (the embed extra); None ranks on tf-idf alone.
        rank_processes: groups of subscribers ranked in this many forked processes (1: here).
        chat: how chat channels are posted to (None: the fetch defaults, private addresses refused)."""
        self.engine = engine
        self.policy = policy or DeliveryPolicy()
        self.transport_factory = transport_factory
        self.options = options
        self.planner = Planner(
            engine,
            RankOptions(top_k=options.top_k, min_score=options.min_score, diversity=options.diversity,
                        popularity_weight=options.popularity_weight, trending_k=options.trending_k,
                        explore=options.explore),
            lookback_days=options.lookback_days, include_replacements=options.include_replacements,
            encoder=encoder, rank_processes=rank_processes)
        self.messages = Messages(renderer, links, from_addr=from_addr, from_name=from_name)
        self.chat = Chat(engine, self.messages, self.policy, chat or ChatOptions(FetchSettings()))

    @property
    def encoder(self) -> TextEncoder | None:
        return self.planner.encoder

    @property
    def embedded(self) -> int:
        """Texts the encoder embedded in this pipeline's runs (the rest came from the store)."""
        return self.planner.embedded

    def plan(self, subscribers: Sequence[Subscriber], digest_date: date,
             now: datetime | None = None, stop: threading.Event | None = None) -> list[Planned]:
        """Rank the candidate papers for these subscribers (plan.Planner.plan)."""
        return self.planner.plan(subscribers, digest_date, now, stop)

    def render(self, sub: Subscriber, picks: Sequence[Pick], digest_date: date, candidates: int,
               delivery_id: int | None = None, trending: Sequence[Pick] = ()) -> RenderedDigest:
        return self.messages.render(sub, picks, digest_date, candidates, delivery_id, trending)

    def _message(self, b: Batch, now: datetime) -> OutgoingMessage:
        return self.messages.compose(b, now)

    def _stored(self, sub: Subscriber, row: ledger.Delivery) -> Batch:
        return stored_batch(self.engine, sub, row)

    def _triage(self, sub: Subscriber, row: ledger.Delivery, now: datetime, dry_run: bool) -> SubscriberOutcome | None:
        return triage(self.engine, sub, row, now, self.policy.retry_for, dry_run)

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
        now_db = naive_utc(now)
        report = RunReport(digest_date=digest_date, dry_run=dry_run)
        subs = self.active_subscribers(only, subscriber_ids)
        with self.engine.connect() as conn:
            # One query for the day's rows, not one per subscriber.
            day_rows = ledger.deliveries_for_date(conn, digest_date, channel=None)
        on_date = {row.subscriber_id: row for row in day_rows if row.channel == ledger.EMAIL}
        existing = {s.id: on_date.get(s.id) for s in subs}
        by_id = {s.id: s for s in subs}
        # Chat rows made by an earlier run: sent, retried or given up on as the email's are.
        chat_rows = [r for r in day_rows if r.channel != ledger.EMAIL and r.subscriber_id in by_id]
        chat_send, report.chat = self._found(chat_rows, by_id, now_db, dry_run, chat=True)

        to_rank = [s for s in subs if existing[s.id] is None]
        to_send, found = self._found([r for s in subs if (r := existing[s.id]) is not None], by_id, now_db, dry_run)
        report.outcomes.extend(found)

        # A restart with every row already planned skips ranking altogether.
        to_record: list[Planned] = []
        would_get: list[tuple[Subscriber, int]] = []  # a dry run's digests: their chat channels are told
        planned = self.plan(to_rank, digest_date, now, stop) if to_rank else []
        if stop is not None and stop.is_set() and len(planned) < len(to_rank):  # the rest wait for the next run
            ranked = {p.subscriber.id for p in planned}
            report.stopped = True
            report.outcomes.extend(SubscriberOutcome(s.email, Status.DEFERRED, 0, "not ranked: stop requested")
                                   for s in to_rank if s.id not in ranked)
        for item in planned:
            report.candidates = item.candidates
            sub, picks = item.subscriber, item.picks
            if not picks and self.options.quiet_day == "skip":
                report.outcomes.append(SubscriberOutcome(sub.email, Status.QUIET, 0, "no new paper matched"))
            elif dry_run:
                report.outcomes.append(SubscriberOutcome(sub.email, Status.WOULD_SEND, len(picks)) if sub.email_enabled
                                       else _feed_only(sub, len(picks), "dry run: would be recorded for the feed, "
                                                                        "not mailed"))
                would_get.append((sub, len(picks)))
            else:
                to_record.append(item)
        # Recorded in chunks, one transaction each: a crash loses at most a chunk of plans, which
        # the next run makes again; nothing of it was sent.
        hooks = self.chat.channels_for([i.subscriber.id for i in to_record])
        for start in range(0, len(to_record), RECORD_CHUNK):
            chunk = to_record[start:start + RECORD_CHUNK]
            with self.engine.begin() as conn:
                rows = ledger.create_deliveries(
                    conn, [ledger.Planned(i.subscriber.id, i.picks, i.trending, mail=i.subscriber.email_enabled)
                           for i in chunk],
                    digest_date=digest_date, now=now_db)
                # Each chat channel's row, in the same transaction: a digest is planned for all or none.
                made_chat = {sid: ledger.add_channels(conn, rows[sid], hooks[sid], now_db)
                             for sid in hooks if sid in rows}
            for item in chunk:
                new_row = rows.get(item.subscriber.id)
                if new_row is None:  # another run got there first
                    report.outcomes.append(
                        SubscriberOutcome(item.subscriber.email, Status.IN_PROGRESS, len(item.picks)))
                else:
                    b = Batch(item.subscriber, new_row, item.picks, item.candidates, item.trending)
                    if new_row.status == Status.RECORDED:  # feed only: recorded, never mailed
                        report.outcomes.append(_feed_only(item.subscriber, len(item.picks)))
                    else:
                        to_send.append(b)
                    # The chat channels get the digest whether or not it is mailed.
                    chat_send += [dataclasses.replace(b, row=r) for r in made_chat.get(item.subscriber.id, [])]

        if dry_run:
            report.outcomes.extend(SubscriberOutcome(b.sub.email, Status.WOULD_SEND, len(b.picks)) for b in to_send)
            report.chat += self.chat.would_post(would_get, chat_send)
            _tell(progress, report.outcomes)
            return report
        _tell(progress, report.outcomes)
        sent = Sender(self.engine, self.transport_factory, self.policy).send(
            [self._job(b, now) for b in to_send], Clock(now_db), stop, progress)
        report.outcomes.extend(sent.outcomes)
        report.chat += self.chat.send(chat_send, now_db, stop, settle=[r.channel for r in chat_rows])
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
        now_db = naive_utc(now)
        with self.engine.connect() as conn:
            rows = ledger.to_retry(conn, now_db, due_only=True)
            receiving = {s.id: s for s in sub_store.list_subscribers(conn, receiving_only=True)}
        chat_rows = [r for r in rows if r.channel != ledger.EMAIL]
        rows = [r for r in rows if r.channel == ledger.EMAIL]
        chat_send, chat_found = self._found(chat_rows, receiving, now_db, dry_run=False, chat=True)
        batch, outcomes = self._found(rows, receiving, now_db, dry_run=False)
        outcomes += chat_found
        sent = Sender(self.engine, self.transport_factory, self.policy).send(
            [self._job(b, now) for b in batch], Clock(now_db), stop)
        chat = self.chat.send(chat_send, now_db, stop, settle=[r.channel for r in chat_rows])
        return outcomes + sent.outcomes + chat

    def _found(self, rows: Sequence[ledger.Delivery], subs: dict[int, Subscriber], now: datetime, dry_run: bool,
               chat: bool = False) -> tuple[list[Batch], list[SubscriberOutcome]]:
        """Rows found in the ledger (of these subscribers): those to send now, and the outcomes of the
        others (chat: told by their channel)."""
        to_send: list[Batch] = []
        outcomes: list[SubscriberOutcome] = []
        for row in rows:
            sub = subs.get(row.subscriber_id)
            if sub is None:
                continue
            outcome = self._triage(sub, row, now, dry_run)
            if outcome is None and not chat and not sub.email_enabled:  # unsent when the reader turned email off
                outcome = self._keep_for_feed(sub, row, now, dry_run)
            if outcome is None:
                to_send.append(self._stored(sub, row))
            else:
                outcomes.append(self.chat.label(outcome, row) if chat else outcome)
        return to_send, outcomes

    def _keep_for_feed(self, sub: Subscriber, row: ledger.Delivery, now: datetime,
                       dry_run: bool) -> SubscriberOutcome | None:
        """The outcome for an unsent row of a reader who turned email off: settled, never mailed (None:
        another run holds it)."""
        if dry_run:
            return _feed_only(sub, row.n_picks, "dry run: would be kept for the feed, not mailed")
        with self.engine.begin() as conn:
            became = ledger.keep_for_feed(conn, row.id, now)
        if became is None:
            return SubscriberOutcome(sub.email, Status.IN_PROGRESS, row.n_picks)
        log.info("delivery %s to %s: email turned off, now %s", row.id, sub.email, became)
        detail = ledger.EMAIL_TURNED_OFF if became == Status.RECORDED else ledger.EMAIL_TURNED_OFF_AMBIGUOUS
        return SubscriberOutcome(sub.email, Status(became), row.n_picks, detail)

    def _job(self, b: Batch, now: datetime) -> Job:
        return Job(row=b.row, subscriber_id=b.sub.id, email=b.sub.email, n_picks=len(b.picks),
                   compose=lambda: self._message(b, now))

    def preview(self, email_addr: str, digest_date: date,
                now: datetime | None = None) -> tuple[RenderedDigest, int]:
        """The subscriber's digest for digest_date as a run now would send it; records nothing. A digest
        already planned for that date (picks recorded, not sent yet) shows its recorded picks, as its
        send will; otherwise the picks are ranked as the run ranks them (plan)."""
        with self.engine.connect() as conn:
            sub = sub_store.require_subscriber(conn, email_addr.strip())
            row = ledger.get_delivery(conn, sub.id, digest_date)
        if row is not None:
            b = self._stored(sub, row)
            return self.render(sub, b.picks, digest_date, b.candidates, row.id, b.trending), len(b.picks)
        item = self.plan([sub], digest_date, now)[0]
        return self.render(sub, item.picks, digest_date, item.candidates, trending=item.trending), len(item.picks)



def _feed_only(sub: Subscriber, n_picks: int, detail: str = "feed only: recorded for the feed, not mailed"
               ) -> SubscriberOutcome:
    return SubscriberOutcome(sub.email, Status.RECORDED, n_picks, detail)


def _tell(progress: Callable[[SubscriberOutcome], None] | None, outcomes: Sequence[SubscriberOutcome]) -> None:
    if progress is not None:
        for o in outcomes:
            progress(o)
