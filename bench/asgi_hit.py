"""Per-request CPU cost of a cache hit through the whole ASGI app, no network.

    .venv/bin/python bench/asgi_hit.py [--requests 20000] [--log-format json|text] [--no-access-log]

Calls the Starlette app directly with a synthetic request whose result is
already in the in-process cache: what is left is routing, middleware (request
id, metrics, access log), the cache lookup and the response. Run it against
two checkouts (PYTHONPATH=<checkout>) to compare before and after a change.
Logs go to /dev/null; metrics use prometheus-client's multiprocess mode as
`pixelpipe serve` does.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time

if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    # Set before prometheus-client is imported; removed at exit (each run left one).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")
    atexit.register(shutil.rmtree, os.environ["PROMETHEUS_MULTIPROC_DIR"], True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--log-format", default="json")
    parser.add_argument("--no-access-log", action="store_true")
    args = parser.parse_args()

    from dataclasses import fields, replace

    from proxy.app import create_app
    from proxy.cache import CachedResult
    from proxy.settings import Settings

    settings = Settings(workers=1)
    names = {f.name for f in fields(Settings)}
    if "log_format" in names:  # absent before the observability change
        settings = replace(settings, log_format=args.log_format, access_log=not args.no_access_log)
        from proxy.logs import configure_logging

        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the whole run
        configure_logging(settings)
    app = create_app(settings)
    path = "/unsafe/rs:fill:300:300/plain/http://origin.invalid/cup.jpg"
    async with app.router.lifespan_context(app):
        service = app.state.service
        _options, key = service.parse_cached(path)
        service.cache.put(key, CachedResult(b"x" * 20000, "image/jpeg", '"e"', "inline"))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"img.example.com"), (b"accept", b"image/webp,*/*")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8080),
        }

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        statuses: list[int] = []

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        per_request = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            for _ in range(args.requests):
                await app(dict(scope), receive, send)
            per_request.append((time.perf_counter() - started) / args.requests * 1e6)
        assert set(statuses) == {200}, set(statuses)
    print(
        f"cache hit through the ASGI app: median {statistics.median(per_request):.1f} µs "
        f"(rounds: {', '.join(f'{v:.1f}' for v in per_request)})"
    )


if __name__ == "__main__":
    asyncio.run(main())
