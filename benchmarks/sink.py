"""An SMTP sink for the benchmark: aiosmtpd on 127.0.0.1 that accepts and counts every message.

Run in its own process (python benchmarks/sink.py PORT), so the sender under test does not share
an interpreter lock with it. It prints "ready" once listening and, on SIGTERM, the count.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


class CountingHandler:
    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.messages += 1
        self.bytes += len(envelope.content or b"")
        return "250 OK"


def main() -> None:
    port = int(sys.argv[1])
    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    controller.stop()
    print(f"{handler.messages} {handler.bytes}", flush=True)


if __name__ == "__main__":
    main()
