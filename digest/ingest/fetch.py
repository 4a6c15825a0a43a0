"""Fetch feed bytes from an http(s) URL, a local file or a bundled sample. Feeds are untrusted.

Every HTTP hop is checked (scheme, then at connect time the resolved addresses: digest.ingest.transport
connects only to the addresses it vetted), the whole request runs under a wall-clock deadline that the
transport enforces on every socket operation, the body is read under a byte cap, and compressed bodies
are inflated under the same cap. Nothing here parses the bytes.
"""

from __future__ import annotations

import gzip
import logging
import re
import ssl
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from digest.config import FetchSettings, masked_url
from digest.errors import FeedError
from digest.ingest.transport import (
    Budget,
    DeadlineExceeded,
    GuardedTransport,
    Refused,
    StopRequested,
    ip_literal,
    refusal,
    resolve,
    vet,
)
from digest.text import one_line

__all__ = ["SAMPLES_DIR", "FetchResult", "StopRequested", "check_url", "fetch", "guarded_client", "timeouts"]

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).parent.parent / "samples"
MAX_REDIRECTS = 5
_REDIRECT_CODES = {301, 302, 303, 307, 308}
# "<scheme>:" with two or more letters; a single letter is a Windows drive, i.e. a path.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


@dataclass(frozen=True)
class FetchResult:
    content: bytes | None  # None when not_modified
    not_modified: bool
    etag: str | None
    last_modified: str | None
    status: int | None  # HTTP status; None for files
    location: str  # the URL finally read (after redirects) or the file path


