"""Stored sentence-encoder vectors of papers and of keyword texts, as packed bytes and their dimension
(digest.rank.encoder packs and unpacks them; digest.training.meaning reads and fills them for a run)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Column, Connection, Table, insert, select

from digest.store.schema import paper_embeddings, text_embeddings

_CHUNK = 500  # ids per IN (...) list: well under every database's parameter limit
K = TypeVar("K", int, str)  # a paper id or a text key
Packed = tuple[bytes, int]  # a vector as stored, and its dimension


def _load_vectors(conn: Connection, table: Table, key: Column[Any], model: str,
                  keys: Sequence[K]) -> dict[K, Packed]:
    out: dict[K, Packed] = {}
    distinct = list(dict.fromkeys(keys))
    for start in range(0, len(distinct), _CHUNK):
        rows = conn.execute(select(key, table.c.dim, table.c.vector)
                            .where(table.c.model == model, key.in_(distinct[start:start + _CHUNK])))
        for r in rows:
            out[r[0]] = (r.vector, r.dim)
    return out


def load_paper_vectors(conn: Connection, model: str, paper_ids: Sequence[int]) -> dict[int, Packed]:
    return _load_vectors(conn, paper_embeddings, paper_embeddings.c.paper_id, model, paper_ids)


def _save_vectors(conn: Connection, table: Table, key: str, model: str, vectors: Mapping[K, Packed]) -> None:
    if vectors:
        conn.execute(insert(table), [{key: k, "model": model, "dim": dim, "vector": data}
                                     for k, (data, dim) in vectors.items()])


def save_paper_vectors(conn: Connection, model: str, vectors: Mapping[int, Packed]) -> None:
    _save_vectors(conn, paper_embeddings, "paper_id", model, vectors)


def load_text_vectors(conn: Connection, model: str, keys: Sequence[str]) -> dict[str, Packed]:
    return _load_vectors(conn, text_embeddings, text_embeddings.c.text_key, model, keys)


def save_text_vectors(conn: Connection, model: str, vectors: Mapping[str, Packed]) -> None:
    _save_vectors(conn, text_embeddings, "text_key", model, vectors)
