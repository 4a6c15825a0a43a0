"""The project's picks for judged queries, made by the real daily pipeline.

A throwaway state folder (SQLite, outbox) gets the listing stored as a day's papers, exactly as an
ingest stores them (term counts, document frequencies), one subscriber per query with the keywords
as typed, and the digest's own picks: planned and, for the day-two protocol, delivered into the
outbox, so the impressions, the stars and the "less like this" go through the store as the email's
links leave them. The "trending" block is off: only picks are judged.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select

from digest.config import DatabaseSettings, Settings
from digest.domain import Paper, Pick, Subscriber
from digest.evaluate.judged import JudgedPaper
from digest.store import deliveries as ledger
from digest.store import events as event_store
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.engine import open_engine
from digest.store.schema import papers as papers_table
from digest.subscribe_input import parse_keywords
from digest.training import terms as term_store
from digest.wiring import App

DAY_ONE = date(2024, 11, 28)
# Day two's papers arrive after day one's have left the digest window (lookback_days), so day two
# ranks only its own papers, as the protocol asks.
DAY_GAP = timedelta(days=7)


def as_paper(p: JudgedPaper) -> Paper:
    return Paper(canonical_id=f"arxiv:{p.id}", title=p.title, abstract=p.abstract, arxiv_id=p.id,
                 url=f"https://arxiv.org/abs/{p.id}", categories=p.categories, announce_type="new",
                 source="judged")


@dataclass(frozen=True)
class JudgedPick:
    paper_id: str
    reason: str
    score: float


def _judged_picks(picks: Sequence[Pick]) -> list[JudgedPick]:
    return [JudgedPick(p.paper.arxiv_id or p.paper.canonical_id, p.reason, p.score) for p in picks]


class JudgedPipeline:
    """One state folder: the digest's picks for each query, day by day."""

    def __init__(self, settings: Settings, workdir: str | Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="digest-judged-") if workdir is None else None
        folder = Path(workdir) if workdir is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        digest = settings.digest.model_copy(update={"trending_k": 0})
        delivery = settings.delivery.model_copy(update={"method": "outbox", "outbox_dir": None})
        self.settings = settings.model_copy(update={
            "state_dir": str(folder), "database": DatabaseSettings(), "sources": [], "digest": digest,
            "delivery": delivery})
        self.app = App(self.settings, open_engine(self.settings.database_url))
        self.pipeline = self.app.pipeline()
        self.subscribers: dict[str, Subscriber] = {}

    @property
    def encoder_notice(self) -> str | None:
        return self.app.encoder_notice

    def close(self) -> None:
        self.app.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> JudgedPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def moment(day: date) -> datetime:
        return datetime.combine(day, time(6, 0), tzinfo=UTC)

    def ingest(self, papers: Sequence[JudgedPaper], day: date) -> None:
        """Store the papers as the day's ingest would."""
        now = self.moment(day).replace(tzinfo=None)
        with self.app.engine.begin() as conn:
            _, fresh = paper_store.upsert_papers(conn, [as_paper(p) for p in papers], now)
            term_store.add_papers(conn, fresh, now)

    def subscribe(self, queries: dict[str, str], top_k: int) -> None:
        now = self.moment(DAY_ONE).replace(tzinfo=None)
        with self.app.engine.begin() as conn:
            for qid, text in queries.items():
                sub, _ = sub_store.upsert_subscriber(conn, email=f"{qid.lower()}@judged.example.org",
                                                     keywords=parse_keywords(text), now=now, top_k=top_k)
                self.subscribers[qid] = sub

    def plan(self, day: date) -> dict[str, list[JudgedPick]]:
        """Each query's picks for the digest of that day (nothing recorded)."""
        qids = list(self.subscribers)
        planned = self.pipeline.plan([self.subscribers[q] for q in qids], day, self.moment(day))
        return {q: _judged_picks(item.picks) for q, item in zip(qids, planned, strict=True)}

    def deliver(self, day: date) -> dict[str, list[JudgedPick]]:
        """Run the day's digest into the outbox (picks and impressions recorded) and return its picks."""
        report = self.pipeline.run(day, self.moment(day))
        if report.error:
            raise RuntimeError(f"the judged run for {day} failed: {report.error}")
        out: dict[str, list[JudgedPick]] = {}
        with self.app.engine.connect() as conn:
            for qid, sub in self.subscribers.items():
                row = ledger.get_delivery(conn, sub.id, day)
                stored = ledger.stored_picks(conn, row.id) if row is not None else []
                ids = {s.paper_id for s in stored}
                arxiv = dict(conn.execute(select(papers_table.c.id, papers_table.c.arxiv_id)
                                          .where(papers_table.c.id.in_(ids))).all()) if ids else {}
                out[qid] = [JudgedPick(str(arxiv.get(s.paper_id, s.paper_id)), s.reason, s.score)
                            for s in stored if s.rank < ledger.TRENDING_RANK_BASE]
        return out

    def give_feedback(self, qid: str, stars: Sequence[str], dislikes: Sequence[str], day: date) -> None:
        """Stars and "less like this" as the email's links record them, an hour after delivery."""
        sub = self.subscribers[qid]
        now = (self.moment(day) + timedelta(hours=1)).replace(tzinfo=None)
        with self.app.engine.begin() as conn:
            ids = dict(conn.execute(select(papers_table.c.arxiv_id, papers_table.c.id)
                                    .where(papers_table.c.arxiv_id.in_(list(stars) + list(dislikes)))).all())
            for kind, chosen in (("star", stars), ("dislike", dislikes)):
                for pid in chosen:
                    event_store.set_opinion(conn, subscriber_id=sub.id, paper_id=ids[pid], kind=kind,
                                            origin="link", now=now)
