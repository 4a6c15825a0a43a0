"""Importing papers a subscriber already likes as stars: the warm start.

One rule for ids on the command line and in a file: what is known is starred, what is not is listed
(with why), and the caller exits 1 when something was not starred. fetch_missing looks the arXiv ids
that are not in the store up on arXiv first (digest.ingest.arxiv_lookup).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine

from digest.domain import Paper
from digest.library.references import Reference
from digest.store import learning
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.training import terms as term_store

# Looks arXiv ids up elsewhere: (ids) -> (papers found, {id: why not}).
Fetcher = Callable[[Sequence[str]], tuple[list[Paper], dict[str, str]]]


@dataclass(frozen=True)
class StarImport:
    starred: int  # new stars recorded
    already: int  # were starred before
    stored: int  # papers added to the store from the library's own text
    unmatched: list[str]  # references not starred, each "what (why)"
    fetched: int = 0  # papers looked up on arXiv and stored


def missing_arxiv_ids(engine: Engine, refs: Sequence[Reference]) -> list[str]:
    """The arXiv ids among refs that match no stored paper."""
    with engine.connect() as conn:
        return list(dict.fromkeys(r.arxiv_id for r in refs
                                  if r.arxiv_id and paper_store.find_paper_id(conn, r.as_paper()) is None))


def import_stars(engine: Engine, email: str, refs: Sequence[Reference], *, now: datetime,
                 fetch_missing: Fetcher | None = None) -> StarImport:
    """Star the known papers among refs (stored ones; library entries with a title are stored from
    their own text); list the others. fetch_missing: arXiv ids not in the store are looked up with it."""
    with engine.connect() as conn:
        sub_store.require_subscriber(conn, email)
    why_missing: dict[str, str] = {}
    fetched = 0
    if fetch_missing is not None and (wanted := missing_arxiv_ids(engine, refs)):
        papers, why_missing = fetch_missing(wanted)
        # Old papers, not news: stored as imports, so that no digest offers them as new.
        imported = [replace(p, announce_type=paper_store.IMPORTED, source=paper_store.IMPORTED) for p in papers]
        with engine.begin() as conn:
            _, fresh = paper_store.upsert_papers(conn, imported, now)
            term_store.add_papers(conn, fresh, now, count_documents=False)
        fetched = len(fresh)
    with engine.begin() as conn:
        sub = sub_store.get_subscriber(conn, email)
        assert sub is not None
        ids: list[int] = []
        unmatched: list[str] = []
        to_store: list[Reference] = []
        for ref in refs:
            pid = paper_store.find_paper_id(conn, ref.as_paper()) if (ref.arxiv_id or ref.doi or ref.title) else None
            if pid is not None:
                ids.append(pid)
            elif ref.title:
                to_store.append(ref)
            else:
                unmatched.append(_why(ref, why_missing, fetch_missing is not None))
        _, fresh = paper_store.upsert_papers(conn, [r.as_paper() for r in to_store], now)
        term_store.add_papers(conn, fresh, now, count_documents=False)  # a library is not a day's listing
        ids += [p.id for p in fresh if p.id is not None]
        for r in to_store:  # a duplicate within the file was stored once; find it again
            if (pid := paper_store.find_paper_id(conn, r.as_paper())) is not None:
                ids.append(pid)
        unique = list(dict.fromkeys(ids))
        new = learning.add_stars(conn, sub.id, unique, "import", now)
    return StarImport(new, len(unique) - new, len(fresh), list(dict.fromkeys(unmatched)), fetched)


def _why(ref: Reference, why_missing: dict[str, str], looked_up: bool) -> str:
    if ref.arxiv_id:
        reason = why_missing.get(ref.arxiv_id) or (
            "not in the store" if looked_up else "not in the store; --fetch-missing looks it up on arXiv")
        return f"{ref.arxiv_id} ({reason})"
    return f"{ref.origin} ({'DOI ' + ref.doi + ' not in the store' if ref.doi else 'no id or title to match'})"
