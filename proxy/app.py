"""The ASGI app: routes, lifespan (HTTP client, thread pool, cache), error mapping.

Request handling is kept thin: `ImageService.respond` walks the request path
url -> signature -> options -> cache -> fetch -> pipeline -> headers, each a
call into the module that owns that step.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import logging.config
import os
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pyvips
from starlette.applications import Starlette
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive

from proxy import playground, tracing
from proxy.allocator import loaded_allocator
from proxy.cache import ResultCache
from proxy.errors import InvalidURL, ProxyError, RequestTimeout
from proxy.hits import CacheHits
from proxy.limits import RequestLimits
from proxy.logs import AccessLog, configure_logging
from proxy.monitoring import (
    PENDING,
    error_kind,
    exposition,
    worker_exited,
)
from proxy.observability import Observability, current
from proxy.pipeline.load import forget_vips_error
from proxy.pipeline.watermark import load_watermark
from proxy.readiness import Readiness
from proxy.responses import error_response
from proxy.result_store import ResultStore
from proxy.service import ImageService
from proxy.settings import Settings
from proxy.shared_cache import SharedCache
from proxy.sources import Source, Sources
from proxy.sources.buckets import BucketSource
from proxy.sources.http import HttpLimits, HttpSource
from proxy.sources.local import LocalSource
from proxy.sources.network import PolicyNetworkBackend, PolicyTransport, Resolver, resolve_host
from proxy.sources.policy import AddressPolicy, compile_allowed_sources
from proxy.storage import ObjectStores, parse_storage_location

log = logging.getLogger("pixelpipe")


class AnythingConvertor(PathConvertor):
    """Starlette's `path` without its blind spot: `.` stops at a line break, so a
    path with `%0a` fell through to a bare 404 that was neither explained nor
    logged. Every path now reaches the image handler, which refuses it in one line."""

    regex = "(?s:.*)"


register_url_convertor("anything", AnythingConvertor())


async def within_deadline(
    work: Coroutine[Any, Any, Response], receive: Receive, seconds: float
) -> Response:
    """The answer of `work`, unless the client hangs up first or `seconds` pass.

    Either way the work is cancelled, which stops its download or its pipeline
    run (proxy.pipeline.interrupt) unless another request shares it
    (proxy.coalesce): a request nobody waits for costs nothing more.
    """
    answer = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait(
            (answer, gone), timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        gone.cancel()
    if answer in done:
        return answer.result()
    answer.cancel()
    with contextlib.suppress(asyncio.CancelledError, ProxyError):
        await answer
    if gone in done:
        return Response(status_code=499)  # nobody reads it: the client has gone
    raise RequestTimeout()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def configure_libvips() -> None:
    # The operation cache keeps decoded images alive between requests: with
    # untrusted, mostly distinct inputs it only costs memory.
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)


def raw_request_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if raw is None:
        return quote(request.scope["path"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidURL("invalid URL: path is not valid UTF-8") from None


def address_policy(settings: Settings) -> AddressPolicy:
    return AddressPolicy(
        allow_loopback=settings.allow_loopback_source_addresses,
        allow_link_local=settings.allow_link_local_source_addresses,
        allow_private=settings.allow_private_source_addresses,
        allow_multicast=settings.allow_multicast_source_addresses,
    )


def build_client(settings: Settings, resolver: Resolver = resolve_host) -> httpx.AsyncClient:
    """The one HTTP client: every connection it makes passes the address policy."""
    backend = PolicyNetworkBackend(address_policy(settings), resolver)
    return httpx.AsyncClient(
        transport=PolicyTransport(backend),
        timeout=httpx.Timeout(settings.download_timeout or None, connect=settings.connect_timeout),
        follow_redirects=False,
        headers={"User-Agent": settings.user_agent},
    )


def build_sources(
    settings: Settings, client: httpx.AsyncClient, stores: ObjectStores | None = None
) -> Sources:
    allowed = compile_allowed_sources(settings.allowed_sources)
    limits = HttpLimits(
        max_bytes=settings.max_src_file_size,
        timeout=settings.download_timeout,
        max_redirects=settings.max_redirects,
        allow_credentials=settings.allow_source_credentials,
        allowed_sources=allowed,
    )
    http = HttpSource(client, limits)
    by_scheme: dict[str, Source] = {"http": http, "https": http}
    if settings.local_filesystem_root:
        by_scheme["local"] = LocalSource(settings.local_filesystem_root, settings.max_src_file_size)
    enabled = {"s3": settings.use_s3, "gs": settings.use_gcs, "abs": settings.use_abs}
    if any(enabled.values()):
        buckets = BucketSource(
            stores or ObjectStores(settings), settings.max_src_file_size, settings.download_timeout
        )
        by_scheme.update({scheme: buckets for scheme, on in enabled.items() if on})
    return Sources(by_scheme, allowed)


def build_result_store(settings: Settings, stores: ObjectStores) -> ResultStore | None:
    if not settings.result_storage:
        return None
    scheme, bucket, prefix = parse_storage_location(settings.result_storage)
    return ResultStore(
        stores.store(scheme, bucket),
        prefix,
        timeout=settings.result_storage_timeout,
        queue_size=settings.result_storage_queue_size,
    )


def build_shared_cache(settings: Settings) -> SharedCache | None:
    if not settings.redis_url:
        return None
    return SharedCache(
        settings.redis_url,
        ttl=settings.redis_ttl,
        max_item_bytes=settings.redis_max_item_bytes,
        timeout=settings.redis_timeout,
    )


def create_app(settings: Settings, resolver: Resolver = resolve_host) -> ServedApp:
    configure_libvips()
    readiness = Readiness(settings.shutdown_delay)
    stores = ObjectStores(settings)
    stores.check()
    access_log = AccessLog(settings.log_format)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        open_dialect = settings.imgproxy_unsigned or settings.thumbor_allow_unsafe
        (log.warning if open_dialect else log.info)("%s", settings.signing_summary())
        # In the worker, after any fork: the exporter's thread belongs to this process.
        tracing.configure(settings.open_telemetry_enable)
        async with build_client(settings, resolver) as client:
            executor = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="pipeline")
            sources = build_sources(settings, client, stores)
            shared = build_shared_cache(settings)
            store = build_result_store(settings, stores)
            if store is not None:
                store.start()
            app.state.service = ImageService(
                settings,
                sources,
                executor,
                ResultCache(settings.result_cache_bytes, settings.result_cache_ttl),
                await load_watermark(settings, sources),
                shared,
                store,
            )
            readiness.hook_sigterm()
            readiness.started = True
            collector = asyncio.create_task(collect_cycles())
            try:
                yield
            finally:
                collector.cancel()
                readiness.draining = True
                if shared is not None:
                    await shared.close()
                if store is not None:
                    await store.close()
                executor.shutdown(wait=True, cancel_futures=True)
                access_log.flush()
                tracing.shutdown()  # what is batched is sent
                PENDING.apply()  # a callback scheduled on this loop may never run now
                worker_exited(os.getpid())

    async def health(request: Request) -> Response:
        # Liveness: the process answers. It stays "ok" while draining.
        return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})

    async def ready(request: Request) -> Response:
        if readiness.ready:
            return PlainTextResponse("ready\n", headers={"Cache-Control": "no-store"})
        reason = "shutting down\n" if readiness.draining else "starting\n"
        return PlainTextResponse(reason, status_code=503, headers={"Cache-Control": "no-store"})

    async def metrics(request: Request) -> Response:
        body, content_type = await asyncio.to_thread(exposition)
        return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})

    async def answer(request: Request, kind: str) -> Response:
        """An image or /info request: the service's answer, or its error as one line."""
        service: ImageService = request.app.state.service
        record = current()
        record.kind = kind
        try:
            service.authorize(request.headers.get("authorization"))
            path = raw_request_path(request)
            if kind == "info":
                # Signed like an image URL: the signature covers what follows /info.
                work = service.info(path.removeprefix("/info"), request.headers)
            else:
                work = service.respond(path, request.headers)
            return await within_deadline(work, request.receive, settings.timeout)
        except ProxyError as error:
            record.error = error_kind(error)
            return error_response(error, settings.error_ttl)
        except Exception:
            # Never a traceback to the client; the log has it. libvips' error
            # buffer is emptied, so one bad message cannot break later errors.
            forget_vips_error()
            log.exception("unexpected error for %s", request.url.path[:200])
            record.error = "internal_error"
            return error_response(ProxyError())

    async def image(request: Request) -> Response:
        return await answer(request, "image")

    async def info(request: Request) -> Response:
        return await answer(request, "info")

    routes = [
        Route("/health", health, methods=["GET", "HEAD"]),
        Route("/ready", ready, methods=["GET", "HEAD"]),
    ]
    if not settings.metrics_port:
        routes.append(Route("/metrics", metrics, methods=["GET"]))
    routes += playground.routes(settings)
    routes += [
        Route("/info/{path:anything}", info, methods=["GET"]),
        Route("/{path:anything}", image, methods=["GET", "HEAD"]),
    ]
    app = Starlette(
        middleware=[Middleware(RequestLimits, max_bytes=settings.max_header_bytes)],
        routes=routes,
        lifespan=lifespan,
    )
    app.state.readiness = readiness
    return ServedApp(app, access_log, settings)


