"""Importing papers a subscriber already likes as stars: the warm start."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from digest.errors import InputError
from digest.library_import import Reference
from digest.store import learning
from digest.store import papers as paper_store
from digest.store import subscribers as sub_store
from digest.store import terms as term_store


@dataclass(frozen=True)
class StarImport:
    starred: int  # new stars recorded
    already: int  # were starred before
    stored: int  # papers added to the store from the library's own text
    unmatched: list[str]  # references with nothing to go on (an id not in the store, no title)


def import_stars(engine: Engine, email: str, refs: Sequence[Reference], *, now: datetime,
                 strict: bool) -> StarImport:
    """strict (ids on the command line): any unknown id is an error and nothing is recorded."""
    with engine.begin() as conn:
        sub = sub_store.get_subscriber(conn, email)
        if sub is None:
            raise InputError(f"no subscriber {email}")
        ids: list[int] = []
        unmatched: list[Reference] = []
        to_store: list[Reference] = []
        for ref in refs:
            pid = paper_store.find_paper_id(conn, ref.as_paper()) if (ref.arxiv_id or ref.doi or ref.title) else None
            if pid is not None:
                ids.append(pid)
            elif ref.title:
                to_store.append(ref)
            else:
                unmatched.append(ref)
        if strict and unmatched:
            names = ", ".join(r.arxiv_id or r.origin for r in unmatched[:5])
            raise InputError(f"not in the store (ingest it first): {names}"
                             + (f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else ""))
        if not ids and not to_store:
            raise InputError("none of the papers could be found in the store; nothing was starred")
        _, fresh = paper_store.upsert_papers(conn, [r.as_paper() for r in to_store], now)
        term_store.add_papers(conn, fresh, now, count_documents=False)  # a library is not a day's listing
        ids += [p.id for p in fresh if p.id is not None]
        for r in to_store:  # a duplicate within the file was stored once; find it again
            if (pid := paper_store.find_paper_id(conn, r.as_paper())) is not None:
                ids.append(pid)
        unique = list(dict.fromkeys(ids))
        new = learning.add_stars(conn, sub.id, unique, "import", now)
    return StarImport(new, len(unique) - new, len(fresh), [r.origin for r in unmatched])
