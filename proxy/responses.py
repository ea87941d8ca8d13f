"""The one way an error becomes an HTTP response: status, one line, cached briefly or not."""

from __future__ import annotations

from starlette.responses import PlainTextResponse, Response

from proxy.errors import ProxyError
from proxy.http_headers import error_caching


def error_response(error: ProxyError, error_ttl: int = 0) -> Response:
    headers = {"Cache-Control": error_caching(error.status, error_ttl)}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return PlainTextResponse(error.reason + "\n", status_code=error.status, headers=headers)


class PreparedResponse(Response):
    """A response whose headers arrive encoded: the hot path of a cache hit.

    Starlette's Response encodes every header on every response; a cached
    result's headers are the same each time, so they are encoded once.
    """

    def __init__(self, body: bytes, raw_headers: list[tuple[bytes, bytes]], status: int = 200):
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = raw_headers
