"""Readable text for papers whose feed gave LaTeX, with the source kept; the failing sources of each run.

papers: title, abstract and authors stay the columns every reader uses (the email, the web pages,
ranking), now holding readable text (`Liò`, `Günther`, `Pb0.64`); new columns title_latex,
abstract_latex and authors_latex keep the feed's LaTeX source for export, NULL where the text had no
markup (most papers: nothing is stored twice). Display columns rather than source columns, so that no
query that reads a paper changes. Stored arXiv papers (the ones with an arXiv id: arXiv feeds, Hugging
Face daily papers, imported libraries) are converted here by the same function as new ones
(digest.ingest.latex); a converted paper's term counts and sentence vectors are of the old text, so
they are dropped and made again from the new text at the next run (digest.store.terms backfills them;
embeddings are made on first use). Its title_key follows its title, so that dedup by title still finds
it. Downgrade puts the source text back in place.

runs: failed_sources, [{"name", "error"}] of the sources that failed in the run's fetch (NULL: none),
for `digest status`.

Revision ID: 0012
Revises: 0009
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BATCH = 500

_papers = sa.table(
    "papers",
    sa.column("id", sa.Integer),
    sa.column("arxiv_id", sa.String),
    sa.column("title", sa.Text),
    sa.column("title_key", sa.String),
    sa.column("abstract", sa.Text),
    sa.column("authors", sa.JSON),
    sa.column("title_latex", sa.Text),
    sa.column("abstract_latex", sa.Text),
    sa.column("authors_latex", sa.JSON),
)
_terms = sa.table("paper_terms", sa.column("paper_id", sa.Integer))
_embeddings = sa.table("paper_embeddings", sa.column("paper_id", sa.Integer))


def upgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("title_latex", sa.Text))
        batch.add_column(sa.Column("abstract_latex", sa.Text))
        batch.add_column(sa.Column("authors_latex", sa.JSON))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("failed_sources", sa.JSON))
    _convert_stored_papers()


def _convert_stored_papers() -> None:
    from digest.identity import normalise_title
    from digest.ingest.latex import has_markup, to_text

    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(_papers.c.id, _papers.c.title, _papers.c.abstract, _papers.c.authors)
            .where(_papers.c.id > last, _papers.c.arxiv_id.is_not(None)).order_by(_papers.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        changed: list[int] = []
        for r in rows:
            authors = list(r.authors or [])
            if not (has_markup(r.title) or has_markup(r.abstract or "") or any(has_markup(a) for a in authors)):
                continue
            title, abstract = to_text(r.title), to_text(r.abstract or "")
            names = [to_text(a) for a in authors]
            values: dict[str, Any] = {}
            if title != r.title:
                values.update(title=title, title_latex=r.title, title_key=normalise_title(title)[:600])
            if abstract != (r.abstract or ""):
                values.update(abstract=abstract, abstract_latex=r.abstract)
            if names != authors:
                values.update(authors=names, authors_latex=authors)
            if values:
                conn.execute(sa.update(_papers).where(_papers.c.id == r.id).values(**values))
                if "title" in values or "abstract" in values:
                    changed.append(r.id)
        if changed:
            conn.execute(sa.delete(_terms).where(_terms.c.paper_id.in_(changed)))
            conn.execute(sa.delete(_embeddings).where(_embeddings.c.paper_id.in_(changed)))


def downgrade() -> None:
    from digest.identity import normalise_title

    conn = op.get_bind()
    for r in conn.execute(sa.select(_papers.c.id, _papers.c.title_latex)
                          .where(_papers.c.title_latex.is_not(None))).all():
        conn.execute(sa.update(_papers).where(_papers.c.id == r.id)
                     .values(title_key=normalise_title(r.title_latex)[:600]))
    texts = sa.or_(_papers.c.title_latex.is_not(None), _papers.c.abstract_latex.is_not(None))
    conn.execute(sa.delete(_terms).where(_terms.c.paper_id.in_(sa.select(_papers.c.id).where(texts))))
    for column, latex in (("title", "title_latex"), ("abstract", "abstract_latex"), ("authors", "authors_latex")):
        source = _papers.c[latex]
        conn.execute(sa.update(_papers).where(source.is_not(None)).values({column: source}))
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("failed_sources")
    with op.batch_alter_table("papers") as batch:
        batch.drop_column("authors_latex")
        batch.drop_column("abstract_latex")
        batch.drop_column("title_latex")
