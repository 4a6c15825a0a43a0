"""A digest's message: its picks rendered with their signed links, composed into MIME bytes.

Everything a message needs is handed down here (the picks, the ledger row that names it); nothing
reaches back into the run.
"""

from __future__ import annotations

import email.policy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine

from digest.domain import DigestContent, OutgoingMessage, Pick, Subscriber
from digest.mail.compose import compose_message, make_message_id
from digest.mail.render import DigestRenderer, RenderedDigest
from digest.signing.links import LinkBuilder
from digest.store import deliveries as ledger
from digest.store import papers as paper_store


@dataclass(frozen=True)
class Batch:
    """One ledger row to send, with what it carries."""

    sub: Subscriber
    row: ledger.Delivery
    picks: list[Pick]
    candidates: int
    trending: list[Pick] = field(default_factory=list)


def stored_batch(engine: Engine, sub: Subscriber, row: ledger.Delivery) -> Batch:
    """A recorded delivery as it was chosen: a resend carries the same picks."""
    with engine.connect() as conn:
        items = ledger.stored_picks(conn, row.id)
        by_id = paper_store.papers_by_ids(conn, [i.paper_id for i in items])
    chosen = [(i.rank, Pick(by_id[i.paper_id], i.score, i.matched, i.reason)) for i in items
              if i.paper_id in by_id]
    picks = [p for r, p in chosen if r < ledger.TRENDING_RANK_BASE]
    trending = [p for r, p in chosen if r >= ledger.TRENDING_RANK_BASE]
    return Batch(sub, row, picks, 0, trending)


class Messages:
    def __init__(self, renderer: DigestRenderer, links: LinkBuilder, *, from_addr: str, from_name: str) -> None:
        self.renderer = renderer
        self.links = links
        self.from_addr = from_addr
        self.from_name = from_name

    def render(
        self, sub: Subscriber, picks: Sequence[Pick], digest_date: date, candidates: int,
        delivery_id: int | None = None, trending: Sequence[Pick] = (),
    ) -> RenderedDigest:
        return self.renderer.render(self.content(sub, picks, digest_date, candidates, delivery_id, trending))

    def content(
        self, sub: Subscriber, picks: Sequence[Pick], digest_date: date, candidates: int,
        delivery_id: int | None = None, trending: Sequence[Pick] = (),
    ) -> DigestContent:
        """What a digest shows, its links signed for this subscriber and ledger row (email and chat alike)."""
        return DigestContent(
            trending=tuple(trending),
            trending_links=tuple(self.links.pick_links(sub.id, p.paper, delivery_id) for p in trending),
            to_addr=sub.email,
            digest_date=digest_date,
            picks=tuple(picks),
            links=tuple(self.links.pick_links(sub.id, p.paper, delivery_id) for p in picks),
            unsubscribe_url=self.links.unsubscribe_url(sub.id),
            keywords=sub.keywords,
            candidates=candidates,
            quiet=not picks,
            manage_url=self.links.manage_url(sub.id),
            view_url=self.links.view_url(sub.id, delivery_id) if delivery_id is not None else None,
        )

    def compose(self, b: Batch, now: datetime) -> OutgoingMessage:
        sub, row = b.sub, b.row
        rendered = self.render(sub, b.picks, row.digest_date, b.candidates, row.id, b.trending)
        message_id = row.message_id or make_message_id(row.id, row.digest_date, sub.id, self.from_addr)
        msg = compose_message(
            rendered,
            from_addr=self.from_addr,
            from_name=self.from_name,
            to_addr=sub.email,
            message_id=message_id,
            date=now,
            unsubscribe_url=self.links.unsubscribe_url(sub.id),
        )
        return OutgoingMessage(key=row.id, to_addr=sub.email, message_id=message_id,
                               data=msg.as_bytes(policy=email.policy.SMTP))
