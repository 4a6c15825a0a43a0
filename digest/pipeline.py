"""One daily run for one digest date: rank new papers for every subscriber, render, deliver, record.

Ingest happens before (digest.ingest.collect); this module starts from what is stored.
Every send goes through the deliveries ledger, so a re-run, a crash or a concurrent run sends
nothing twice: picks are recorded with their row, and a row is claimed before it is sent.
"""

from __future__ import annotations

import email.policy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine

from digest.domain import DigestContent, OutgoingMessage, Paper, Pick, Subscriber
from digest.errors import DeliveryError, InputError
from digest.links import LinkBuilder
from digest.mail.compose import compose_message, make_message_id
from digest.mail.deliver import Transport
from digest.mail.render import DigestRenderer, RenderedDigest
from digest.rank import features
from digest.rank.encoder import Encoder
from digest.rank.ranker import RankOptions, rank_all
from digest.rank.select import mentions_any
from digest.rank.semantic import Semantic
from digest.rank.training import load_states
from digest.store import deliveries as ledger
from digest.store import learning
from digest.store import papers as paper_store
from digest.store import runs as run_store
from digest.store import subscribers as sub_store
from digest.store.embeddings import StoredMeaning

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DigestOptions:
    top_k: int = 10
    min_score: float = 0.05
    quiet_day: str = "skip"  # skip: no email when nothing matches; note: a short note
    lookback_days: int = 3
    include_replacements: bool = False
    diversity: float = 0.3
    popularity_weight: float = 0.0
    trending_k: int = 3
    explore: bool = False


@dataclass(frozen=True)
class SubscriberOutcome:
    email: str
    status: str  # sent, failed, temp_failed, quiet, already_sent, in_progress, would_send
    n_picks: int = 0
    detail: str = ""
    location: str | None = None


