"""The encoder's vectors for one run: read from the store, embedded (then stored) where missing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from sqlalchemy import Connection, Engine

from digest.domain import Paper, Subscriber
from digest.rank import encoder as enc
from digest.rank import semantic
from digest.store import embeddings as vector_store


def _load_papers(conn: Connection, model: str, paper_ids: Sequence[int]) -> dict[int, np.ndarray]:
    stored = vector_store.load_paper_vectors(conn, model, paper_ids)
    return {k: enc.from_bytes(data, dim) for k, (data, dim) in stored.items()}


def _save_papers(conn: Connection, model: str, vectors: Mapping[int, np.ndarray]) -> None:
    vector_store.save_paper_vectors(conn, model, {k: (enc.to_bytes(v), int(v.shape[0])) for k, v in vectors.items()})


def _load_texts(conn: Connection, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
    stored = vector_store.load_text_vectors(conn, model, keys)
    return {k: enc.from_bytes(data, dim) for k, (data, dim) in stored.items()}


def _save_texts(conn: Connection, model: str, vectors: Mapping[str, np.ndarray]) -> None:
    vector_store.save_text_vectors(conn, model, {k: (enc.to_bytes(v), int(v.shape[0])) for k, v in vectors.items()})


def ensure_texts(conn: Connection, model: str, texts: Sequence[str],
                 embed: Callable[[Sequence[str]], np.ndarray]) -> dict[str, np.ndarray]:
    """Text -> vector for these texts, embedding (and storing) only those not stored yet."""
    keyed = {enc.text_key(t): t for t in texts}
    known = _load_texts(conn, model, list(keyed))
    missing = [k for k in keyed if k not in known]
    if missing:
        vecs = embed([keyed[k] for k in missing])
        new = {k: enc.from_bytes(enc.to_bytes(v), int(v.shape[0])) for k, v in zip(missing, vecs, strict=True)}
        _save_texts(conn, model, new)
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
                self._papers.update(_load_papers(conn, self.encoder.name, ids))
            todo = list({p.id: p for p in papers if p.id is not None and p.id not in self._papers}.values())
            if todo:
                vecs = self._encode([enc.paper_text(p) for p in todo])
                # As stored (float16, renormalised): the run that embeds a paper ranks it exactly as
                # every later run that reads it back.
                new = {p.id: enc.from_bytes(enc.to_bytes(v), self.dim) for p, v in zip(todo, vecs, strict=True)
                       if p.id is not None}
                with self.engine.begin() as conn:
                    # A concurrent run may have stored some meanwhile: store only what is still missing.
                    have = _load_papers(conn, self.encoder.name, list(new))
                    _save_papers(conn, self.encoder.name, {k: v for k, v in new.items() if k not in have})
                self._papers.update(new)

    def keywords(self, subscribers: Sequence[Subscriber]) -> np.ndarray:
        """Each subscriber's keyword query vector; embedded once per distinct keyword text."""
        texts = sorted({semantic.keyword_text(s) for s in subscribers if s.keywords})
        with self.engine.begin() as conn:
            vecs = ensure_texts(conn, self.encoder.name, texts, self._encode) if texts else {}
        return semantic.keyword_profiles(subscribers, vecs, self.dim)
