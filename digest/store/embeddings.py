"""Stored sentence-encoder vectors: papers (embedded once, at ingest or before ranking) and keywords."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Column, Connection, Engine, Table, insert, select

from digest.domain import Paper, Subscriber
from digest.rank import encoder as enc
from digest.rank import semantic
from digest.store.schema import paper_embeddings, text_embeddings

_CHUNK = 500  # ids per IN (...) list: well under every database's parameter limit
K = TypeVar("K", int, str)  # a paper id or a text key


def _load_vectors(conn: Connection, table: Table, key: Column[Any], model: str,
                  keys: Sequence[K]) -> dict[K, np.ndarray]:
    out: dict[K, np.ndarray] = {}
    distinct = list(dict.fromkeys(keys))
    for start in range(0, len(distinct), _CHUNK):
        rows = conn.execute(select(key, table.c.dim, table.c.vector)
                            .where(table.c.model == model, key.in_(distinct[start:start + _CHUNK])))
        for r in rows:
            out[r[0]] = enc.from_bytes(r.vector, r.dim)
    return out


def load_paper_vectors(conn: Connection, model: str, paper_ids: Sequence[int]) -> dict[int, np.ndarray]:
    return _load_vectors(conn, paper_embeddings, paper_embeddings.c.paper_id, model, paper_ids)


def _save_vectors(conn: Connection, table: Table, key: str, model: str, vectors: Mapping[K, np.ndarray]) -> None:
    if vectors:
        conn.execute(insert(table), [{key: k, "model": model, "dim": int(v.shape[0]), "vector": enc.to_bytes(v)}
                                     for k, v in vectors.items()])


def save_paper_vectors(conn: Connection, model: str, vectors: Mapping[int, np.ndarray]) -> None:
    _save_vectors(conn, paper_embeddings, "paper_id", model, vectors)


def load_text_vectors(conn: Connection, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
    return _load_vectors(conn, text_embeddings, text_embeddings.c.text_key, model, keys)


def save_text_vectors(conn: Connection, model: str, vectors: Mapping[str, np.ndarray]) -> None:
    _save_vectors(conn, text_embeddings, "text_key", model, vectors)


def ensure_texts(conn: Connection, model: str, texts: Sequence[str],
                 embed: Callable[[Sequence[str]], np.ndarray]) -> dict[str, np.ndarray]:
    """Text -> vector for these texts, embedding (and storing) only those not stored yet."""
    keyed = {enc.text_key(t): t for t in texts}
    known = load_text_vectors(conn, model, list(keyed))
    missing = [k for k in keyed if k not in known]
    if missing:
        vecs = embed([keyed[k] for k in missing])
        new = {k: enc.from_bytes(enc.to_bytes(v), int(v.shape[0])) for k, v in zip(missing, vecs, strict=True)}
        save_text_vectors(conn, model, new)
        known.update(new)
    return {t: known[k] for k, t in keyed.items()}


class StoredMeaning:
    """Encoder vectors for one run, read from the store and embedded (then stored) where missing.

    Papers are embedded once, the first time a run needs them, in batches; keywords once per text.
    `embedded` counts the texts this run had to encode.
    """

    def __init__(self, engine: Engine, encoder: enc.TextEncoder) -> None:
        self.engine = engine
        self.encoder = encoder
        self.embedded = 0
        self._papers: dict[int, np.ndarray] = {}

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        return self.encoder.encode(texts)

    def papers(self, papers: Sequence[Paper]) -> np.ndarray:
        """One unit row per paper (papers must be stored: they have ids)."""
        self.ensure(papers)
        out = np.zeros((len(papers), self.dim), dtype=np.float32)
        for i, p in enumerate(papers):
            if p.id is not None:
                out[i] = self._papers[p.id]
        return out

    def ensure(self, papers: Sequence[Paper]) -> None:
        """Read (or embed and store) the vectors of these papers into this run's cache: called once
        for a whole group's liked papers, it saves a query per subscriber."""
        ids = [p.id for p in papers if p.id is not None and p.id not in self._papers]
        if ids:
            with self.engine.connect() as conn:
                self._papers.update(load_paper_vectors(conn, self.encoder.name, ids))
            todo = list({p.id: p for p in papers if p.id is not None and p.id not in self._papers}.values())
            if todo:
                vecs = self._encode([enc.paper_text(p) for p in todo])
                # As stored (float16, renormalised): the run that embeds a paper ranks it exactly as
                # every later run that reads it back.
                new = {p.id: enc.from_bytes(enc.to_bytes(v), self.dim) for p, v in zip(todo, vecs, strict=True)
                       if p.id is not None}
                with self.engine.begin() as conn:
                    # A concurrent run may have stored some meanwhile: store only what is still missing.
                    have = load_paper_vectors(conn, self.encoder.name, list(new))
                    save_paper_vectors(conn, self.encoder.name, {k: v for k, v in new.items() if k not in have})
                self._papers.update(new)

    def keywords(self, subscribers: Sequence[Subscriber]) -> np.ndarray:
        """Each subscriber's keyword query vector; embedded once per distinct keyword text."""
        texts = sorted({semantic.keyword_text(s) for s in subscribers if s.keywords})
        with self.engine.begin() as conn:
            vecs = ensure_texts(conn, self.encoder.name, texts, self._encode) if texts else {}
        return semantic.keyword_profiles(subscribers, vecs, self.dim)
