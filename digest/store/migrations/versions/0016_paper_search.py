"""Full-text search over every stored paper, in the database's own index.

SQLite: an FTS5 table paper_search (title, abstract, authors, arxiv_id; rowid = papers.id), kept
current by triggers on papers, so every way a paper is stored or changed (ingest, library import,
the LaTeX migration's kind of rewrite) is indexed without the code having to remember it. It is
contentless: the authors are indexed as the names json_each decodes (the column holds JSON with
\\u escapes), which an external-content table could not re-read; deleting a row's entry therefore
passes the old values, as FTS5 asks of contentless tables. Porter stemming and diacritics removed,
so "networks" finds "network" and "Muller" finds "Müller".

PostgreSQL: a stored generated tsvector column on papers (title and arXiv id weighted A, authors B,
abstract C) with a GIN index: always current, nothing to keep in step. Its text search configuration
digest_search is English stemming after the unaccent dictionary, where the database lets us create
the unaccent extension (a trusted extension since PostgreSQL 13); where it does not, plain English
(accents then matter). digest.store.search queries with whichever exists.

A later migration that copies the papers table (SQLite batch mode) drops the triggers with the old
table: it must create them again (see _SQLITE_TRIGGERS).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_AUTHORS_NEW = "(SELECT group_concat(value, ', ') FROM json_each(new.authors))"
_AUTHORS_OLD = "(SELECT group_concat(value, ', ') FROM json_each(old.authors))"
_INSERT_NEW = ("INSERT INTO paper_search(rowid, title, abstract, authors, arxiv_id) "
               f"VALUES (new.id, new.title, new.abstract, {_AUTHORS_NEW}, new.arxiv_id);")
_DELETE_OLD = ("INSERT INTO paper_search(paper_search, rowid, title, abstract, authors, arxiv_id) "
               f"VALUES ('delete', old.id, old.title, old.abstract, {_AUTHORS_OLD}, old.arxiv_id);")

_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER papers_search_insert AFTER INSERT ON papers BEGIN {_INSERT_NEW} END",
    f"CREATE TRIGGER papers_search_delete AFTER DELETE ON papers BEGIN {_DELETE_OLD} END",
    "CREATE TRIGGER papers_search_update AFTER UPDATE OF title, abstract, authors, arxiv_id ON papers "
    f"BEGIN {_DELETE_OLD} {_INSERT_NEW} END",
)

PG_CONFIG = "digest_search"


def _pg_vector(config: str) -> str:
    return (f"setweight(to_tsvector('{config}', coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('simple', coalesce(arxiv_id, '')), 'A') || "
            f"setweight(jsonb_to_tsvector('{config}', coalesce(authors::jsonb, '[]'::jsonb), '[\"string\"]'), 'B') || "
            f"setweight(to_tsvector('{config}', coalesce(abstract, '')), 'C')")


def _pg_config() -> str:
    """digest_search (unaccent, then English stemming) where it can be made, else english."""
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
            bind.exec_driver_sql(f"CREATE TEXT SEARCH CONFIGURATION {PG_CONFIG} (COPY = english)")
            bind.exec_driver_sql(f"ALTER TEXT SEARCH CONFIGURATION {PG_CONFIG} ALTER MAPPING FOR "
                                 "hword, hword_part, word WITH unaccent, english_stem")
    except sa.exc.DBAPIError:  # no permission, or the contrib package is not installed
        return "english"
    return PG_CONFIG


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE paper_search USING fts5(title, abstract, authors, arxiv_id, "
                   "content='', tokenize='porter unicode61 remove_diacritics 2')")
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
        op.execute("INSERT INTO paper_search(rowid, title, abstract, authors, arxiv_id) "
                   "SELECT id, title, abstract, (SELECT group_concat(value, ', ') FROM json_each(papers.authors)), "
                   "arxiv_id FROM papers")
    else:
        vector = _pg_vector(_pg_config())
        op.execute(f"ALTER TABLE papers ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({vector}) STORED")
        op.execute("CREATE INDEX ix_papers_search_vector ON papers USING GIN (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("papers_search_insert", "papers_search_delete", "papers_search_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS paper_search")
    else:
        op.execute("DROP INDEX IF EXISTS ix_papers_search_vector")
        op.execute("ALTER TABLE papers DROP COLUMN IF EXISTS search_vector")
        op.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {PG_CONFIG}")
