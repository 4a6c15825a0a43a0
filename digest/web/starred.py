"""A reader's starred papers as the manage page and the library show them, and the one form field
that names a paper to take out of them."""

from __future__ import annotations

from sqlalchemy import Engine

from digest.domain import Paper
from digest.store import events as event_store
from digest.store.papers import papers_by_ids
from digest.web.forms import Form, first
from digest.web.pages import PageError


def starred_papers(engine: Engine, reader: int) -> list[Paper]:
    """The reader's starred papers, the latest starred first (a star later flagged as a scanner's
    click does not count)."""
    with engine.connect() as conn:
        stars = [e for e in event_store.list_events(conn, reader, kinds=["star"])
                 if not e.flagged and e.paper_id is not None]
        stars.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        ids = list(dict.fromkeys(e.paper_id for e in stars if e.paper_id is not None))
        found = papers_by_ids(conn, ids)
    return [found[i] for i in ids if i in found]


def unstar(engine: Engine, reader: int, paper_id: int) -> None:
    with engine.begin() as conn:
        event_store.remove_events(conn, subscriber_id=reader, paper_id=paper_id, kind="star")


def paper_to_remove(form: Form) -> int:
    """The paper id a remove form names; a 400 page when it names none."""
    try:
        return int(first(form, "paper"))
    except ValueError:
        raise PageError(400, "Nothing to remove", "The form named no paper.") from None