def fetch(
    location: str,
    *,
    settings: FetchSettings,
    etag: str | None = None,
    last_modified: str | None = None,
    transport: httpx.BaseTransport | None = None,
    stop: threading.Event | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> FetchResult:
    """Read a feed from an http(s) URL, a local path or "builtin:<file>"; raise FeedError naming the location
    (its password masked), or StopRequested when stop is set during the fetch.

    etag / last_modified make the HTTP request conditional (a 304 gives not_modified=True, content None).
    transport is for tests and special networks; it is closed with the client after the call, and it does
    its own connecting: host names are then resolved and checked here, before each hop, as best we can.
    ssl_context: the certificates to trust (default: the system's).
    """
    if stop is not None and stop.is_set():
        raise StopRequested("stopped on request")
    if location.startswith("builtin:"):
        return _read_file(_builtin_path(location), settings, shown=location)
    m = _SCHEME.match(location)
    if m:
        scheme = m.group(1).lower()
        if scheme not in {"http", "https"}:
            raise FeedError(f"{_short(location)}: unsupported URL scheme {scheme!r} (only http and https)")
        return _fetch_http(location, settings, etag, last_modified, transport, stop, ssl_context)
    return _read_file(Path(location).expanduser(), settings, shown=location)


# --- local files -------------------------------------------------------------------------------


def _builtin_path(location: str) -> Path:
    name = location.removeprefix("builtin:")
    # A plain file name only: no way out of the samples directory.
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        raise FeedError(f"{_short(location)}: a builtin sample must be a plain file name")
    return SAMPLES_DIR / name


def _read_file(path: Path, settings: FetchSettings, *, shown: str) -> FetchResult:
    cap = settings.max_bytes
    try:
        if path.is_dir():
            raise FeedError(f"{shown}: is a directory, not a feed file")
        size = path.stat().st_size
        if size > cap:
            raise FeedError(f"{shown}: file is {size} bytes, more than the {cap}-byte limit")
        if path.suffix.lower() == ".gz":
            data = _gunzip_file(path, cap, shown)
        else:
            with path.open("rb") as fh:
                data = fh.read(cap + 1)  # the file may have grown since stat()
    except FileNotFoundError:
        raise FeedError(f"{shown}: file not found") from None
    except PermissionError:
        raise FeedError(f"{shown}: permission denied") from None
    except OSError as exc:
        raise FeedError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    if len(data) > cap:
        raise FeedError(f"{shown}: more than the {cap}-byte limit")
    return FetchResult(data, False, None, None, None, str(path))


def _gunzip_file(path: Path, cap: int, shown: str) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read(cap + 1)  # bounded: a small .gz can inflate to gigabytes
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise FeedError(f"{shown}: not a valid gzip file ({exc})") from None
    if len(data) > cap:
        raise FeedError(f"{shown}: decompresses to more than the {cap}-byte limit")
    return data


# --- HTTP ------------------------------------------------------------------------------------------


def _fetch_http(
    location: str,
    settings: FetchSettings,
    etag: str | None,
    last_modified: str | None,
    transport: httpx.BaseTransport | None,
    stop: threading.Event | None,
    ssl_context: ssl.SSLContext | None,
) -> FetchResult:
    shown = _short(location)
    deadline = time.monotonic() + settings.deadline_s
    resolved_here = transport is not None
    headers = {"User-Agent": settings.user_agent, "Accept-Encoding": "gzip"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    # Redirects are followed by hand so that every hop is checked.
    with guarded_client(settings, deadline, stop=stop, ssl_context=ssl_context, transport=transport) as client:
        url = location
        for _hop in range(MAX_REDIRECTS + 1):
            check_url(url, settings, shown, resolve_names=resolved_here)
            timeout = timeouts(settings, _remaining(deadline, settings, shown))
            try:
                with client.stream("GET", url, headers=headers, timeout=timeout) as resp:
                    if resp.status_code in _REDIRECT_CODES and resp.headers.get("location"):
                        url = urljoin(str(resp.url), resp.headers["location"].strip())
                        log.debug("%s: redirected to %s", shown, _short(url))
                        continue
                    return _finish(resp, url, settings, deadline, shown, etag, last_modified)
            except DeadlineExceeded:
                raise FeedError(f"{shown}: took longer than the {settings.deadline_s:g}s deadline") from None
            except Refused as exc:
                raise FeedError(f"{shown}: {exc}") from None
            except httpx.TimeoutException as exc:
                what = "connecting" if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout) else "reading"
                raise FeedError(f"{shown}: timed out {what} ({type(exc).__name__})") from None
            except httpx.HTTPError as exc:
                raise FeedError(f"{shown}: network error: {_short(str(exc)) or type(exc).__name__}") from None
            except httpx.InvalidURL as exc:  # also raised for a malformed Location header
                raise FeedError(f"{shown}: invalid URL or redirect target ({_short(str(exc))})") from None
    raise FeedError(f"{shown}: more than {MAX_REDIRECTS} redirects")


def guarded_client(settings: FetchSettings, deadline: float, *, stop: threading.Event | None = None,
                   ssl_context: ssl.SSLContext | None = None,
                   transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An httpx client for untrusted hosts (feeds, webhooks): every connection through GuardedTransport
    (vetted addresses only, the deadline on every socket operation), no redirect followed by itself,
    and trust_env=False so that no proxy from the environment resolves names where the address check
    cannot see them. transport: the caller's own (tests, special networks) instead."""
    if transport is None:
        transport = GuardedTransport(Budget(deadline, stop), allow_private=settings.allow_private,
                                     ssl_context=ssl_context)
    return httpx.Client(transport=transport, follow_redirects=False, trust_env=False)


def timeouts(settings: FetchSettings, remaining: float) -> httpx.Timeout:
    """The per-operation timeouts of the settings, none past what is left of the deadline."""
    return httpx.Timeout(connect=min(settings.connect_timeout_s, remaining),
                         read=min(settings.read_timeout_s, remaining),
                         write=min(settings.read_timeout_s, remaining),
                         pool=min(settings.connect_timeout_s, remaining))


def _finish(
    resp: httpx.Response,
    url: str,
    settings: FetchSettings,
    deadline: float,
    shown: str,
    etag: str | None,
    last_modified: str | None,
) -> FetchResult:
    new_etag = resp.headers.get("etag")
    new_lm = resp.headers.get("last-modified")
    if resp.status_code == 304:
        return FetchResult(None, True, new_etag or etag, new_lm or last_modified, 304, url)
    if resp.status_code >= 400:
        raise FeedError(f"{shown}: HTTP {resp.status_code} {resp.reason_phrase}".rstrip())
    if resp.status_code in _REDIRECT_CODES:
        raise FeedError(f"{shown}: HTTP {resp.status_code} redirect without a Location")
    cap = settings.max_bytes
    declared = resp.headers.get("content-length")
    if declared and declared.strip().isdigit() and int(declared) > cap:
        raise FeedError(f"{shown}: response is {int(declared)} bytes, more than the {cap}-byte limit")
    body = b"".join(_bounded_body(resp, settings, deadline, shown))
    return FetchResult(body, False, new_etag, new_lm, resp.status_code, url)


def _bounded_body(resp: httpx.Response, settings: FetchSettings, deadline: float, shown: str) -> Iterator[bytes]:
    """The decoded body, chunk by chunk, stopping at the byte cap or the deadline."""
    cap = settings.max_bytes
    encoding = resp.headers.get("content-encoding", "identity").strip().lower()
    inflater: zlib._Decompress | None = None
    if encoding in {"gzip", "x-gzip"}:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    elif encoding not in {"identity", ""}:
        raise FeedError(f"{shown}: unsupported Content-Encoding {encoding!r}")
    raw_total = out_total = 0
    # iter_raw: we inflate ourselves, with max_length, so a compression bomb never expands past the cap.
    for chunk in resp.iter_raw():
        if time.monotonic() > deadline:
            raise FeedError(f"{shown}: took longer than the {settings.deadline_s:g}s deadline")
        raw_total += len(chunk)
        if raw_total > cap:
            raise FeedError(f"{shown}: response is more than the {cap}-byte limit")
        if inflater is None:
            out_total += len(chunk)
            yield chunk
            continue
        try:
            piece = inflater.decompress(chunk, cap + 1 - out_total)
        except zlib.error as exc:
            raise FeedError(f"{shown}: bad {encoding} body ({exc})") from None
        out_total += len(piece)
        if out_total > cap or inflater.unconsumed_tail:
            raise FeedError(f"{shown}: response decompresses to more than the {cap}-byte limit")
        yield piece
    if inflater is not None and not inflater.eof:
        raise FeedError(f"{shown}: truncated {encoding} body")


def _remaining(deadline: float, settings: FetchSettings, shown: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FeedError(f"{shown}: took longer than the {settings.deadline_s:g}s deadline")
    return left


def check_url(url: str, settings: FetchSettings, shown: str, *, resolve_names: bool) -> None:
    """Refuse non-http(s) schemes and refused IP literals. A host name is vetted where it is resolved: by
    the transport at connect time (resolve_names False), or here for a transport given by the caller."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FeedError(f"{shown}: invalid URL {_short(url)}") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise FeedError(f"{shown}: refusing URL scheme {scheme!r} in {_short(url)} (only http and https)")
    host = parts.hostname
    if not host:
        raise FeedError(f"{shown}: URL has no host: {_short(url)}")
    literal = ip_literal(host)
    try:
        if literal is not None:
            why = refusal(literal, settings.allow_private)
            if why is not None:
                raise Refused(f"refusing {host} ({literal}): {why}")
        elif resolve_names:
            budget = Budget(time.monotonic() + settings.connect_timeout_s)
            vet(host, resolve(host, port or (443 if scheme == "https" else 80), budget, None), settings.allow_private)
    except Refused as exc:
        raise FeedError(f"{shown}: {exc}") from None
    except DeadlineExceeded:
        raise FeedError(f"{shown}: cannot resolve host {host!r} (timed out)") from None


def _short(location: str) -> str:
    """A location safe to put in a one-line message: password masked, no line breaks, bounded length."""
    text = one_line(masked_url(location), 200)
    return text if len(text) <= 200 else text[:197] + "..."
