"""A raw-socket server on 127.0.0.1 that answers every connection with a prefix and then one byte at a
time: the feed that drips its headers, its body or its TLS handshake. It stops by itself."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

# Drips of the issue: the status line and the start of a header, then the header's value byte by byte.
HEADERS_DRIP = b"HTTP/1.1 200 OK\r\nX-Drip: "
BODY_DRIP = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 10000\r\n\r\n<rss"
# A TLS record header announcing a 16 KB handshake message: the client waits for the rest of it.
TLS_DRIP = b"\x16\x03\x03\x40\x00"


class DripServer:
    """prefix is sent once the client has spoken (never, when prefix is None: a server that accepts
    and stays silent), then `byte` every interval seconds for at most max_s seconds."""

    def __init__(self, prefix: bytes | None, *, interval: float = 0.3, byte: bytes = b"a", max_s: float = 60,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.prefix, self.interval, self.byte, self.max_s = prefix, interval, byte, max_s
        self.sock = socket.create_server((host, port))
        self.sock.settimeout(0.1)
        self.host, self.port = self.sock.getsockname()[:2]
        self.accepted = 0
        self.closed_by_client = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/feed.xml"

    def __enter__(self) -> DripServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        ends = time.monotonic() + self.max_s
        while not self._done.is_set() and time.monotonic() < ends:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            threading.Thread(target=self._drip, args=(conn, ends), daemon=True).start()

    def _drip(self, conn: socket.socket, ends: float) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(self.interval)
            with contextlib.suppress(TimeoutError):
                conn.recv(65536)  # the request, or the TLS ClientHello
            if self.prefix is not None:
                conn.sendall(self.prefix)
            while not self._done.is_set() and time.monotonic() < ends:
                if self.prefix is not None:
                    conn.sendall(self.byte)
                try:  # wait out the interval; an empty read means the client hung up
                    if conn.recv(65536) == b"":
                        self.closed_by_client.set()
                        return
                except TimeoutError:
                    continue
