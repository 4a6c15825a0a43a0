"""Planning a day: the candidate papers ranked for each subscriber, in groups, here or in forked
processes (the day's features are built once and inherited; see compact.py for the way back).
Models are retrained where feedback is new (digest.training)."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine

from digest.domain import Paper, Pick, Subscriber, naive_utc
from digest.pipeline.compact import compact, expand
from digest.process.forked import fork_available, map_forked
from digest.process.gcpause import paused_gc
from digest.rank import features
from digest.rank.encoder import TextEncoder, is_sentence_encoder
from digest.rank.ranker import SCORE_CHUNK, DayPapers, RankOptions, rank_all
from digest.rank.semantic import Semantic
from digest.store import learning
from digest.store import papers as paper_store
from digest.training.meaning import StoredMeaning
from digest.training.models import KnownPapers, load_states
from digest.training.terms import StoredTerms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Planned:
    subscriber: Subscriber
    picks: list[Pick]
    candidates: int
    trending: list[Pick] = field(default_factory=list)


class Planner:
    def __init__(self, engine: Engine, options: RankOptions, *, lookback_days: int, include_replacements: bool,
                 encoder: TextEncoder | None = None, rank_processes: int = 1) -> None:
        """encoder: a sentence encoder (the embed extra); None ranks on tf-idf alone.
        rank_processes: groups of subscribers ranked in this many forked processes (1: here)."""
        self.engine = engine
        self.options = options
        self.lookback_days = lookback_days
        self.include_replacements = include_replacements
        self.encoder = encoder
        self.rank_processes = rank_processes
        self.embedded = 0  # texts the encoder embedded in this planner's runs (the rest came from the store)

    def _window(self, digest_date: date) -> tuple[datetime, datetime]:
        until = datetime.combine(digest_date + timedelta(days=1), time())
        return until - timedelta(days=self.lookback_days), until

    def plan(self, subscribers: Sequence[Subscriber], digest_date: date,
             now: datetime | None = None, stop: threading.Event | None = None) -> list[Planned]:
        """Rank the candidate papers for these subscribers (models retrained where feedback is new).
        stop: checked between groups of subscribers (about a second each at 2,000); when set, the
        groups not ranked yet are left for the next run (the first group is always ranked)."""
        since, until = self._window(digest_date)
        with self.engine.connect() as conn:
            candidates = paper_store.candidate_papers(
                conn, since=since, until=until, include_replacements=self.include_replacements
            )
        space = feature_space(self.engine, candidates)
        # Papers are embedded once, lazily, in the run that first needs them (then read from the store).
        stored = StoredMeaning(self.engine, self.encoder) if self.encoder is not None and candidates else None
        rank_options = self.options
        day = DayPapers.build(candidates, space) if candidates else None
        # Subscribers in groups: their models and labels are held for one group at a time.
        forking = stored is None and self.rank_processes > 1 and len(subscribers) > SCORE_CHUNK and fork_available()
        groups = _groups(subscribers, self.rank_processes if forking else 1)
        known = KnownPapers()
        when = naive_utc(now or datetime.now(UTC))

        ids = [p.id for p in candidates if p.id is not None]

        def plan_group(g: int) -> list[Planned]:
            with paused_gc():
                return self._plan_group(groups[g], candidates, ids, space, when, rank_options, day, stored,
                                        known)

        if forking:
            # Groups ranked in forked processes (the encoder's model is not forked: torch holds threads).
            col_of = {p.id: c for c, p in enumerate(candidates)}
            small = map_forked(lambda g: [(compact(x.picks, col_of), compact(x.trending, col_of))
                                          for x in plan_group(g)], len(groups),
                               self.rank_processes, initializer=lambda: self.engine.dispose(close=False))
            with paused_gc():  # a hundred thousand picks made again here, none of them in a cycle
                planned = [Planned(groups[g][k], expand(picks, candidates), len(candidates),
                                   expand(trending, candidates))
                           for g, part in enumerate(small) for k, (picks, trending) in enumerate(part)]
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
                    stored: StoredMeaning | None, known: KnownPapers) -> list[Planned]:
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
        return [Planned(st.subscriber, r.picks, len(candidates), r.trending)
                for st, r in zip(states, ranked, strict=True)]


def feature_space(engine: Engine, papers: Sequence[Paper]) -> features.FeatureSpace:
    """The words' weights of every stored paper (their document frequencies), or of these papers
    alone while nothing is stored yet."""
    with engine.connect() as conn:
        stats = learning.load_df(conn, features.N_FEATURES)
    if stats is not None and stats[0] > 0:
        return features.FeatureSpace.from_stats(stats[1], stats[0], terms=StoredTerms(engine))
    return features.FeatureSpace.from_texts([features.paper_text(p) for p in papers])


def _groups(subscribers: Sequence[Subscriber], processes: int) -> list[Sequence[Subscriber]]:
    """Groups of at most SCORE_CHUNK subscribers, as many as a multiple of the processes and of
    even sizes, so that no process is left ranking a last small group while the others wait."""
    n = len(subscribers)
    count = math.ceil(math.ceil(n / SCORE_CHUNK) / processes) * processes
    size = max(1, math.ceil(n / count)) if n else 1
    return [subscribers[i:i + size] for i in range(0, n, size)]
