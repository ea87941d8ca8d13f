"""The one way an error becomes an HTTP response: status, one line, no caching."""

from __future__ import annotations

from starlette.responses import PlainTextResponse, Response

from proxy.errors import ProxyError


def error_response(error: ProxyError) -> Response:
    headers = {"Cache-Control": "no-cache"}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return PlainTextResponse(error.reason + "\n", status_code=error.status, headers=headers)
