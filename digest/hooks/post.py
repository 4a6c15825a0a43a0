"""The chat transport: one HTTP request a message, through the feeds' safe client (digest.ingest.fetch).

It speaks the mail transports' protocol (digest.mail.transport), so the send loop (digest.pipeline.send)
claims, records, retries and gives up on a chat message exactly as on an email:

    2xx                           sent
    429, 408, 5xx                 temp_failed, again after Retry-After (seconds or an HTTP date) if given
    3xx                           failed: a webhook is never followed elsewhere (nor to a private host)
    other 4xx                     failed (a deleted webhook, a bad token)
    no connection, a timeout      temp_failed before the body went out; after it the message may have
    before the body went out      arrived: unknown (re-sent once, as an email), but for Matrix, whose
                                  transaction id makes a resend a no-op: temp_failed
    a refused address             failed (a private or metadata address: fetch.allow_private)

Every detail names the channel by its label (scheme and host); the URL's path and the token are
scrubbed from anything quoted (digest.hooks.masking).
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx

from digest.config import FetchSettings
from digest.domain import DeliveryOutcome, OutgoingMessage, Status
from digest.errors import FeedError
from digest.hooks.masking import LOG_FILTER, scrub, secret_parts
from digest.hooks.spec import HookSpec
from digest.ingest.fetch import check_url, guarded_client, timeouts
from digest.ingest.transport import DeadlineExceeded, Refused
from digest.mail.transport import OnHandover
from digest.text import one_line

log = logging.getLogger(__name__)

MAX_ANSWER = 64 * 1024  # bytes of a reply read (a webhook answers "ok" or a short JSON)
HANDOVER = "http11.send_request_body.started"  # httpcore's trace: from here the server may act on it
_TEMPORARY = {408, 425, 429}
_MATRIX = "/_matrix/client/v3"
_Outcome = Callable[..., DeliveryOutcome]
_Trace = Callable[[str, object], None]


class HookTransport:
    """destinations: each message's channel by message.key (its ledger row). message.message_id is
    the Matrix transaction id: the same for every attempt of a row, so a resend is not a second post."""

    def __init__(self, destinations: Mapping[int, HookSpec], settings: FetchSettings, *, timeout_s: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.destinations = destinations
        self.settings = settings
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context
        self._secrets = [s for spec in destinations.values() for s in secret_parts(spec.url, spec.token)]
        LOG_FILTER.add(self._secrets)

    def close(self) -> None:
        LOG_FILTER.discard(self._secrets)
        self._secrets = []

    def send(self, message: OutgoingMessage, on_handover: OnHandover | None = None) -> DeliveryOutcome:
        spec = self.destinations[message.key]
        secrets = secret_parts(spec.url, spec.token)
        handed: list[bool] = []

        def trace(name: str, _info: object) -> None:
            if name == HANDOVER and not handed:
                handed.append(True)
                if on_handover is not None:
                    on_handover()

        def outcome(status: Status, why: str, retry_after_s: float | None = None) -> DeliveryOutcome:
            detail = scrub(f"{spec.label}: {why}", secrets)
            return DeliveryOutcome(message.key, status, detail, retry_after_s=retry_after_s)

        deadline = time.monotonic() + self.timeout_s
        try:
            with guarded_client(self.settings, deadline, ssl_context=self.ssl_context) as client:
                return self._post(client, spec, message, deadline, trace, outcome)
        except (FeedError, Refused) as exc:
            temporary = "cannot resolve" in str(exc)
            why = one_line(str(exc), 300).removeprefix(f"{spec.label}: ")  # check_url names the channel too
            return outcome(Status.TEMP_FAILED if temporary else Status.FAILED, why)
        except (DeadlineExceeded, httpx.TimeoutException, httpx.TransportError) as exc:
            why = (f"no answer within {self.timeout_s:g}s" if isinstance(exc, DeadlineExceeded | httpx.TimeoutException)
                   else f"network error ({type(exc).__name__})")
            if handed and spec.kind != "matrix":
                return outcome(Status.UNKNOWN, f"{why} after the message was sent: it may have arrived")
            return outcome(Status.TEMP_FAILED, why)

    def _post(self, client: httpx.Client, spec: HookSpec, message: OutgoingMessage, deadline: float,
              trace: _Trace, outcome: _Outcome) -> DeliveryOutcome:
        headers = {"User-Agent": self.settings.user_agent, "Content-Type": "application/json"}
        if spec.kind == "matrix":
            room = self._room_id(client, spec, deadline) if (spec.room_id or "").startswith("#") else spec.room_id
            url = (f"{spec.url}{_MATRIX}/rooms/{quote(room or '', safe='')}/send/m.room.message/"
                   f"{quote(message.message_id, safe='')}")
            method, headers["Authorization"] = "PUT", f"Bearer {spec.token}"
        else:
            url, method = spec.url, "POST"
        check_url(url, self.settings, spec.label, resolve_names=False)
        with client.stream(method, url, content=message.data, headers=headers,
                           timeout=timeouts(self.settings, max(deadline - time.monotonic(), 0.001)),
                           extensions={"trace": trace}) as resp:
            answer = _bounded(resp)
        code = resp.status_code
        said = one_line(answer, 120)
        what = f"HTTP {code} {resp.reason_phrase}".rstrip() + (f": {said}" if said and code >= 300 else "")
        if 200 <= code < 300:
            return outcome(Status.SENT, what)
        if 300 <= code < 400:
            return outcome(Status.FAILED, f"{what}: a webhook is not followed to another address")
        if code in _TEMPORARY or code >= 500:
            wait = retry_after(resp.headers.get("retry-after"))
            return outcome(Status.TEMP_FAILED, what + (f" (retry after {wait:g}s)" if wait is not None else ""), wait)
        return outcome(Status.FAILED, what)

    def _room_id(self, client: httpx.Client, spec: HookSpec, deadline: float) -> str:
        """A room alias (#name:server) looked up in the homeserver's directory, on every send: an alias
        may be moved to another room."""
        url = f"{spec.url}{_MATRIX}/directory/room/{quote(spec.room_id or '', safe='')}"
        check_url(url, self.settings, spec.label, resolve_names=False)
        with client.stream("GET", url, headers={"Authorization": f"Bearer {spec.token}"},
                           timeout=timeouts(self.settings, max(deadline - time.monotonic(), 0.001))) as resp:
            answer = _bounded(resp)
        try:
            room = json.loads(answer)["room_id"] if resp.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            room = None
        if not isinstance(room, str) or not room.startswith("!"):
            raise FeedError(f"room alias {spec.room_id} not found (HTTP {resp.status_code})")
        return room


def _bounded(resp: httpx.Response) -> bytes:
    """At most MAX_ANSWER bytes of the reply; the rest is not read."""
    body = b""
    for chunk in resp.iter_raw():
        body += chunk
        if len(body) >= MAX_ANSWER:
            break
    return body[:MAX_ANSWER]


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date; None if absent
    or not understood."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
