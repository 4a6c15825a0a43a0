"""The learning loop on a real database: stars pull a topic up, dislikes push one down, scanner
clicks teach nothing, models persist between runs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from digest.config import Settings
from digest.domain import Paper
from digest.store import learning
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.engine import open_engine
from digest.store.schema import events, subscriber_models
from digest.training.models import read_group
from digest.wiring import App

DAY1 = date(2026, 11, 2)
T1 = datetime(2026, 11, 2, 6, 0)

PROTEIN = ["Protein structure prediction with deep networks", "Folding proteins from sequence alone",
           "Protein language models learn contacts", "Predicting protein binding sites",
           "Protein design by inverse folding"]
ATTENTION = ["Sparse attention for long documents", "Efficient sparse attention kernels",
             "Sparse attention in vision transformers", "Learned sparse attention patterns",
             "Sparse attention for speech", "Block sparse attention at scale"]
OTHER = ["Bird migration flyways", "Soil carbon in boreal forests", "Auction design with budgets",
         "Ocean heat content trends", "Medieval trade routes", "Urban heat islands"]


def _paper(n: int, title: str, abstract: str | None = None, categories: tuple[str, ...] = ()) -> Paper:
    return Paper(canonical_id=f"arxiv:2411.{n:05d}", arxiv_id=f"2411.{n:05d}", version=1, title=title,
                 abstract=abstract or f"We study {title.lower()}.", url=f"https://arxiv.org/abs/2411.{n:05d}",
                 categories=categories, announce_type="new", source="test")


@pytest.fixture
def app(tmp_path: Path, db_url: str) -> Any:
    s = Settings(**{
        "state_dir": str(tmp_path / "state"), "database": {"url": db_url}, "sources": [],
        "digest": {"top_k": 3, "diversity": 0.0, "min_score": 0.0},
        "web": {"base_url": "https://d.example.org", "secret_key": "k" * 32},
    })
    a = App.open(s)
    with a.engine.begin() as conn:
        sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["sparse attention"], now=T1)
    yield a
    a.close()


def _ingest(app: App, papers: list[Paper], when: datetime) -> list[Paper]:
    with app.engine.begin() as conn:
        _, fresh = paper_store.upsert_papers(conn, papers, when)
    return fresh


def _event(app: App, paper: Paper, kind: str, when: datetime, flagged: bool = False) -> None:
    with app.engine.begin() as conn:
        conn.execute(insert(events).values(subscriber_id=1, paper_id=paper.id, kind=kind, origin="test",
                                           flagged=flagged, created_at=when))


def _titles(app: App, day: date) -> list[str]:
    [planned] = app.pipeline().plan(app.pipeline().active_subscribers(), day,
                                    datetime.combine(day, datetime.min.time(), UTC))
    return [p.paper.title for p in planned.picks]


def test_a_starred_topic_rises(app: App) -> None:
    old = _ingest(app, [_paper(i, t) for i, t in enumerate(PROTEIN[:3] + ATTENTION[:3] + OTHER[:3])], T1)
    # Day 2: new papers, among them proteins that share no word with "sparse attention".
    day2 = T1 + timedelta(days=1)
    _ingest(app, [_paper(100 + i, t) for i, t in enumerate(PROTEIN[3:] + ATTENTION[3:] + OTHER[3:])], day2)
    everything = len(PROTEIN) + len(ATTENTION) + len(OTHER)
    before = _titles_all(app, DAY1 + timedelta(days=1), k=everything)
    for p in old[:3]:  # the reader stars the three protein papers of day 1
        _event(app, p, "star", day2)
    after = _titles_all(app, DAY1 + timedelta(days=1), k=everything)
    new_protein = PROTEIN[3:]
    for title in new_protein:
        assert after.index(title) < before.index(title), (before, after)
        assert all(after.index(title) < after.index(o) for o in OTHER[3:])  # above the unrelated
    # The keywords still count: sparse-attention papers stay among the first picks, and the
    # starred papers themselves are never offered again.
    assert sum(t.lower().startswith(("sparse", "efficient sparse", "block sparse")) for t in after[:6]) >= 2
    assert not set(PROTEIN[:3]) & set(after)
    [planned] = app.pipeline().plan([replace(app.pipeline().active_subscribers()[0], top_k=8)],
                                    DAY1 + timedelta(days=1), day2)
    reasons = [p.reason for p in planned.picks if "rotein" in p.paper.title]
    assert reasons and any(r.startswith("Like the paper you starred: ") for r in reasons), planned.picks
    with app.engine.connect() as conn:  # the model was kept for the next run
        assert conn.execute(select(func.count()).select_from(subscriber_models)).scalar_one() == 1


def test_dislikes_push_down_and_scanner_clicks_teach_nothing(app: App) -> None:
    day = [_paper(i, t) for i, t in enumerate(ATTENTION)]
    day[4] = _paper(4, "Sparse attention for speech", "Sparse attention for speech recognition and audio.")
    stored = _ingest(app, day, T1)
    base = _scores(app, DAY1)
    # Scanner clicks (flagged) change nothing.
    for p in stored:
        _event(app, p, "click", T1, flagged=True)
    assert _scores(app, DAY1) == base
    # A dislike of an audio paper: the speech paper loses ground against the other attention papers.
    audio = _ingest(app, [_paper(50, "Audio tagging with transformers",
                                 "Speech and audio recognition with sparse attention.")], T1 - timedelta(days=9))
    _event(app, audio[0], "dislike", T1)
    after = _scores(app, DAY1)
    lead_before = base["Sparse attention for speech"] - max(v for k, v in base.items() if "speech" not in k)
    lead_after = after["Sparse attention for speech"] - max(v for k, v in after.items() if "speech" not in k)
    assert lead_after < lead_before - 0.01, (lead_before, lead_after)


def test_stars_in_one_arxiv_class_lift_its_papers_that_share_none_of_their_words(app: App) -> None:
    """Three starred combinatorics papers share no word with a new one; its arXiv class, which the
    authors chose, says it is what the reader wants, and it gains on a paper filed elsewhere."""
    starred = _ingest(app, [_paper(1, "Ramsey numbers of bounded degree hypertrees", categories=("math.CO",)),
                            _paper(2, "Hamilton cycles in vertex transitive graphs", categories=("math.CO",)),
                            _paper(3, "Turan density of two adjacent cycles", categories=("math.CO", "cs.DM"))]
                      + [_paper(10 + i, t, categories=("q-bio.BM",)) for i, t in enumerate(OTHER[:3])], T1)
    day2 = T1 + timedelta(days=1)
    _ingest(app, [_paper(100, "Counting lattice walks confined to cones", categories=("math.CO",)),
                  _paper(101, "Counting lattice vibrations of crystals", categories=("cond-mat.mtrl-sci",))]
            + [_paper(110 + i, t, categories=("q-bio.BM",)) for i, t in enumerate(OTHER[3:])], day2)
    walks, vibrations = "Counting lattice walks confined to cones", "Counting lattice vibrations of crystals"
    before = _scores(app, DAY1 + timedelta(days=1))
    for p in starred[:3]:
        _event(app, p, "star", day2)
    after = _scores(app, DAY1 + timedelta(days=1))
    assert after[walks] - after[vibrations] > before[walks] - before[vibrations] + 0.02, (before, after)
    assert after[walks] > after[vibrations]


def _scores(app: App, day: date) -> dict[str, float]:
    sub = app.pipeline().active_subscribers()[0]
    [planned] = app.pipeline().plan([replace(sub, top_k=50)], day, datetime.combine(day, datetime.min.time(), UTC))
    return {p.paper.title: round(p.score, 6) for p in planned.picks}


def _titles_all(app: App, day: date, k: int) -> list[str]:
    sub = app.pipeline().active_subscribers()[0]
    [planned] = app.pipeline().plan([replace(sub, top_k=k)], day, datetime.combine(day, datetime.min.time(), UTC))
    return [p.paper.title for p in planned.picks]


def test_an_undone_star_is_unlearned(app: App) -> None:
    from digest.store import events as event_store

    old = _ingest(app, [_paper(i, t) for i, t in enumerate(PROTEIN[:3] + ATTENTION[:3])], T1)
    _ingest(app, [_paper(100 + i, t) for i, t in enumerate(PROTEIN[3:] + ATTENTION[3:])], T1 + timedelta(days=1))
    day2 = DAY1 + timedelta(days=1)
    everything = len(PROTEIN) + len(ATTENTION)
    before = _titles_all(app, day2, k=everything)
    for p in old[:3]:
        _event(app, p, "star", T1)
    assert _titles_all(app, day2, k=everything) != before
    with app.engine.begin() as conn:  # the reader takes the stars back (the web page's undo)
        for p in old[:3]:
            event_store.remove_events(conn, subscriber_id=1, paper_id=p.id or 0, kind="star")
    assert _titles_all(app, day2, k=everything) == before


def test_models_round_trip_and_old_format_still_loads() -> None:
    import io

    import numpy as np

    from digest.rank.learner import LinearModel

    model = LinearModel(np.array([3, 70000, 1048575], dtype=np.int32), np.array([0.5, -1.25, 2.0], dtype=np.float32),
                        -0.75, 4, 200)
    back = LinearModel.from_bytes(model.to_bytes())
    assert back.indices.tolist() == [3, 70000, 1048575] and back.values.tolist() == [0.5, -1.25, 2.0]
    assert (back.intercept, back.n_pos, back.n_neg) == (-0.75, 4, 200)
    # Models stored by the first release (.npz) are read as they were.
    buf = io.BytesIO()
    np.savez_compressed(buf, indices=model.indices, values=model.values, meta=np.array([-0.75, 4, 200.0]))
    old = LinearModel.from_bytes(buf.getvalue())
    assert old.indices.tolist() == back.indices.tolist() and old.n_neg == 200
    assert not back.before_classes and old.before_classes  # to be retrained with the arXiv classes


def test_a_model_stored_before_the_class_block_keeps_its_scores_and_is_retrained(tmp_path: Path) -> None:
    """Models stored before the arXiv class block (digest.rank.classes) had their embedding dims
    right after the hashed space: read now, those weights move past the class block, so the model
    scores every paper as it did; and the next run retrains it, with the classes."""
    import numpy as np

    from digest.rank.classes import N_CLASSES
    from digest.rank.features import N_FEATURES
    from digest.rank.learner import LinearModel

    word, dim = 70000, N_FEATURES + 2
    head = LinearModel._HEADER.pack(b"LM1\0", 2, 0.5, 3, 9)
    stored = (head + np.array([word, dim], dtype="<i4").tobytes()
              + np.array([1.5, -2.0], dtype="<f4").tobytes())
    old = LinearModel.from_bytes(stored)
    assert old.indices.tolist() == [word, N_FEATURES + N_CLASSES + 2] and old.values.tolist() == [1.5, -2.0]
    assert old.before_classes and (old.intercept, old.n_pos, old.n_neg) == (0.5, 3, 9)

    engine = open_engine(f"sqlite:///{tmp_path / 'd.db'}")
    with engine.begin() as conn:
        sid = sub_store.upsert_subscriber(conn, email="a@example.org", keywords=["graphs"], now=T1)[0].id
        learning.save_model(conn, sid, learning.ModelRow(stored, 3, 9), 0, T1)
        fresh = sub_store.upsert_subscriber(conn, email="b@example.org", keywords=["graphs"], now=T1)[0].id
        model = LinearModel(np.array([word], dtype=np.int32), np.array([1.0], dtype=np.float32), 0.0, 3, 9)
        learning.save_model(conn, fresh, learning.ModelRow(model.to_bytes(), 3, 9), 0, T1)
        subs = sub_store.list_subscribers(conn)
    group = read_group(engine, subs)
    assert group.stale == [sid]  # the one from before, not the one of today's layout
    engine.dispose()


def test_a_model_keeps_only_its_largest_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_WEIGHTS, the smallest weights (by magnitude) are dropped, the rest kept as fitted."""
    import numpy as np
    import scipy.sparse as sp

    from digest.rank import learner

    pos = sp.random(8, 5000, density=0.05, format="csr", dtype=np.float32, random_state=3)
    neg = sp.random(40, 5000, density=0.05, format="csr", dtype=np.float32, random_state=4)
    data = learner.TrainingSet(pos, np.full(8, 3.0), neg, np.full(40, 0.2), evidence=8)
    monkeypatch.setattr(learner, "MAX_WEIGHTS", 10**9)
    full = learner.train(data)
    monkeypatch.setattr(learner, "MAX_WEIGHTS", 100)
    capped = learner.train(data)
    assert full is not None and capped is not None and len(full.indices) > 1000
    assert len(capped.indices) == 100 and list(capped.indices) == sorted(capped.indices)
    weight_of = dict(zip(full.indices.tolist(), full.values.tolist(), strict=True))
    assert all(weight_of[i] == v for i, v in zip(capped.indices.tolist(), capped.values.tolist(), strict=True))
    smallest_kept = min(abs(v) for v in capped.values.tolist())
    dropped = set(weight_of) - set(capped.indices.tolist())
    assert all(abs(weight_of[i]) <= smallest_kept for i in dropped)


