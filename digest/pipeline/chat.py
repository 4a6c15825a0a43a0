"""A run's chat messages (digest.hooks): one ledger row per channel, made with the digest's email row
and carrying its picks, sent by the email's send loop (digest.pipeline.send) through the chat
transport, so the same states, retries, backoff and deadline apply (Retry-After honoured, within
delivery.retry_backoff_max_s). After each batch the channels are settled: one whose digests failed
webhooks.pause_after_failures times in a row is paused, and the email and other channels go on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import ssl
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from digest.config import FetchSettings
from digest.domain import OutgoingMessage, Status, Subscriber, SubscriberOutcome
from digest.hooks.formats import FORMATS
from digest.hooks.post import HookTransport
from digest.hooks.spec import HookSpec
from digest.pipeline.messages import Batch, Messages
from digest.pipeline.send import Clock, DeliveryPolicy, Job, Sender
from digest.store import channels as channel_store
from digest.store import deliveries as ledger

log = logging.getLogger(__name__)
NEVER_PAUSE = 10**9  # the send loop's pause is for a relay; each chat endpoint fails alone


@dataclass(frozen=True)
class ChatOptions:
    fetch: FetchSettings
    timeout_s: float = 15.0
    pause_after: int = 3
    ssl_context: ssl.SSLContext | None = None  # the certificates to trust (tests); None: the system's


class Chat:
    def __init__(self, engine: Engine, messages: Messages, policy: DeliveryPolicy, options: ChatOptions) -> None:
        self.engine = engine
        self.messages = messages
        self.policy = dataclasses.replace(policy, max_consecutive_errors=NEVER_PAUSE, rate_per_s=0.0)
        self.options = options

    def channels_for(self, subscriber_ids: Collection[int]) -> dict[int, list[str]]:
        """The ledger channel names of these subscribers' chat channels that are not paused."""
        if not subscriber_ids:
            return {}
        # All of them, few as they are, rather than an IN list of a day's ten thousand subscribers.
        with self.engine.connect() as conn:
            found = channel_store.active_by_subscriber(conn)
        wanted = set(subscriber_ids)
        return {sid: [c.ledger_name for c in chans] for sid, chans in found.items() if sid in wanted}

    def label(self, outcome: SubscriberOutcome, row: ledger.Delivery) -> SubscriberOutcome:
        """An outcome of a chat row told by the channel's label (as the send loop tells its own)."""
        channel_id = ledger.hook_id(row.channel)
        with self.engine.connect() as conn:
            found = channel_store.get(conn, channel_id) if channel_id is not None else None
        return dataclasses.replace(outcome, channel=found.label if found else row.channel)

    def would_post(self, planned: Sequence[tuple[Subscriber, int]], found: Sequence[Batch]) -> list[SubscriberOutcome]:
        """A dry run's chat messages, told by their channel's masked label and never posted: for each
        digest a run would make (subscriber, picks), one to each of the subscriber's channels, or
        "paused" for a paused one (a run makes it no message); and the chat rows found in the ledger
        that a run would send (found)."""
        with self.engine.connect() as conn:
            # All of them, few as they are (channels_for): a paused one too, to say it gets nothing.
            mine = channel_store.active_by_subscriber(conn, paused_too=True) if planned else {}
            by_id = channel_store.by_ids(conn, [i for b in found if (i := ledger.hook_id(b.row.channel)) is not None])
        out: list[SubscriberOutcome] = []
        for sub, n_picks in planned:
            for c in mine.get(sub.id, []):
                if c.paused_at is None:
                    out.append(SubscriberOutcome(sub.email, Status.WOULD_SEND, n_picks, channel=c.label))
                else:
                    out.append(SubscriberOutcome(
                        sub.email, Status.PAUSED, n_picks, channel=c.label,
                        detail=f"since {c.paused_at:%Y-%m-%d %H:%M} UTC, not posted to; "
                               f"digest channel resume {sub.email} {c.id}"))
        for b in found:
            to = by_id.get(ledger.hook_id(b.row.channel) or 0)
            if to is not None and to.paused_at is None:  # as send(): a removed or paused channel gets nothing
                out.append(SubscriberOutcome(b.sub.email, Status.WOULD_SEND, len(b.picks), channel=to.label))
        return out

    def send(self, batches: Sequence[Batch], now: datetime, stop: threading.Event | None = None,
             settle: Collection[str] = ()) -> list[SubscriberOutcome]:
        """Send these chat rows; then settle their channels, and those named in settle (rows a triage
        gave up on)."""
        ids = [i for b in batches if (i := ledger.hook_id(b.row.channel)) is not None]
        with self.engine.connect() as conn:
            found = channel_store.by_ids(conn, ids)
        destinations: dict[int, HookSpec] = {}
        jobs: list[Job] = []
        for b in batches:
            channel = found.get(ledger.hook_id(b.row.channel) or 0)
            if channel is None or channel.paused_at is not None:  # its unsent rows were given up with it
                continue
            destinations[b.row.id] = HookSpec(channel.kind, channel.url, channel.room_id, channel.token)
            jobs.append(Job(row=b.row, subscriber_id=b.sub.id, email=b.sub.email, n_picks=len(b.picks),
                            compose=lambda b=b, kind=channel.kind: self._compose(b, kind),  # type: ignore[misc]
                            channel=channel.label))
        o = self.options
        sender = Sender(self.engine, lambda: HookTransport(destinations, o.fetch, timeout_s=o.timeout_s,
                                                           ssl_context=o.ssl_context), self.policy)
        outcomes = sender.send(jobs, Clock(now), stop).outcomes if jobs else []
        self.settle({*(b.row.channel for b in batches), *settle}, now)
        return outcomes

    def _compose(self, b: Batch, kind: str) -> OutgoingMessage:
        content = self.messages.content(b.sub, b.picks, b.row.digest_date, b.candidates, b.row.id, b.trending)
        body = json.dumps(FORMATS[kind](content), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        # The Matrix transaction id: one per ledger row, so a resend of the row is not a second post.
        txn = b.row.message_id or f"digest-{b.row.id}-{b.row.digest_date.isoformat()}"
        return OutgoingMessage(key=b.row.id, to_addr=b.sub.email, message_id=txn, data=body)

    def settle(self, channels: Collection[str], now: datetime) -> None:
        """Count each channel's failed digests in a row, and pause those that reached the limit."""
        ids = sorted({i for c in channels if (i := ledger.hook_id(c)) is not None})
        for channel_id in ids:
            with self.engine.begin() as conn:
                before = channel_store.get(conn, channel_id)
                after = channel_store.settle(conn, channel_id, now, self.options.pause_after)
            if before is not None and after is not None and before.paused_at is None and after.paused_at is not None:
                log.warning("chat channel %s (%s) paused after %d failed digests in a row; last: %s", after.id,
                            after.label, after.consecutive_failures, after.last_error)

