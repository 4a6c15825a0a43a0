"""The bundled static word-piece vectors: meaning without the embed extra.

These run on the default install (numpy only): the vectors ship in the package.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from digest.config import Settings
from digest.domain import Paper
from digest.rank import encoder, static_vectors
from digest.rank.static_vectors import StaticEncoder, WordPieces
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.wiring import App

DAY = date(2026, 11, 2)
T0 = datetime(2026, 11, 2, 6, 0)


@pytest.fixture(scope="module")
def vectors() -> StaticEncoder:
    enc = encoder.load("static")
    assert isinstance(enc, StaticEncoder)
    return enc


def test_word_pieces_split_the_longest_known_prefix_first() -> None:
    vocab = ["bio", "##mol", "##ecular", "##e", "protein", "-", "##cular"]
    pieces = WordPieces(vocab)
    assert [vocab[i] for i in pieces.ids("Protein-biomolecular")] == ["protein", "-", "bio", "##mol", "##ecular"]
    assert pieces.ids("Protéin") == pieces.ids("protein")  # accents and case are dropped, as the model was trained
    assert pieces.ids("xyz") == []  # a word no piece starts is unknown as a whole
    assert pieces.ids("bio" * 40) == []  # an over-long "word" is not split into hundreds of pieces


def test_related_texts_are_closer_than_unrelated_ones(vectors: StaticEncoder) -> None:
    a, b, c, empty = vectors.encode(["protein docking", "binding of proteins to ligands",
                                     "auction design for budget constrained bidders", ""])
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-5) and not empty.any()
    assert float(a @ b) > float(a @ c) + 0.2


def test_the_name_follows_the_file(tmp_path: Path, vectors: StaticEncoder) -> None:
    # Paper vectors are stored under the encoder's name: other vectors must not share it.
    other = tmp_path / "other.npz"
    vocab = ["protein", "docking"]
    static_vectors.save(other, vocab, np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    loaded = static_vectors.load(other)
    assert loaded.name != vectors.name and loaded.name.startswith("static-minilm-") and loaded.dim == 2
    assert np.allclose(loaded.encode(["docking"]), [[0.0, 1.0]])


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04 truncated"])
def test_unreadable_vectors_are_a_notice_and_the_digest_ranks_on_tf_idf(tmp_path: Path, content: bytes,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "static-minilm.npz"
    broken.write_bytes(content)
    monkeypatch.setattr(static_vectors, "DATA", broken)  # the fault: the package's file is damaged
    enc, notice = encoder.load_or_notice("static")
    assert enc is None and notice is not None and str(broken) in notice and "tf-idf" in notice
    monkeypatch.setattr(encoder, "installed", lambda: False)
    enc, notice = encoder.load_or_notice("all-MiniLM-L6-v2")  # asked for, no extra, and no fallback
    assert enc is None and notice is not None and "embed" in notice and str(broken) in notice
    assert "\n" not in notice


def test_the_default_install_ranks_a_paraphrase_with_no_shared_word_first(tmp_path: Path, sqlite_url: str) -> None:
    # No word of the keywords is in the target paper; tf-idf alone gives it nothing (test_encoder.py).
    s = Settings(**{
        "state_dir": str(tmp_path / "state"), "database": {"url": sqlite_url}, "sources": [],
        "digest": {"top_k": 3, "diversity": 0.0, "min_score": 0.0, "trending_k": 0},
        "web": {"base_url": "https://d.example.org", "secret_key": "k" * 32},
        "model": {"encoder": "static"},
    })
    target = ("Predicting tertiary structure from sequence",
              "We infer the three-dimensional shape of amino acid chains from their residues.")
    others = [("Auction design with budget constraints", "We study mechanisms for bidders with limited budgets."),
              ("Bird migration flyways over the Sahara", "Tracking data reveal stopover sites of songbirds."),
              ("Medieval trade routes of the Baltic", "Archival records trace the grain trade."),
              ("Urban heat islands and tree cover", "City temperatures fall where canopy cover rises.")]
    papers = [Paper(canonical_id=f"arxiv:2411.{n:05d}", arxiv_id=f"2411.{n:05d}", version=1, title=t, abstract=a,
                    url=f"https://arxiv.org/abs/2411.{n:05d}", announce_type="new", source="test")
              for n, (t, a) in enumerate([*others[:2], target, *others[2:]])]
    app = App.open(s)
    try:
        with app.engine.begin() as conn:
            sub_store.upsert_subscriber(conn, email="ada@example.org", keywords=["protein folding"], now=T0)
            paper_store.upsert_papers(conn, papers, T0)
        pipeline = app.pipeline()
        assert isinstance(pipeline.encoder, StaticEncoder)
        [planned] = pipeline.plan(pipeline.active_subscribers(), DAY, datetime.combine(DAY, datetime.min.time(), UTC))
    finally:
        app.close()
    assert planned.picks[0].paper.title == target[0]
