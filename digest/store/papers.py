"""Papers: dedup on ingest, candidates for a digest, lookups by id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, insert, or_, select, update

from digest.domain import Paper
from digest.identity import normalise_title
from digest.store.schema import paper_terms, papers

_REPLACEMENT_TYPES = ("replace", "replace-cross")
# Papers stored from a reader's imported library are not news.
IMPORTED = "import"


@dataclass
class UpsertCounts:
    new: int = 0
    updated: int = 0
    duplicate: int = 0


def row_to_paper(row: Row[Any]) -> Paper:
    m = row._mapping
    return Paper(
        id=m["id"],
        canonical_id=m["canonical_id"],
        title=m["title"],
        abstract=m["abstract"],
        authors=tuple(m["authors"] or ()),
        url=m["url"],
        pdf_url=m["pdf_url"],
        arxiv_id=m["arxiv_id"],
        version=m["version"],
        doi=m["doi"],
        categories=tuple(m["categories"] or ()),
        published=m["published"],
        announce_type=m["first_announce"],
        upvotes=m["upvotes"],
        source=m["source"],
        title_latex=m["title_latex"],
        abstract_latex=m["abstract_latex"],
        authors_latex=tuple(m["authors_latex"]) if m["authors_latex"] is not None else None,
        comment=m.get("comment"),
    )


def _newest_per_id(batch: Iterable[Paper]) -> list[Paper]:
    """One entry per canonical id within a batch: the highest version wins, first seen order kept."""
    best: dict[str, Paper] = {}
    for p in batch:
        cur = best.get(p.canonical_id)
        if cur is None or (p.version or 0) > (cur.version or 0):
            best[p.canonical_id] = p
    return list(best.values())


def _find_existing(conn: Connection, p: Paper) -> Row[Any] | None:
    # Same paper under another key: an arXiv paper later seen in a journal feed by its DOI, etc.
    clauses = [papers.c.canonical_id == p.canonical_id]
    if p.doi:
        clauses.append(papers.c.doi == p.doi)
    if p.arxiv_id:
        clauses.append(papers.c.arxiv_id == p.arxiv_id)
    if not p.doi and not p.arxiv_id:
        clauses.append(papers.c.title_key == normalise_title(p.title))
    return conn.execute(select(papers).where(or_(*clauses)).order_by(papers.c.id).limit(1)).first()


def _changes(row: Row[Any], p: Paper, arxiv_authority: bool) -> dict[str, Any]:
    m = row._mapping
    out: dict[str, Any] = {}
    if (m["arxiv_id"] or p.arxiv_id) and not arxiv_authority:
        # An arXiv paper's text is arXiv's: any feed can link to arxiv.org/abs/<id> with a title of its
        # own. Another source may add such a paper or count as a duplicate; it never rewrites it, nor
        # ties another identifier to it. Upvotes are the Hugging Face feed's own data.
        if p.upvotes is not None and p.upvotes != m["upvotes"]:
            out["upvotes"] = p.upvotes
        return out
    newer = p.version is not None and (m["version"] is None or p.version > m["version"])
    if newer:
        out.update(version=p.version, title=p.title, title_key=normalise_title(p.title), title_latex=p.title_latex)
        if p.abstract:
            out.update(abstract=p.abstract, abstract_latex=p.abstract_latex)
        if p.authors:
            out.update(authors=list(p.authors), authors_latex=_listed(p.authors_latex))
        if p.comment:
            out["comment"] = p.comment
    # Fill in what the stored copy lacks (a journal feed without abstracts, then arXiv with one).
    if not m["abstract"] and p.abstract and "abstract" not in out:
        out.update(abstract=p.abstract, abstract_latex=p.abstract_latex)
    if not m["authors"] and p.authors and "authors" not in out:
        out.update(authors=list(p.authors), authors_latex=_listed(p.authors_latex))
    for key in ("doi", "arxiv_id", "url", "pdf_url", "published", "comment"):
        if m[key] is None and getattr(p, key) is not None:
            out[key] = getattr(p, key)
    if p.upvotes is not None and p.upvotes != m["upvotes"]:
        out["upvotes"] = p.upvotes
    return out


def _listed(names: tuple[str, ...] | None) -> list[str] | None:
    return list(names) if names is not None else None


def upsert_papers(conn: Connection, batch: Iterable[Paper], now: datetime, *,
                  arxiv_authority: bool = False) -> tuple[UpsertCounts, list[Paper]]:
    """Store a parsed batch. Returns the counts and the papers that were new.

    arxiv_authority: the batch comes from arXiv itself (digest.identity.ARXIV_KINDS), which alone
    may change the text of a paper with an arXiv id; other batches only add such papers."""
    counts = UpsertCounts()
    fresh: list[Paper] = []
    for p in _newest_per_id(batch):
        row = _find_existing(conn, p)
        if row is None:
            values = {
                "canonical_id": p.canonical_id,
                "arxiv_id": p.arxiv_id,
                # A version only from arXiv: arXiv's next listing of a paper first seen elsewhere is then
                # newer than what is stored, and its text replaces the other feed's.
                "version": p.version if arxiv_authority or not p.arxiv_id else None,
                "doi": p.doi,
                "title_key": normalise_title(p.title)[:600],
                "title": p.title,
                "abstract": p.abstract,
                "authors": list(p.authors),
                "url": p.url,
                "pdf_url": p.pdf_url,
                "categories": list(p.categories),
                "published": p.published.replace(tzinfo=None) if p.published else None,
                "first_announce": p.announce_type,
                "upvotes": p.upvotes,
                "comment": p.comment,
                "source": p.source,
                "first_seen_at": now,
                "updated_at": now,
            }
            # The LaTeX source only where there was markup: most papers have none.
            for key, value in (("title_latex", p.title_latex), ("abstract_latex", p.abstract_latex),
                               ("authors_latex", _listed(p.authors_latex))):
                if value is not None:
                    values[key] = value
            new_id = conn.execute(insert(papers).values(**values).returning(papers.c.id)).scalar_one()
            counts.new += 1
            fresh.append(replace(p, id=new_id))
            continue
        changes = _changes(row, p, arxiv_authority)
        if "published" in changes and changes["published"] is not None:
            changes["published"] = changes["published"].replace(tzinfo=None)
        if changes:
            if "title" in changes or "abstract" in changes:  # its term counts are of the old text
                conn.execute(delete(paper_terms).where(paper_terms.c.paper_id == row.id))
            changes["updated_at"] = now
            conn.execute(update(papers).where(papers.c.id == row.id).values(**changes))
            counts.updated += 1
        else:
            counts.duplicate += 1
    return counts, fresh


def candidate_papers(
    conn: Connection, *, since: datetime, until: datetime, include_replacements: bool = False
) -> list[Paper]:
    """Papers first seen in [since, until), oldest first; arXiv replacements left out unless asked."""
    cond = [papers.c.first_seen_at >= since, papers.c.first_seen_at < until]
    left_out = (IMPORTED,) if include_replacements else (IMPORTED, *_REPLACEMENT_TYPES)
    cond.append(or_(papers.c.first_announce.is_(None), papers.c.first_announce.not_in(left_out)))
    rows = conn.execute(select(papers).where(and_(*cond)).order_by(papers.c.id)).all()
    return [row_to_paper(r) for r in rows]


def papers_by_ids(conn: Connection, ids: Sequence[int]) -> dict[int, Paper]:
    if not ids:
        return {}
    rows = conn.execute(select(papers).where(papers.c.id.in_(list(ids)))).all()
    return {r.id: row_to_paper(r) for r in rows}


def last_updated(conn: Connection, ids: Sequence[int]) -> datetime | None:
    """When the latest of these papers last changed (a corrected title or abstract): None for none."""
    if not ids:
        return None
    found = conn.execute(select(func.max(papers.c.updated_at)).where(papers.c.id.in_(list(ids)))).scalar()
    return found if isinstance(found, datetime) else None


def paper_texts(conn: Connection, ids: Sequence[int]) -> dict[int, Paper]:
    """Papers by id with their text only (title, abstract): what features, training and reason
    lines need, without decoding the authors and categories of thousands of liked papers."""
    if not ids:
        return {}
    rows = conn.execute(select(papers.c.id, papers.c.canonical_id, papers.c.title, papers.c.abstract)
                        .where(papers.c.id.in_(list(ids)))).all()
    return {r.id: Paper(id=r.id, canonical_id=r.canonical_id, title=r.title, abstract=r.abstract) for r in rows}


def paper_categories(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    """The arXiv classes of these papers, by id: read for the papers a model trains on only."""
    if not ids:
        return {}
    rows = conn.execute(select(papers.c.id, papers.c.categories).where(papers.c.id.in_(list(ids)))).all()
    return {r.id: tuple(r.categories or ()) for r in rows}


def count_papers(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(papers)).scalar_one())



def find_paper_id(conn: Connection, p: Paper) -> int | None:
    """The stored paper this one is (by arXiv id, DOI or normalised title), if any."""
    row = _find_existing(conn, p)
    return int(row.id) if row is not None else None
