"""A real HTTP server for tests: a handler class served on 127.0.0.1, a free port, a thread.

    class Feed(QuietHandler):
        def do_GET(self) -> None:
            self.send_body(b"<rss ...>", headers={"Content-Type": "application/rss+xml"})

    with LocalHttpServer(Feed) as server:      # or server = LocalHttpServer(Feed) ... server.close()
        fetch(f"{server.base}/feed.xml", ...)

ssl_context= serves HTTPS on the same port (server.base then starts with https://).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class QuietHandler(BaseHTTPRequestHandler):
    """No request log on stderr (it would clutter pytest's output), and a whole reply in one call."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_body(self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LocalHttpServer:
    """handler served from now until close(), each request on a thread of its own; close() returns
    once the requests in hand are answered."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # Request threads that close() waits for: a test that counts threads (tests/mail/test_composing.py)
        # finds none of them left behind.
        self.httpd.daemon_threads = False
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.base = f"{'https' if ssl_context else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def __enter__(self) -> LocalHttpServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
