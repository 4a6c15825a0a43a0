"""Search every stored paper by its words: the database's full-text index (migration 0016).

The query is a reader's free text, never index syntax: it is cut to its words (letters and digits),
so quotes, operators and column filters cannot reach FTS5 or tsquery, and any string answers with
papers or with none. All words must match (title, abstract, authors or arXiv id); papers rank by
the index's own relevance (BM25 in SQLite, ts_rank_cd in PostgreSQL), title and id above authors
above abstract. An arXiv id ("2411.18552", "arXiv:2411.18552v2") finds that paper first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, text

from digest.domain import Paper
from digest.store.papers import row_to_paper
from digest.store.schema import papers

MAX_QUERY_CHARS = 500  # a longer query is cut: no reader types more, and the index work stays bounded
MAX_WORDS = 16
MAX_PAGE = 100

_WORD = re.compile(r"[^\W_]+")
_ARXIV_ID = re.compile(r"^\s*(?:arxiv:)?(\d{4}\.\d{4,5}|[a-z.-]+/\d{7})(?:v\d+)?\s*$", re.IGNORECASE)
# The text search configuration migration 0016 built the index with: digest_search where unaccent
# could be set up, else english.
_PG_CONFIG = ("coalesce((SELECT oid FROM pg_ts_config WHERE cfgname = 'digest_search'), "
              "'english'::regconfig::oid)::regconfig")
# SQLite's bm25() weights per column (title, abstract, authors, arxiv_id): as PostgreSQL's A/C/B/A.
_SQLITE_RANK = "bm25(paper_search, 8.0, 1.0, 3.0, 8.0)"


@dataclass(frozen=True)
class SearchPage:
    query: str  # the words searched for, as the index saw them
    papers: list[Paper]
    offset: int
    has_more: bool


def query_words(q: str) -> list[str]:
    """The words of a reader's query, lower-cased, bounded in count and length."""
    return [w.lower() for w in _WORD.findall(q[:MAX_QUERY_CHARS])][:MAX_WORDS]


def search_papers(conn: Connection, q: str, *, limit: int = 20, offset: int = 0) -> SearchPage:
    """One page of the papers matching every word of q, best first; has_more says a next page exists."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    words = query_words(q)
    if not words:
        return SearchPage("", [], offset, False)
    exact = _by_arxiv_id(conn, q) if offset == 0 else None
    ids = _matching_ids(conn, words, limit + 1, offset)
    has_more = len(ids) > limit
    ids = ids[:limit]
    if exact is not None:
        ids = [exact.id, *(i for i in ids if i != exact.id)][:limit] if exact.id is not None else ids
    rows = conn.execute(select(papers).where(papers.c.id.in_(ids))).all() if ids else []
    by_id = {r.id: row_to_paper(r) for r in rows}
    return SearchPage(" ".join(words), [by_id[i] for i in ids if i in by_id], offset, has_more)


def related_ids(conn: Connection, words: list[str], *, exclude: int | None = None, limit: int = 200) -> list[int]:
    """Papers holding any of these words, the most and rarest first (the index's relevance): the
    candidates among which "similar papers" are measured. words: plain words (query_words)."""
    words = [w for w in (w.lower() for w in words) if _WORD.fullmatch(w)][:MAX_WORDS * 2]
    if not words:
        return []
    params: dict[str, Any] = {"limit": limit + 1}
    if conn.dialect.name == "sqlite":
        params["match"] = " OR ".join(f'"{w}"' for w in words)
        sql = text(f"SELECT rowid FROM paper_search WHERE paper_search MATCH :match "
                   f"ORDER BY {_SQLITE_RANK} LIMIT :limit")
    elif conn.dialect.name == "postgresql":
        params["words"] = " | ".join(words)  # plain words joined by OR: nothing else reaches to_tsquery
        sql = text(f"SELECT id FROM papers, to_tsquery({_PG_CONFIG}, :words) AS query "
                   "WHERE search_vector @@ query ORDER BY ts_rank_cd(search_vector, query) DESC LIMIT :limit")
    else:
        raise NotImplementedError(f"no full-text search on {conn.dialect.name}")
    found = [int(r[0]) for r in conn.execute(sql.bindparams(bindparam("limit")), params)]
    return [i for i in found if i != exclude][:limit]


def _by_arxiv_id(conn: Connection, q: str) -> Paper | None:
    m = _ARXIV_ID.match(q)
    if m is None:
        return None
    row = conn.execute(select(papers).where(papers.c.arxiv_id == m.group(1).lower())).first()
    return row_to_paper(row) if row is not None else None


def _matching_ids(conn: Connection, words: list[str], limit: int, offset: int) -> list[int]:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if conn.dialect.name == "sqlite":
        # Each word a quoted FTS5 string (words hold no quote): all must match, none is syntax.
        params["match"] = " ".join(f'"{w}"' for w in words)
        sql = text(f"SELECT rowid FROM paper_search WHERE paper_search MATCH :match "
                   f"ORDER BY {_SQLITE_RANK}, rowid DESC LIMIT :limit OFFSET :offset")
    elif conn.dialect.name == "postgresql":
        # plainto_tsquery ANDs the words and reads no operator; the configuration is the one the
        # index was built with (migration 0016: digest_search where unaccent could be set up).
        params["words"] = " ".join(words)
        sql = text(f"SELECT id FROM papers, plainto_tsquery({_PG_CONFIG}, :words) AS query "
                   "WHERE search_vector @@ query ORDER BY ts_rank_cd(search_vector, query) DESC, id DESC "
                   "LIMIT :limit OFFSET :offset")
    else:
        raise NotImplementedError(f"no full-text search on {conn.dialect.name}")
    sql = sql.bindparams(bindparam("limit"), bindparam("offset"))
    return [int(r[0]) for r in conn.execute(sql, params)]