@dataclass
class RunReport:
    digest_date: date
    dry_run: bool = False
    candidates: int = 0
    outcomes: list[SubscriberOutcome] = field(default_factory=list)
    error: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def counts(self) -> dict[str, int]:
        keys = ("sent", "failed", "temp_failed", "quiet", "already_sent", "in_progress", "would_send")
        out = {k: self.count(k) for k in keys}
        out["candidates"] = self.candidates
        out["subscribers"] = len(self.outcomes)
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
        encoder: Encoder | None = None,
    ) -> None:
        """encoder: a sentence encoder (the embed extra); None ranks on tf-idf alone."""
        self.engine = engine
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
             now: datetime | None = None) -> list[_Planned]:
        """Rank the candidate papers for these subscribers (models retrained where feedback is new)."""
        since, until = self._window(digest_date)
        with self.engine.connect() as conn:
            candidates = paper_store.candidate_papers(
                conn, since=since, until=until, include_replacements=self.options.include_replacements
            )
            stats = learning.load_df(conn, features.N_FEATURES)
        if stats is not None and stats[0] > 0:
            space = features.FeatureSpace.from_stats(stats[1], stats[0])
        else:
            space = features.FeatureSpace.from_texts([features.paper_text(p) for p in candidates])
        ids = [p.id for p in candidates if p.id is not None]
        # Papers are embedded once, lazily, in the run that first needs them (then read from the store).
        stored = StoredMeaning(self.engine, self.encoder) if self.encoder is not None and candidates else None
        states = load_states(self.engine, subscribers, ids, space, _naive_utc(now or datetime.now(UTC)), stored)
        rank_options = RankOptions(top_k=self.options.top_k, min_score=self.options.min_score,
                                   diversity=self.options.diversity,
                                   popularity_weight=self.options.popularity_weight,
                                   explore=self.options.explore)
        meaning = None
        if stored is not None and states:
            meaning = Semantic(stored.papers(candidates), stored.keywords([st.subscriber for st in states]),
                               [stored.papers([p for _, p in st.liked]) for st in states])
            log.info("encoder %s: %d text(s) embedded this run", stored.encoder.name, stored.embedded)
            self.embedded += stored.embedded
        picks = rank_all(states, candidates, space, rank_options, meaning)
        return [_Planned(st.subscriber, p, len(candidates), self._trending(candidates, p, st.shown, st.subscriber))
                for st, p in zip(states, picks, strict=True)]

    def _trending(self, candidates: Sequence[Paper], picks: Sequence[Pick], shown: set[int],
                  sub: Subscriber) -> list[Pick]:
        """The most upvoted new papers that are not already picked, shown before, or excluded."""
        if self.options.trending_k <= 0 or not picks:
            return []
        taken = {p.paper.id for p in picks} | shown
        popular = sorted((p for p in candidates if (p.upvotes or 0) > 0 and p.id not in taken
                          and not (sub.exclude and mentions_any(p, sub.exclude))),
                         key=lambda p: -(p.upvotes or 0))
        return [Pick(paper=p, score=float(p.upvotes or 0), reason=f"{p.upvotes} upvotes")
                for p in popular[: self.options.trending_k]]

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
    def active_subscribers(self, only: str | None = None) -> list[Subscriber]:
        with self.engine.connect() as conn:
            subs = sub_store.list_subscribers(conn, receiving_only=True)
        if only is not None:
            subs = [s for s in subs if s.email == only.strip().lower()]
            if not subs:
                raise InputError(f"no active subscriber {only}")
        return subs

    def run(
        self, digest_date: date, now: datetime, *, only: str | None = None, dry_run: bool = False
    ) -> RunReport:
        now_db = _naive_utc(now)
        report = RunReport(digest_date=digest_date, dry_run=dry_run)
        subs = self.active_subscribers(only)
        with self.engine.connect() as conn:
            existing = {s.id: ledger.get_delivery(conn, s.id, digest_date) for s in subs}

        to_rank = [s for s in subs if existing[s.id] is None]
        to_send: list[_Batch] = []
        for sub in subs:
            row = existing[sub.id]
            if row is None:
                continue
            if row.status in ledger.FINAL_STATES:
                report.outcomes.append(SubscriberOutcome(sub.email, "already_sent" if row.status == "sent"
                                                         else "failed", row.n_picks, row.last_error or ""))
            elif row.status == "sending" and now_db - row.updated_at < ledger.STALE_SENDING:
                report.outcomes.append(SubscriberOutcome(sub.email, "in_progress", row.n_picks))
            else:
                to_send.append(self._stored(sub, row))

        for item in self.plan(to_rank, digest_date, now):
            report.candidates = item.candidates
            sub, picks = item.subscriber, item.picks
            if not picks and self.options.quiet_day == "skip":
                report.outcomes.append(SubscriberOutcome(sub.email, "quiet", 0, "no new paper matched"))
                continue
            if dry_run:
                report.outcomes.append(SubscriberOutcome(sub.email, "would_send", len(picks)))
                continue
            with self.engine.begin() as conn:
                row = ledger.create_delivery(conn, subscriber_id=sub.id, digest_date=digest_date, picks=picks,
                                             now=now_db, trending=item.trending)
            if row is None:  # another run got there first
                report.outcomes.append(SubscriberOutcome(sub.email, "in_progress", len(picks)))
                continue
            to_send.append(_Batch(sub, row, picks, item.candidates, item.trending))

        if dry_run:
            report.outcomes.extend(SubscriberOutcome(b.sub.email, "would_send", len(b.picks)) for b in to_send)
            return report
        report.outcomes.extend(self._send(to_send, now))
        return report

    def _send(self, batch: Sequence[_Batch], now: datetime) -> list[SubscriberOutcome]:
        now_db = _naive_utc(now)
        messages: list[OutgoingMessage] = []
        owners = {b.row.id: b for b in batch}
        outcomes: list[SubscriberOutcome] = []
        for b in batch:
            try:
                msg = self._message(b, now)
            except ValueError as exc:  # an address the composer refuses: this one fails, the rest go
                with self.engine.begin() as conn:
                    ledger.finish(conn, b.row.id, status="failed", now=now_db, detail=str(exc))
                outcomes.append(SubscriberOutcome(b.sub.email, "failed", len(b.picks), str(exc)))
                continue
            with self.engine.begin() as conn:
                if not ledger.claim(conn, b.row.id, now_db):
                    outcomes.append(SubscriberOutcome(b.sub.email, "in_progress", len(b.picks)))
                    continue
                ledger.set_message_id(conn, b.row.id, msg.message_id)
            messages.append(msg)
        if not messages:
            return outcomes
        try:
            results = self.transport_factory().deliver(messages)
        except DeliveryError as exc:
            # Nothing went out: every claimed row is retried by the next run.
            with self.engine.begin() as conn:
                for m in messages:
                    ledger.finish(conn, m.key, status="temp_failed", now=now_db, detail=str(exc))
            raise
        with self.engine.begin() as conn:
            for res in results:
                ledger.finish(conn, res.key, status=res.status, now=now_db, detail=res.detail, location=res.location)
                b = owners[res.key]
                outcomes.append(SubscriberOutcome(b.sub.email, res.status, len(b.picks), res.detail, res.location))
        return outcomes

    def preview(self, email_addr: str, digest_date: date) -> tuple[RenderedDigest, int]:
        """The subscriber's next digest as it would be rendered now; records nothing."""
        with self.engine.connect() as conn:
            sub = sub_store.get_subscriber(conn, email_addr.strip().lower())
        if sub is None:
            raise InputError(f"no subscriber {email_addr}")
        item = self.plan([sub], digest_date)[0]
        return self.render(sub, item.picks, digest_date, item.candidates, trending=item.trending), len(item.picks)


def record_run(engine: Engine, report: RunReport, started: datetime, finished: datetime,
               sources: dict[str, int] | None = None) -> None:
    counts: dict[str, int] = dict(report.counts())
    counts.update(sources or {})
    with engine.begin() as conn:
        run_store.record(conn, digest_date=report.digest_date, started=_naive_utc(started),
                         finished=_naive_utc(finished), status="failed" if report.error else "done",
                         counts=counts, error=report.error)
