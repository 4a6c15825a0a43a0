"""The sockets under a feed fetch: one name resolution, every address vetted, the connection made to
the vetted address, and every socket operation bounded by the fetch's wall-clock deadline and a stop event.

Why a network backend under httpx rather than a timer around it. A feed can drip its answer one byte
at a time (headers, body or TLS handshake): each read then returns well within any read timeout, so
per-read timeouts never fire, and a check between body chunks never runs while the headers drip. A
request run in a thread and abandoned at the deadline would leave that thread dripping forever in a
long-running `digest serve`. Here instead every blocking call (resolve, connect, TLS handshake, read,
write) waits at most a short slice, then looks at the deadline and the stop event: the fetch ends at
its deadline however the bytes arrive, a stop request ends it within a slice in any thread (the
scheduler's wake runs in a worker thread, where no signal can interrupt a read), and nothing is left
running. The same backend is what closes DNS rebinding: httpx hands it the host name, it resolves the
name once, vets every address and connects to one of those, while TLS still verifies the certificate
for the name (SNI and Host are the name).
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SockAddr = tuple[Any, ...]
T = TypeVar("T")

SLICE_S = 0.2  # the longest a blocked socket call goes without looking at the deadline and the stop event
# Cloud metadata services outside the link-local ranges (those are refused as a whole): AWS's IPv6
# endpoint, Alibaba's. Never fetched, whatever fetch.allow_private says.
METADATA = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))


class StopRequested(Exception):
    """The stop event was set (SIGTERM): the fetch is abandoned."""


class DeadlineExceeded(Exception):
    """The fetch's wall-clock deadline passed."""


class Refused(Exception):
    """A host that resolves to an address we never connect to, or that cannot be resolved."""


@dataclass(frozen=True)
class Budget:
    """The fetch's wall-clock deadline (time.monotonic()) and the stop event, shared by all its sockets."""

    deadline: float
    stop: threading.Event | None = None

    def wait(self, limit: float | None, on_timeout: Callable[[str], Exception]) -> float:
        """How long the next blocking call may wait: a slice, never past the deadline nor limit (an
        operation's own timeout, raised as on_timeout). Raises if stopped or out of time already."""
        if self.stop is not None and self.stop.is_set():
            raise StopRequested("stopped on request")
        now = time.monotonic()
        if now >= self.deadline:
            raise DeadlineExceeded("deadline passed")
        if limit is not None and now >= limit:
            raise on_timeout("timed out")
        left = min(self.deadline, limit) - now if limit is not None else self.deadline - now
        return max(0.001, min(SLICE_S, left))


