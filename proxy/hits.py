"""Cache hits answered before routing: the hot path at the speed of the HTTP stack.

A hit needs the URL's signature checked (remembered per path), its cache key,
and the stored bytes with their pre-encoded headers. Starlette's router,
exception middleware, Request/Response objects and each extra middleware
layer cost more than all of that (BENCHMARKS.md, "Hits"), so the request-id
and metrics middleware (`proxy.observability`) asks `CacheHits` first and
sends a hit itself; everything else, misses and errors included, goes to the
app unchanged and gets its answer there.
"""

from __future__ import annotations

from starlette.datastructures import Headers, State
from starlette.types import Scope

from proxy.limits import request_too_large
from proxy.observability import RequestRecord
from proxy.responses import PreparedResponse

# Routes that are not image URLs; /info answers are never cached.
_OTHER_ROUTES = (b"/health", b"/ready", b"/metrics", b"/info/")
_METHODS = frozenset({"GET", "HEAD"})


class CacheHits:
    def __init__(self, state: State, max_header_bytes: int) -> None:
        self.state = state  # the app's: `service` is there once the lifespan has started
        self.max_header_bytes = max_header_bytes

    def __call__(self, scope: Scope, record: RequestRecord) -> PreparedResponse | None:
        """The answer to a request for a result in this worker's cache, else None."""
        if scope["method"] not in _METHODS:
            return None
        raw = scope.get("raw_path")
        service = getattr(self.state, "service", None)
        if not raw or service is None or raw.startswith(_OTHER_ROUTES):
            return None
        if request_too_large(scope, self.max_header_bytes) is not None:
            return None  # the app answers it, with its error
        try:
            path = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return service.cached_answer(path, Headers(scope=scope), record)
