"""A chat channel as a subscriber gives it, checked when it is added, never first at send time.

The checks are the feeds' (digest.ingest.transport): http(s) only, the host resolved and every
address it gives vetted (private and loopback ones refused unless fetch.allow_private, link-local
and cloud metadata ones always). Besides: https, unless allow_private lets a test URL on a private
address through; the kind named or read from the host (hooks.slack.com, discord.com/api/webhooks);
for Matrix a homeserver URL, a room (!id:server or #alias:server) and an access token.
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from digest.errors import InputError
from digest.hooks.masking import channel_label, mask_url
from digest.ingest.transport import Budget, DeadlineExceeded, Refused, ip_literal, refusal, resolve, vet

KINDS = ("slack", "discord", "matrix", "json")
MAX_URL = 2000
MAX_TOKEN = 1000
_DISCORD_HOSTS = {"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"}
_ROOM = re.compile(r"^[!#][^\s:]{1,250}:[A-Za-z0-9.\-]+(:\d{1,5})?$")
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: no space, line break or control character


class HookInputError(InputError):
    """A channel that cannot be used; field names the input at fault (url, kind, room, token)."""

    def __init__(self, message: str, field: str = "url") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class HookSpec:
    kind: str
    url: str  # the webhook URL, or the Matrix homeserver's base URL
    room_id: str | None = None
    token: str | None = None

    @property
    def label(self) -> str:
        """What may be shown of it: the kind, the scheme and host, the Matrix room (not a secret)."""
        return channel_label(self.kind, self.url, self.room_id)


def infer_kind(url: str) -> str | None:
    """slack or discord from a webhook URL's host, else None."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if host == "hooks.slack.com":
        return "slack"
    if host in _DISCORD_HOSTS and parts.path.startswith("/api/webhooks/"):
        return "discord"
    return None


def check_hook(url: str, *, kind: str | None = None, room: str | None = None, token: str | None = None,
               allow_private: bool = False, resolve_timeout_s: float = 10.0) -> HookSpec:
    """The channel to store, or HookInputError with one line that names the culprit (secrets masked)."""
    url = (url or "").strip()
    shown = mask_url(url) if url else "(empty)"
    if not url:
        raise HookInputError("webhook URL: give the URL the chat service gave you")
    if len(url) > MAX_URL or not _PRINTABLE.match(url):
        raise HookInputError(f"webhook URL {shown}: not a URL (spaces, control characters or over {MAX_URL} "
                             "characters)")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise HookInputError(f"webhook URL {shown}: not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise HookInputError(f"webhook URL {shown}: must be an https:// URL")
    if parts.username or parts.password:
        raise HookInputError(f"webhook URL {shown}: a user name or password in the URL is not supported")
    kind = _kind(url, kind)
    room, token = _matrix_parts(kind, parts.path, parts.query, room, token, shown)
    _check_address(parts.hostname, parts.port or (443 if scheme == "https" else 80), scheme, shown,
                   allow_private, resolve_timeout_s)
    if kind == "matrix":
        url = url.rstrip("/")
    return HookSpec(kind, url, room, token)


def _kind(url: str, given: str | None) -> str:
    if given:
        kind = given.strip().lower()
        if kind not in KINDS:
            raise HookInputError(f"webhook kind {given[:40]!r}: must be one of {', '.join(KINDS)}", "kind")
        return kind
    return infer_kind(url) or "json"


def _matrix_parts(kind: str, path: str, query: str, room: str | None, token: str | None,
                  shown: str) -> tuple[str | None, str | None]:
    room, token = (room or "").strip() or None, (token or "").strip() or None
    if kind != "matrix":
        if room or token:
            raise HookInputError(f"a Matrix room and token are for a matrix channel, not {kind}", "kind")
        return None, None
    if path.strip("/") or query:
        raise HookInputError(f"Matrix homeserver {shown}: give the homeserver's address only "
                             "(https://matrix.example.org), without a path")
    if room is None:
        raise HookInputError("Matrix room: give the room's id (!abc:example.org) or alias (#name:example.org)",
                             "room")
    if not _ROOM.match(room):
        raise HookInputError(f"Matrix room {room[:80]!r}: must be !id:server or #alias:server", "room")
    if token is None:
        raise HookInputError("Matrix access token: give the token of the account that posts", "token")
    if len(token) > MAX_TOKEN or not _PRINTABLE.match(token):
        raise HookInputError("Matrix access token: not a token (spaces or control characters)", "token")
    return room, token


def _check_address(host: str, port: int, scheme: str, shown: str, allow_private: bool, timeout_s: float) -> None:
    """The host's addresses, checked as a fetch checks them; http only to a private test address."""
    try:
        literal = ip_literal(host)
        if literal is not None:
            why = refusal(literal, allow_private)
            if why is not None:
                raise Refused(f"refusing {host} ({literal}): {why}")
            addresses = [literal]
        else:
            found = resolve(host, port, Budget(time.monotonic() + timeout_s), None)
            vet(host, found, allow_private)
            addresses = [ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]) for _f, sockaddr in found]
    except Refused as exc:
        raise HookInputError(f"webhook URL {shown}: {exc}") from None
    except DeadlineExceeded:
        raise HookInputError(f"webhook URL {shown}: cannot resolve host {host!r} (timed out)") from None
    if scheme == "http" and not (allow_private and addresses and all(refusal(a, False) for a in addresses)):
        raise HookInputError(f"webhook URL {shown}: must be https:// (plain http only to a private test address "
                             "with fetch.allow_private)")