def test_the_papers_being_ranked_are_not_the_models_background(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    # Trained as negatives, the day's own papers had their rarest words learned as evidence against
    # them: whichever feed was ingested last lost ground for every reader retrained that morning.
    from digest.rank import learner
    from digest.store import learning
    from digest.training.models import read_group

    monkeypatch.setattr(learner, "BACKGROUND_SAMPLE", 4)
    old = _ingest(app, [_paper(200 + i, t) for i, t in enumerate(OTHER)], T1 - timedelta(days=30))
    today = _ingest(app, [_paper(i, t) for i, t in enumerate(PROTEIN + ATTENTION)], T1)
    sub = app.pipeline().active_subscribers()[0]
    _event(app, today[0], "star", T1)
    old_ids, today_ids = {p.id for p in old}, sorted(p.id for p in today if p.id is not None)
    group = read_group(app.engine, [sub], ranked=today_ids)
    assert len(group.background) == 4 and set(group.background) <= old_ids, group.background
    # Without the day's papers named, the most recent are taken: the day's own.
    assert set(read_group(app.engine, [sub]).background) <= set(today_ids)
    # A store holding too few other papers (a first day) tops the background up with the day's.
    ranked_too = today_ids + sorted(old_ids)[:4]
    topped_up = read_group(app.engine, [sub], ranked=ranked_too).background
    assert len(topped_up) == 4 and set(topped_up[:2]) == old_ids - set(ranked_too), topped_up

    taken: list[list[int]] = []
    real = learning.background_paper_ids

    def recorded(conn: Any, limit: int, ranked: Any = ()) -> list[int]:
        taken.append(real(conn, limit, ranked))
        return taken[-1]

    monkeypatch.setattr(learning, "background_paper_ids", recorded)
    [planned] = app.pipeline().plan([sub], DAY1, T1.replace(tzinfo=UTC) + timedelta(hours=1))
    assert planned.picks and {p.paper.id for p in planned.picks} <= set(today_ids)
    assert taken and set(taken[-1]) <= old_ids, taken  # the daily run's retraining names its candidates