class ServedApp(Observability):
    """The ASGI app uvicorn runs: request bookkeeping and cache hits around the Starlette app.

    Outside Starlette, a cache hit passes no middleware layer at all (each one
    wraps `send` once more); everything else goes through the app as before.
    `state` and `router` are the Starlette app's, for the tests and benchmarks.
    """

    def __init__(self, app: Starlette, access_log: AccessLog, settings: Settings) -> None:
        super().__init__(
            app,
            access_log=access_log,
            access_log_enabled=settings.access_log,
            cache_hits=CacheHits(app.state, settings.max_header_bytes),
        )
        self.state = app.state
        self.router = app.router


def tune_garbage_collector() -> None:
    # Requests allocate many short-lived objects; at the default threshold the
    # collector runs every few requests and its full passes show up as tail
    # latency. Objects made at start-up are frozen out of its work for good.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


# How often a worker runs a full garbage collection (see collect_cycles).
CYCLE_COLLECTION_SECONDS = 10.0


async def collect_cycles() -> None:
    """A full collection every CYCLE_COLLECTION_SECONDS, so failed requests do not pile up.

    A request that fails leaves a reference cycle (the exception, its
    traceback, the frames, their locals), and the locals can be the source's
    bytes and pyvips images: megabytes per failure. With the raised thresholds
    of tune_garbage_collector, the collector's full pass came so rarely that a
    10-minute soak with 7% failing requests grew a worker's RSS by ~2 MB/s
    until one ran (BENCHMARKS.md, "Faults under load"). One full pass every
    few seconds frees them at a steady cost of a few milliseconds each (the
    start-up objects are frozen out of its work).
    """
    while True:
        await asyncio.sleep(CYCLE_COLLECTION_SECONDS)
        gc.collect()


def create_app_from_env() -> ServedApp:
    """uvicorn's factory in each worker process: settings are read once, here."""
    tune_garbage_collector()
    settings = Settings.from_env()
    configure_logging(settings)
    log.info("worker %d: allocator %s", os.getpid(), loaded_allocator())
    return create_app(settings)
