"""Checks every HTTP request passes before a route runs: the API key of write requests and the
body size (also of chunked bodies, which declare no length). Pure ASGI, like the metrics
middleware, so it costs microseconds and runs before FastAPI reads or parses anything."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

API_KEY_HEADER = "X-API-Key"
API_KEY_ENV = "MOTOREC_API_KEY"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def reply(send: Callable, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """401 for a write request without the API key (when one is set); 413 for a body over `max_body`."""

    def __init__(self, app: Callable, max_body: int, api_key: str | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.api_key is not None and scope["method"] in WRITE_METHODS:
            given = headers.get(API_KEY_HEADER.lower().encode())
            if given is None or not hmac.compare_digest(given, self.api_key):
                await reply(
                    send,
                    401,
                    f"write requests need the service's API key in the {API_KEY_HEADER} header.",
                    [(b"www-authenticate", API_KEY_HEADER.encode())],
                )
                return
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_body:
                await self._too_large(send)
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): read the body here, up to the limit, then hand it on.
        messages, total = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            total += len(message.get("body", b""))
            if total > self.max_body:
                await self._too_large(send)
                return
            if not message.get("more_body"):
                break

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Callable) -> None:
        await reply(send, 413, f"request body larger than {self.max_body} bytes")
