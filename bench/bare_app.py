"""The ceiling for warm requests: Starlette returning stored bytes from a dict.

Started by bench/run.py's start_bare: httptools, uvloop, no access log, the same workers.
"""

from __future__ import annotations

import os
import pickle

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

with open(os.environ["BARE_APP_DATA"], "rb") as handle:
    BODIES: dict[str, tuple[bytes, str]] = pickle.load(handle)


async def serve(request: Request) -> Response:
    raw = request.scope["raw_path"].decode()
    body, content_type = BODIES[raw]
    return Response(body, headers={"Content-Type": content_type})


app = Starlette(routes=[Route("/{path:path}", serve)])
