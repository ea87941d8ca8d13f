"""Request-size limits, enforced before any routing or parsing.

uvicorn's h11 bound applies only while a request head arrives in pieces, so
the limit is checked again here on the complete request line and headers.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.errors import HeadersTooLarge, ProxyError, URITooLong
from proxy.responses import error_response


class RequestLimits:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = request_too_large(scope, self.max_bytes)
            if error is not None:
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def request_too_large(scope: Scope, max_bytes: int) -> ProxyError | None:
    target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    if target > max_bytes:
        return URITooLong()
    headers = sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))
    if headers > max_bytes:
        return HeadersTooLarge()
    return None
