"""Keeping each subscriber's model current: retrain from the store when new feedback arrived (the store
keeps the model's bytes, digest.rank.learner trains and reads it)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from digest.domain import Paper, Subscriber
from digest.rank import classes, learner, semantic
from digest.rank.features import FeatureSpace
from digest.rank.ranker import Labelled, SubscriberState, training_set
from digest.store import events as event_store
from digest.store import learning
from digest.store import papers as paper_store
from digest.training.meaning import StoredMeaning

log = logging.getLogger(__name__)
MAX_LIKED_FOR_REASONS = 50


class KnownPapers(dict[int, Paper]):
    """Stored papers already read in this run, by id: the groups of subscribers of one run share
    many liked papers, and reading them again was a large part of preparing each group."""

    LIMIT = 200_000  # papers (text only): beyond, start again rather than grow without bound

    def fetch(self, conn: Connection, ids: Collection[int]) -> dict[int, Paper]:
        missing = sorted(i for i in ids if i not in self)
        if len(self) + len(missing) > self.LIMIT:
            self.clear()
            missing = sorted(ids)
        self.update(paper_store.paper_texts(conn, missing))
        return {i: self[i] for i in ids if i in self}


@dataclass
class GroupFeedback:
    """What the store holds for a group of subscribers: models, feedback, and the papers behind it."""

    subscribers: Sequence[Subscriber]
    models: dict[int, learner.LinearModel | None]
    latest: dict[int, int]  # subscriber id -> its latest event id
    labels: dict[int, learning.Labels]
    stale: list[int]  # subscribers whose model is older than their feedback
    background: list[int]
    papers: dict[int, Paper]  # liked papers, and every paper the stale models train on


def read_group(engine: Engine, subscribers: Sequence[Subscriber], meaning: StoredMeaning | None = None,
               known: KnownPapers | None = None, ranked: Collection[int] = ()) -> GroupFeedback:
    """Stored models, labels and the papers they name, in a few queries for the whole group.

    meaning: the sentence encoder (the embed extra) is on: a model trained without it is stale,
    and the other way round; so is one from before the arXiv class block (digest.rank.classes).
    known: papers read for earlier groups of the same run. ranked: the papers about to be ranked,
    kept out of the models' background negatives where the store allows
    (see learning.background_paper_ids).
    """
    known = known if known is not None else KnownPapers()
    ids = [s.id for s in subscribers]
    with engine.connect() as conn:
        stored = learning.load_models(conn, ids)
        models: dict[int, learner.LinearModel | None] = {
            sid: learner.LinearModel.from_bytes(m.weights) for sid, m in stored.items()}
        latest = event_store.latest_event_ids(conn, ids)
        labels = learning.labels_for(conn, ids)
        encoded = meaning is not None  # a model trained with the encoder's dims, or without them, is stale otherwise
        stale = [s.id for s in subscribers
                 if latest.get(s.id, 0) > (stored[s.id].last_event_id if s.id in stored else 0)
                 or ((m := models.get(s.id)) is not None
                     and (m.before_classes or semantic.uses_embedding(m.indices) != encoded))]
        background = learning.background_paper_ids(conn, learner.BACKGROUND_SAMPLE, ranked) if stale else []
        need: set[int] = set(background)
        for sid, lab in labels.items():
            need |= lab.stars | lab.clicks | lab.dislikes
            if sid in stale:
                need |= lab.shown
        papers = known.fetch(conn, need)
    return GroupFeedback(subscribers, models, latest, labels, stale, background, papers)


def retrain_stale(engine: Engine, group: GroupFeedback, space: FeatureSpace, now: datetime,
                  meaning: StoredMeaning | None = None) -> None:
    """Retrain and store the group's stale models (group.models is updated)."""
    if not group.stale:
        return
    stale = set(group.stale)
    used: set[int] = set(group.background)
    for sid in group.stale:
        lab = group.labels.get(sid)
        if lab is not None:
            used |= lab.stars | lab.clicks | lab.dislikes | lab.shown
    order = [pid for pid in group.papers if pid in used]
    trained_on = [group.papers[i] for i in order]
    row_of = {pid: r for r, pid in enumerate(order)}
    by_id = {s.id: s for s in group.subscribers if s.id in stale}
    readers = [by_id[sid] for sid in group.stale]
    with engine.connect() as conn:  # the classes of these papers only: liked papers need no more than their text
        filed = paper_store.paper_categories(conn, order)
    matrix = semantic.combine(space.paper_vectors(trained_on), classes.class_rows([filed.get(i, ()) for i in order]),
                              meaning.papers(trained_on) if meaning is not None else None)
    kw = semantic.combine(space.text_vectors([" . ".join(s.keywords) for s in readers]),
                          classes.keyword_classes(readers), meaning.keywords(readers) if meaning is not None else None)
    for n, sid in enumerate(group.stale):
        found = group.labels.get(sid)
        data = None
        if found is not None:
            data = training_set(Labelled(
                stars=sorted(found.stars), clicks=sorted(found.clicks), dislikes=sorted(found.dislikes),
                ignored=sorted(found.shown - found.clicks - found.stars), background=group.background,
            ), matrix, row_of, kw[n])
        group.models[sid] = learner.train(data) if data is not None else None
    with engine.begin() as conn:
        for sid in group.stale:
            model = group.models[sid]
            row = learning.ModelRow(model.to_bytes(), model.n_pos, model.n_neg) if model is not None else None
            learning.save_model(conn, sid, row, group.latest.get(sid, 0), now)
    log.info("retrained %d subscriber model(s)", len(group.stale))


def states_of(group: GroupFeedback, candidate_ids: Sequence[int]) -> list[SubscriberState]:
    """Each subscriber's model, the candidates it must not see again, and the papers it liked."""
    candidates = set(candidate_ids)
    states = []
    for s in group.subscribers:
        mine = group.labels.get(s.id)
        liked: list[tuple[str, Paper]] = []
        disliked: list[Paper] = []
        if mine is not None:
            by_id = group.papers
            liked = [("starred", by_id[p]) for p in sorted(mine.stars - mine.dislikes) if p in by_id]
            liked += [("opened", by_id[p]) for p in sorted(mine.clicks - mine.stars - mine.dislikes) if p in by_id]
            disliked = [by_id[p] for p in sorted(mine.dislikes) if p in by_id][:MAX_LIKED_FOR_REASONS]
        # A paper already shown, or starred, opened or waved away, is never offered again. The labels
        # hold every impression, so this needs no query per subscriber.
        seen = ((mine.shown | mine.stars | mine.clicks | mine.dislikes) & candidates) if mine is not None else set()
        states.append(SubscriberState(s, group.models.get(s.id), seen, liked[:MAX_LIKED_FOR_REASONS], disliked))
    return states


def load_states(engine: Engine, subscribers: Sequence[Subscriber], candidate_ids: Sequence[int],
                space: FeatureSpace, now: datetime, meaning: StoredMeaning | None = None,
                known: KnownPapers | None = None) -> list[SubscriberState]:
    """Each subscriber's model (retrained if stale), shown papers and liked papers (see read_group)."""
    group = read_group(engine, subscribers, meaning, known, candidate_ids)
    retrain_stale(engine, group, space, now, meaning)
    return states_of(group, candidate_ids)
