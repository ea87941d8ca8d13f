"""The least an HTTP server can add to W1: a bare Starlette app running the pipeline.

One route; the source is chosen by the name at the end of the path from bytes
already in memory (BARE_SOURCES: a path list, colon-separated), and W1's
pipeline (`process_image`, 300x300 fill JPEG q80) runs on a pool of CPU-count
threads, as pixelpipe runs jobs. No signature, cache, fetch, log or metrics.
Served by bench/cold_variants.py --bare with uvicorn, httptools + uvloop, 2
workers on SO_REUSEPORT sockets: the baseline with its best configuration.
"""

from __future__ import annotations

import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import pipeline_call
from proxy.app import configure_libvips

configure_libvips()
SOURCES = {Path(p).name: Path(p).read_bytes() for p in os.environ["BARE_SOURCES"].split(":")}
W1 = pipeline_call("/unsafe/rs:fill:300:300/q:80/plain/local:///x@jpg")
POOL = ThreadPoolExecutor(os.cpu_count() or 1)


async def image(request: Request) -> Response:
    name = request.url.path.rsplit("/", 1)[-1].split("@", 1)[0]
    data = SOURCES[name]
    body = await asyncio.get_running_loop().run_in_executor(POOL, W1, data)
    return Response(body, media_type="image/jpeg")


app = Starlette(routes=[Route("/{path:path}", image)])
