"""Cache hits answered before routing: the hot path at the speed of the HTTP stack.

A hit needs the URL's signature checked (remembered per path), its cache key,
and the stored bytes with their pre-encoded headers. Starlette's router,
exception middleware and Request/Response objects cost more than all of that
(BENCHMARKS.md, "Hits"), so this plain ASGI middleware asks the service for a
hit first and hands everything else, misses and errors included, to the app
unchanged. It sits inside the request-id/metrics and request-size
middlewares, so hits are logged, counted and bounded like any request.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

# Routes that are not image URLs; /info answers are never cached.
_OTHER_ROUTES = (b"/health", b"/ready", b"/metrics", b"/info/")
_METHODS = frozenset({"GET", "HEAD"})


class CacheHits:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _METHODS:
            raw = scope.get("raw_path")
            service = getattr(scope["app"].state, "service", None)
            if raw and service is not None and not raw.startswith(_OTHER_ROUTES):
                try:
                    path = raw.decode("utf-8")
                except UnicodeDecodeError:
                    path = None
                if path is not None:
                    response = service.cached_answer(path, Headers(scope=scope))
                    if response is not None:
                        await response(scope, receive, send)
                        return
        await self.app(scope, receive, send)
