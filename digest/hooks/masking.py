"""Webhook URLs and Matrix tokens are secrets: whoever has one can post as the subscriber's bot.

Only the scheme and host of a webhook URL are ever shown (``https://hooks.slack.com/***``); a token
never. scrub() takes them out of any text (an error from a library that quotes the URL, a server's
answer that echoes it) and SecretFilter out of the log records of the HTTP libraries, which name
the URL of every request they make.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

MASK = "***"


def mask_url(url: str) -> str:
    """scheme://host[:port]/*** : the path and query of a webhook URL hold its secret."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{host}{port}/{MASK}"


def channel_label(kind: str, url: str, room_id: str | None) -> str:
    """What may be shown of a channel: its kind, scheme and host, and a Matrix room (not a secret)."""
    return f"{kind} {mask_url(url)}" + (f" room {room_id}" if room_id else "")


def secret_parts(url: str, token: str | None = None) -> list[str]:
    """The strings that must never be shown: the URL, its path and query, the token."""
    out = [url.strip()]
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        parts = None
    if parts is not None:
        out += [p for p in (parts.path, parts.query, parts.password or "") if len(p.strip("/")) >= 4]
    if token:
        out.append(token)
    # Longest first, so that a URL is replaced whole before its path is looked for.
    return sorted({s for s in out if s}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """text without the secrets: a URL shown as its scheme and host, anything else as ***."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, mask_url(secret) if "://" in secret else MASK)
    return text


class SecretFilter(logging.Filter):
    """Masks the secrets registered here in every record of the loggers it is attached to (httpx names
    each request's URL at INFO; httpcore traces at DEBUG)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: dict[str, int] = {}

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            for s in secrets:
                self._secrets[s] = self._secrets.get(s, 0) + 1

    def discard(self, secrets: Iterable[str]) -> None:
        with self._lock:
            for s in secrets:
                left = self._secrets.get(s, 0) - 1
                if left > 0:
                    self._secrets[s] = left
                else:
                    self._secrets.pop(s, None)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        if secrets:
            message = record.getMessage()
            cleaned = scrub(message, secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


LOG_FILTER = SecretFilter()
# A logger's filters see only the records logged on it, not its children's: each one by name.
for _name in ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
              "httpcore.socks"):
    logging.getLogger(_name).addFilter(LOG_FILTER)
