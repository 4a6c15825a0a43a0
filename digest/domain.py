"""Plain data passed between the stages, and the store's time convention. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum


def naive_utc(moment: datetime) -> datetime:
    """The store keeps naive UTC datetimes: an aware one converted, a naive one taken as UTC already."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


@dataclass(frozen=True)
class Paper:
    """One paper as parsed from a feed, before or after it is stored.

    canonical_id is the dedup key across sources and days:
    "arxiv:<id without version>", else "doi:<lower-cased doi>", else "title:<normalised title>".
    """

    canonical_id: str
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    url: str | None = None  # landing / abstract page, http(s) only
    pdf_url: str | None = None  # http(s) only
    arxiv_id: str | None = None  # without version
    version: int | None = None
    doi: str | None = None
    categories: tuple[str, ...] = ()
    published: datetime | None = None
    announce_type: str | None = None  # arXiv: new, cross, replace, replace-cross
    upvotes: int | None = None  # Hugging Face daily papers
    source: str = ""
    id: int | None = None  # database id, once stored
    # The feed's text where it was LaTeX source (title, abstract, authors above are readable text made
    # from it, digest.ingest.latex); None where the text had no markup. Kept for export.
    title_latex: str | None = None
    abstract_latex: str | None = None
    authors_latex: tuple[str, ...] | None = None
    comment: str | None = None  # the arXiv API's comment ("12 pages; code at https://..."), where a source has it


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    keywords: tuple[str, ...]
    top_k: int | None = None  # None: the configured default
    active: bool = True
    exclude: tuple[str, ...] = ()
    timezone: str | None = None  # None: schedule.timezone
    delivery_hour: int | None = None  # None: schedule.delivery_hour
    cadence: str = "daily"  # daily | weekly
    paused: bool = False  # kept subscribed, but sent nothing until resumed
    sources: tuple[str, ...] = ()  # source names the picks come from; empty: every source
    hard_bounces: int = 0  # consecutive permanent refusals of the address
    suspended: bool = False  # too many hard bounces: sent nothing until resumed
    trending: bool = True  # show the "trending today" block (the reader may turn it off)
    email_enabled: bool = True  # False: "feed only", digests are recorded for the feed and not mailed
    authors: tuple[str, ...] = ()  # followed authors, as the reader wrote them: their papers are always sent


@dataclass(frozen=True)
class Pick:
    """A paper chosen for one subscriber, with the score and the reasons shown in the email."""

    paper: Paper
    score: float
    matched: tuple[str, ...] = ()  # the subscriber's keywords the paper matches
    reason: str = ""


@dataclass(frozen=True)
class PickLinks:
    """The links shown for one pick in the email.

    open_url and pdf_url are signed click-tracking redirects to the paper's stored URLs when the
    web app is configured; star_url and dislike_url record feedback. None: not shown.
    """

    open_url: str | None
    pdf_url: str | None
    star_url: str | None = None
    dislike_url: str | None = None


@dataclass(frozen=True)
class DigestContent:
    """Everything the email templates need for one subscriber and one digest date."""

    to_addr: str
    digest_date: date
    picks: tuple[Pick, ...]
    links: tuple[PickLinks, ...]  # parallel to picks
    unsubscribe_url: str | None
    keywords: tuple[str, ...] = ()
    candidates: int = 0  # how many new papers were considered
    quiet: bool = False  # no picks today ("quiet day" note)
    extras: dict[str, object] = field(default_factory=dict)
    # "Trending today": the most upvoted new papers not among the picks, with their links.
    trending: tuple[Pick, ...] = ()
    trending_links: tuple[PickLinks, ...] = ()
    # Signed links to the subscriber's manage page and to this digest in a browser; None: not shown.
    manage_url: str | None = None
    view_url: str | None = None


class Status(StrEnum):
    """A delivery's status. Its values are the strings stored in the ledger and shown to operators
    (a StrEnum compares equal to them, so rows read back and old reports still match)."""

    # A ledger row's states (store.deliveries), and what a transport did with one message.
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # permanent
    TEMP_FAILED = "temp_failed"
    UNKNOWN = "unknown"  # handed over, but the connection died before the reply: it may have arrived
    # What a run did for one subscriber besides: not attempted (paused, stopped, relay down, not due),
    # nothing to send, sent by an earlier run, being sent by another run, a dry run's would-be send.
    DEFERRED = "deferred"
    QUIET = "quiet"
    ALREADY_SENT = "already_sent"
    IN_PROGRESS = "in_progress"
    WOULD_SEND = "would_send"
    PAUSED = "paused"  # a dry run's chat channel that is paused: a run posts nothing to it
    # A ledger state too: a digest recorded for the reader's feed and never mailed (email turned off).
    RECORDED = "recorded"


@dataclass(frozen=True)
class OutgoingMessage:
    """A composed email waiting for a transport; key identifies its deliveries-ledger row."""

    key: int
    to_addr: str
    message_id: str
    data: bytes  # the full RFC 5322 message


@dataclass(frozen=True)
class DeliveryOutcome:
    """What a transport did with one message: sent, failed (permanent), temp_failed, or unknown
    (handed over, but the connection died before the reply: it may have arrived)."""

    key: int
    status: Status
    detail: str = ""
    location: str | None = None  # outbox file path, when delivered to the outbox
    bounce: bool = False  # a permanent refusal of the recipient address itself (a hard bounce)
    retry_after_s: float | None = None  # the server asked to be tried again no sooner (HTTP Retry-After)


@dataclass(frozen=True)
class SubscriberOutcome:
    """What a run did for one subscriber."""

    email: str
    status: Status
    n_picks: int = 0
    detail: str = ""
    location: str | None = None
    channel: str = "email"  # or a chat channel's masked label (digest.hooks)
