"""A chat webhook endpoint for tests: a real HTTP server on 127.0.0.1 that records every request and
answers as scripted, path by path: 200, 429 with Retry-After, 500, a redirect, or a hang (the body
is read, no answer comes until the test ends).

    with HookRecorder() as hooks:
        hooks.script("/slack", Reply(429, retry_after="2"), Reply(200))   # then the last reply again
        url = hooks.url("/slack")
        ...
        hooks.bodies("/slack")  ->  the JSON bodies received there
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from tests.http_server import LocalHttpServer, QuietHandler


@dataclass(frozen=True)
class Reply:
    status: int = 200
    retry_after: str | None = None
    body: bytes = b"ok"
    location: str | None = None
    hang: bool = False


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HookRecorder:
    received: list[Received] = field(default_factory=list)
    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)  # ends every hang
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        recorder = self

        class Handler(QuietHandler):
            def _any(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                path = self.path.split("?", 1)[0]
                with recorder.lock:
                    recorder.received.append(Received(self.command, path, dict(self.headers.items()), body))
                    reply = recorder._next(path)
                if reply.hang:
                    recorder.release.wait(60)
                    self.close_connection = True
                    return
                headers = {"Content-Type": "text/plain"}
                if reply.retry_after is not None:
                    headers["Retry-After"] = reply.retry_after
                if reply.location is not None:
                    headers["Location"] = reply.location
                self.send_body(reply.body, reply.status, headers)

            do_POST = do_PUT = do_GET = _any

        self.server = LocalHttpServer(Handler)
        self.base = self.server.base

    def _next(self, path: str) -> Reply:
        for prefix, replies in self.scripts.items():
            if path.startswith(prefix):
                return replies.pop(0) if len(replies) > 1 else replies[0]
        return Reply()

    def script(self, prefix: str, *replies: Reply) -> None:
        """Requests whose path starts with prefix get these replies in turn, then the last one again."""
        with self.lock:
            self.scripts[prefix] = list(replies)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def at(self, prefix: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path.startswith(prefix)]

    def close(self) -> None:
        self.release.set()
        self.server.close()

    def __enter__(self) -> HookRecorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
