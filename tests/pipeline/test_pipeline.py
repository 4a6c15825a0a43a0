"""The daily run on a real database and the outbox: idempotence, quiet days, never twice, dry runs."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from digest.config import Settings
from digest.domain import Paper
from digest.errors import InputError
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.schema import deliveries, events
from digest.wiring import App

DAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def _settings(tmp_path: Path, db_url: str, **digest: Any) -> Settings:
    return Settings(**{
        "state_dir": str(tmp_path / "state"),
        "database": {"url": db_url},
        "sources": [],
        "digest": digest,
        "web": {"base_url": "https://digest.example.org", "secret_key": "k" * 32},
        "delivery": {"from_addr": "digest@example.org"},
    })


def _p(n: int, title: str, abstract: str, **kw: Any) -> Paper:
    return Paper(canonical_id=f"arxiv:2411.{n:05d}", arxiv_id=f"2411.{n:05d}", version=1, title=title,
                 abstract=abstract, url=f"https://arxiv.org/abs/2411.{n:05d}",
                 pdf_url=f"https://arxiv.org/pdf/2411.{n:05d}", authors=("A. Author", "B. Author"),
                 announce_type=kw.pop("announce_type", "new"), source="test", **kw)


PAPERS = [
    _p(1, "Sparse attention for long documents", "We make transformer attention sparse."),
    _p(2, "Diffusion models for protein design", "Denoising diffusion models generate proteins."),
    _p(3, "Bird migration flyways", "We review tracking of migrating birds."),
    _p(4, "Block-sparse attention kernels", "Fast GPU kernels for sparse attention patterns."),
]


@pytest.fixture
def app(tmp_path: Path, db_url: str) -> Any:
    a = App.open(_settings(tmp_path, db_url))
    with a.engine.begin() as conn:
        paper_store.upsert_papers(conn, PAPERS, NOW.replace(tzinfo=None) - timedelta(hours=2))
        sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["sparse attention"],
                                    now=NOW.replace(tzinfo=None))
        sub_store.upsert_subscriber(conn, email="bob@example.org", keywords=["diffusion models"],
                                    now=NOW.replace(tzinfo=None))
        sub_store.upsert_subscriber(conn, email="cat@example.org", keywords=["quantum chromodynamics"],
                                    now=NOW.replace(tzinfo=None))
    yield a
    a.close()


def _eml_files(app: App) -> list[Path]:
    return sorted(app.settings.outbox_path.rglob("*.eml"))


def test_run_delivers_matching_picks_and_rerun_sends_nothing(app: App) -> None:
    report = app.pipeline().run(DAY, NOW)
    assert report.count("sent") == 2 and report.count("quiet") == 1
    files = _eml_files(app)
    assert len(files) == 2
    msg = email.message_from_bytes((app.settings.outbox_path / "2026-11-29" / "ada@example.org-1.eml").read_bytes(),
                                   policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Sparse attention for long documents" in text and "Block-sparse attention kernels" in text
    assert "Bird migration" not in text and "protein" not in text
    assert msg["List-Unsubscribe"].startswith("<https://digest.example.org/unsubscribe/")
    assert "ada@example.org" not in msg["List-Unsubscribe"]  # opaque ids only

    again = app.pipeline().run(DAY, NOW + timedelta(hours=1))
    assert again.count("sent") == 0 and again.count("already_sent") == 2
    assert len(_eml_files(app)) == 2
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == 2


def test_a_paper_is_never_sent_twice(app: App) -> None:
    app.pipeline().run(DAY, NOW)
    # The next day a new version of paper 1 and a brand-new matching paper arrive.
    with app.engine.begin() as conn:
        paper_store.upsert_papers(conn, [
            _p(1, "Sparse attention for long documents (v2)", "Revised.", announce_type="replace", **{}),
            _p(5, "Sparse attention on the edge", "Sparse attention for phones."),
        ], NOW.replace(tzinfo=None) + timedelta(days=1))
    report = app.pipeline().run(DAY + timedelta(days=1), NOW + timedelta(days=1), only="ada@example.org")
    assert report.count("sent") == 1
    day2 = app.settings.outbox_path / "2026-11-30"
    [eml] = list(day2.glob("*.eml"))
    text = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default).get_body(("plain",)).get_content()
    assert "Sparse attention on the edge" in text
    assert "long documents" not in text and "Block-sparse" not in text


def test_quiet_day_note(tmp_path: Path, db_url: str) -> None:
    a = App.open(_settings(tmp_path, db_url, quiet_day="note"))
    try:
        with a.engine.begin() as conn:
            sub_store.upsert_subscriber(conn, email="cat@example.org", keywords=["quantum chromodynamics"],
                                        now=NOW.replace(tzinfo=None))
        report = a.pipeline().run(DAY, NOW)
        assert report.count("sent") == 1
        [eml] = _eml_files(a)
        msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        assert "nothing new" in msg["Subject"]
    finally:
        a.close()


def test_dry_run_records_nothing(app: App) -> None:
    report = app.pipeline().run(DAY, NOW, dry_run=True)
    assert report.count("would_send") == 2
    assert _eml_files(app) == []
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 0


def test_only_one_subscriber_and_unknown_address(app: App) -> None:
    report = app.pipeline().run(DAY, NOW, only="bob@example.org")
    assert [o.email for o in report.outcomes] == ["bob@example.org"]
    with pytest.raises(InputError, match="nobody@example.org"):
        app.pipeline().run(DAY, NOW, only="nobody@example.org")


def test_preview_records_nothing_and_matches_the_run(app: App) -> None:
    rendered, n = app.pipeline().preview("ada@example.org", DAY)
    assert n == 2 and "Sparse attention for long documents" in rendered.html
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 0


def test_unsubscribed_get_nothing(app: App) -> None:
    with app.engine.begin() as conn:
        sub = sub_store.get_subscriber(conn, "ada@example.org")
        assert sub is not None
        sub_store.deactivate(conn, sub.id, NOW.replace(tzinfo=None))
    report = app.pipeline().run(DAY, NOW)
    assert "ada@example.org" not in {o.email for o in report.outcomes}


def test_trending_block_lists_upvoted_papers_on_the_readers_topic_not_picked(tmp_path: Path, db_url: str) -> None:
    """The block holds the most upvoted papers that pass the reader's relevance floor and are not
    among the picks: a popular paper off the reader's topic is not shown, and a reader who turned
    the block off gets none."""
    a = App.open(_settings(tmp_path, db_url, trending_k=2, top_k=1))
    try:
        with a.engine.begin() as conn:
            paper_store.upsert_papers(conn, [
                *PAPERS,
                _p(10, "Scaling laws for robots", "Robots.", upvotes=120),
                _p(11, "A very popular benchmark", "Benchmarks.", upvotes=300),
                _p(12, "Sparse attention in vision transformers", "Sparse attention for images.", upvotes=5),
                _p(13, "Sparse attention, hugely popular", "Sparse attention everywhere.", upvotes=999),
                _p(14, "Mixture of sparse attention heads", "We route tokens with sparse attention.", upvotes=50),
            ], NOW.replace(tzinfo=None) - timedelta(hours=1))
            sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["sparse attention"],
                                        now=NOW.replace(tzinfo=None))
            sub_store.upsert_subscriber(conn, email="bob@example.org", keywords=["sparse attention"],
                                        trending=False, now=NOW.replace(tzinfo=None))
        planned = {x.subscriber.email: x for x in a.pipeline().plan(a.pipeline().active_subscribers(), DAY, NOW)}
        ada, bob = planned["ada@example.org"], planned["bob@example.org"]
        assert len(ada.picks) == 1 and bob.trending == []
        shown = [p.paper.title for p in ada.trending]
        assert len(shown) == 2 and ada.picks[0].paper.title not in shown
        assert all("sparse attention" in t.lower() for t in shown)  # the popular papers off the topic are not
        assert [p.paper.upvotes for p in ada.trending] == sorted((p.paper.upvotes or 0 for p in ada.trending),
                                                                 reverse=True)
        a.pipeline().run(DAY, NOW, only="ada@example.org")
        [eml] = _eml_files(a)
        msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        block = text.split("TRENDING TODAY", 1)[1]
        assert shown[0] in block and f"[{ada.trending[0].paper.upvotes} upvotes]" in block
        assert "A very popular benchmark" not in block and "Scaling laws for robots" not in block
        assert "Trending today" in msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        # Trending papers count as shown: they never come back.
        again = a.pipeline().plan(a.pipeline().active_subscribers(), DAY + timedelta(days=1), NOW)
        assert set(shown).isdisjoint(p.paper.title for x in again for p in x.trending + x.picks
                                     if x.subscriber.email == "ada@example.org")
    finally:
        a.close()


def test_ranking_in_forked_processes_plans_the_same_digests(tmp_path: Path, db_url: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """dispatch.rank_processes > 1: groups of subscribers ranked in forked processes give the very
    digests one process gives, and the models they retrain are stored (not retrained again)."""
    import digest.pipeline.plan as plan_module
    from digest.store import learning

    monkeypatch.setattr(plan_module, "SCORE_CHUNK", 3)  # 8 subscribers: 3 groups
    a = App.open(_settings(tmp_path, db_url))
    naive_now = NOW.replace(tzinfo=None)
    topics = ["sparse attention", "diffusion models", "bird migration", "attention kernels"]
    with a.engine.begin() as conn:
        _, stored = paper_store.upsert_papers(conn, PAPERS, naive_now - timedelta(hours=2))
        for i in range(8):
            sub, _ = sub_store.upsert_subscriber(conn, email=f"r{i}@example.org", keywords=[topics[i % 4]],
                                                 now=naive_now)
            # A star from yesterday's digest on every other subscriber: a model to train.
            if i % 2:
                learning.add_stars(conn, sub.id, [stored[i % 4].id], "test", naive_now - timedelta(days=1))
    pipe = a.pipeline()
    subs = pipe.active_subscribers()
    pipe.planner.rank_processes = 2
    forked = pipe.plan(subs, DAY, NOW)  # first: the models are trained in the forked processes
    with a.engine.connect() as conn:
        trained = {sid: m.trained_at for sid, m in learning.load_models(conn, [s.id for s in subs]).items()}
    pipe.planner.rank_processes = 1
    alone = pipe.plan(subs, DAY, NOW)

    def shape(planned: list[Any]) -> list[Any]:
        return [(x.subscriber.email, [(p.paper.id, round(p.score, 6), p.reason) for p in x.picks],
                 [p.paper.id for p in x.trending]) for x in planned]

    assert shape(forked) == shape(alone)
    # Picked: the readers whose phrase is in a paper they did not star (a starred paper is not sent
    # again; the one other paper for "attention kernels" shares only the word "attention").
    assert {x.subscriber.email for x in forked if x.picks} == {"r0@example.org", "r2@example.org",
                                                               "r4@example.org", "r6@example.org"}
    assert all(p.paper.title for x in forked for p in x.picks)  # whole papers, not ids
    assert len(trained) == 4  # the four who starred have a model, stored by the process that trained it
    with a.engine.connect() as conn:
        again = {sid: m.trained_at for sid, m in learning.load_models(conn, [s.id for s in subs]).items()}
    assert again == trained  # and the second plan did not train them again
    a.close()


def test_a_stop_during_ranking_leaves_the_other_groups_for_the_next_run(app: App,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM while a large day is being ranked: the groups not ranked yet are not ranked (the run
    ends within a group's time, about a second at 2,000 readers, instead of ranking everyone first)."""
    import threading

    from digest.pipeline import plan as plan_module

    monkeypatch.setattr(plan_module, "SCORE_CHUNK", 1)  # one reader a group: three groups
    ranked: list[str] = []
    stop = threading.Event()
    plan_group = plan_module.Planner._plan_group

    def group_then_sigterm(self: Any, group: Any, *args: Any) -> Any:
        ranked.extend(s.email for s in group)
        stop.set()  # the signal arrives while the first group is ranked
        return plan_group(self, group, *args)

    monkeypatch.setattr(plan_module.Planner, "_plan_group", group_then_sigterm)
    report = app.pipeline().run(DAY, NOW, stop=stop)
    assert len(ranked) == 1 and report.stopped and report.count("sent") == 0 and _eml_files(app) == []
    assert report.count("deferred") == 3  # one ranked and left pending, two not ranked

    monkeypatch.setattr(plan_module.Planner, "_plan_group", plan_group)
    again = app.pipeline().run(DAY, NOW + timedelta(minutes=5))
    assert again.count("sent") == 2 and again.count("quiet") == 1  # nobody lost, nobody sent twice
    assert len(_eml_files(app)) == 2
