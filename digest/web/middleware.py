"""What wraps every response: the security headers, and one log line per request with the token left out."""

from __future__ import annotations

import logging

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.web.pages import SECURITY_HEADERS

log = logging.getLogger(__name__)


class SecurityHeaders:
    """Adds the security headers to every response and logs one line per request, tokens left out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                parts = str(scope["path"]).split("/")
                shown = "/".join(parts[:2]) + ("/..." if len(parts) > 2 else "")
                log.info("%s %s %s", scope["method"], shown, message["status"])
            await send(message)

        await self.app(scope, receive, send_with_headers)