def refusal(addr: IPAddress, allow_private: bool) -> str | None:
    """Why we never connect to addr, or None. Link-local and metadata addresses are refused even when
    fetch.allow_private lets loopback and private ones through (tests, labs)."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
    if addr.is_link_local or addr in METADATA:
        return "a link-local or cloud metadata address, never fetched"
    if allow_private:
        return None
    if (addr.is_loopback or addr.is_private or addr.is_reserved or addr.is_multicast or addr.is_unspecified
            or not addr.is_global):  # not global: also shared address space (100.64/10), documentation ranges
        return "a private, loopback or reserved address (set fetch.allow_private to allow it)"
    return None


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def resolve(host: str, port: int, budget: Budget, timeout: float | None) -> list[tuple[int, SockAddr]]:
    """The host's addresses as (family, sockaddr). getaddrinfo cannot be interrupted, so it runs in a
    daemon thread that is left to finish alone if the deadline or a stop comes first."""
    literal = ip_literal(host)
    if literal is not None:
        return [(socket.AF_INET6, (str(literal), port, 0, 0)) if literal.version == 6
                else (socket.AF_INET, (str(literal), port))]
    found: dict[str, Any] = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            found["error"] = exc
        finally:
            done.set()

    threading.Thread(target=lookup, name="digest-resolve", daemon=True).start()
    limit = None if timeout is None else time.monotonic() + timeout
    while not done.wait(budget.wait(limit, httpcore.ConnectTimeout)):
        pass
    if "error" in found:
        raise Refused(f"cannot resolve host {host!r} ({found['error']})")
    return [(int(info[0]), tuple(info[4])) for info in found["infos"]]


def vet(host: str, addrs: Iterable[tuple[int, SockAddr]], allow_private: bool) -> None:
    """Refuse the host if any of its addresses is refused (an attacker's name may list a public one first)."""
    for _family, sockaddr in addrs:
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        why = refusal(addr, allow_private)
        if why is not None:
            raise Refused(f"refusing {host} ({addr}): {why}")


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend for one fetch: vetted addresses only, every wait within the budget."""

    def __init__(self, budget: Budget, *, allow_private: bool) -> None:
        self.budget = budget
        self.allow_private = allow_private

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        addrs = resolve(host, port, self.budget, timeout)
        vet(host, addrs, self.allow_private)
        if not addrs:
            raise Refused(f"cannot resolve host {host!r} (no address)")
        limit = None if timeout is None else time.monotonic() + timeout
        last: Exception | None = None
        for family, sockaddr in addrs:  # the vetted addresses, and no other: never a second lookup
            try:
                return GuardedStream(self._connect(family, sockaddr, limit), self.budget)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"cannot connect to {host}")

    def _connect(self, family: int, sockaddr: SockAddr, limit: float | None) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            err = sock.connect_ex(sockaddr)
            if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                raise httpcore.ConnectError(os.strerror(err))
            with selectors.DefaultSelector() as sel:
                sel.register(sock, selectors.EVENT_WRITE)
                while err and not sel.select(self.budget.wait(limit, httpcore.ConnectTimeout)):
                    pass
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise httpcore.ConnectError(os.strerror(err))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except BaseException:
            sock.close()
            raise

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("feeds are fetched over TCP only")


class GuardedStream(httpcore.NetworkStream):
    """A socket whose every operation waits in slices within the budget and the operation's own timeout."""

    def __init__(self, sock: socket.socket, budget: Budget) -> None:
        self._sock = sock
        self._budget = budget

    def _io(self, op: Callable[[], T], timeout: float | None, on_timeout: Callable[[str], Exception],
            on_error: Callable[[str], Exception]) -> T:
        limit = None if timeout is None else time.monotonic() + timeout
        while True:
            self._sock.settimeout(self._budget.wait(limit, on_timeout))
            try:
                return op()
            except TimeoutError:  # a slice went by: look at the deadline and the stop event again
                continue
            except OSError as exc:  # ssl.SSLError too
                raise on_error(str(exc) or type(exc).__name__) from None

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._io(lambda: self._sock.recv(max_bytes), timeout, httpcore.ReadTimeout, httpcore.ReadError)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        while view:
            sent = self._io(functools.partial(self._sock.send, view), timeout, httpcore.WriteTimeout,
                            httpcore.WriteError)
            view = view[sent:]

    def close(self) -> None:
        self._sock.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        # The certificate is checked for the name in the URL (server_hostname), not the address we pinned.
        try:
            tls = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname, do_handshake_on_connect=False)
        except BaseException:
            self._sock.close()
            raise
        stream = GuardedStream(tls, self._budget)  # wrap_socket took the socket over
        try:
            stream._io(tls.do_handshake, timeout, httpcore.ConnectTimeout, httpcore.ConnectError)
        except BaseException:
            tls.close()
            raise
        return stream

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object" and isinstance(self._sock, ssl.SSLSocket):
            return self._sock._sslobj  # type: ignore[attr-defined]  # as httpcore's own stream does
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "socket":
            return self._sock
        if info == "is_readable":
            return _readable(self._sock)
        return None


def _readable(sock: socket.socket) -> bool:
    """A kept-alive connection with something to read (or closed by the server) is not reused."""
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(0))


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with our network backend under it."""

    def __init__(self, budget: Budget, *, allow_private: bool, ssl_context: ssl.SSLContext | None = None) -> None:
        context = ssl_context or httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=context, trust_env=False)
        # httpx has no parameter for httpcore's network backend: its pool is replaced by one using ours.
        # (tests/ingest/test_fetch.py's pinning tests fail if a future httpx stops going through it.)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            network_backend=GuardedBackend(budget, allow_private=allow_private),
            http1=True, http2=False, retries=0,
        )
