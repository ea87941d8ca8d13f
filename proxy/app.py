"""The ASGI app: routes, lifespan (HTTP client, thread pool, cache), error mapping.

Request handling is kept thin: `ImageService.respond` walks the request path
url -> signature -> options -> cache -> fetch -> pipeline -> headers, each a
call into the module that owns that step.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import logging.config
import os
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from urllib.parse import quote

import httpx
import pyvips
from cachetools import LRUCache
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from proxy.admission import Admission
from proxy.cache import CachedResult, ResultCache, SourceCache
from proxy.coalesce import SingleFlight
from proxy.errors import ExpiredURL, InvalidSignature, InvalidURL, ProxyError, Unauthorized
from proxy.http_headers import (
    CachePolicy,
    content_disposition,
    default_filename,
    etag_matches,
    make_etag,
    response_caching,
    source_digest,
)
from proxy.info import image_report
from proxy.limits import RequestLimits
from proxy.logs import configure_logging
from proxy.monitoring import (
    FETCH_SECONDS,
    JOBS_QUEUED,
    MEMORY_HIT,
    MEMORY_MISS,
    PROCESSING_SECONDS,
    REDIS_HIT,
    REDIS_MISS,
    SOURCE_BYTES,
    SOURCE_ERRORS,
    SOURCE_HIT,
    SOURCE_MISS,
    error_kind,
    exposition,
    running_job,
    worker_exited,
)
from proxy.negotiate import CLIENT_HINT_HEADERS, NegotiationPolicy, negotiate
from proxy.observability import Observability, current, format_label
from proxy.options import ParserConfig, ProcessingOptions, parse_options, split_path
from proxy.options.formats import EXTENSIONS
from proxy.options.url import split_signature
from proxy.pipeline.encode import EncoderSettings
from proxy.pipeline.process import ProcessedImage, ProcessingLimits, process_image
from proxy.pipeline.watermark import load_watermark
from proxy.readiness import Readiness
from proxy.responses import PreparedResponse, error_response
from proxy.settings import Settings
from proxy.shared_cache import SharedCache
from proxy.sources import Source, SourceImage, Sources
from proxy.sources.http import HttpLimits, HttpSource
from proxy.sources.local import LocalSource
from proxy.sources.network import PolicyNetworkBackend, PolicyTransport, Resolver, resolve_host
from proxy.sources.policy import AddressPolicy, compile_allowed_sources
from signing import KeyRing

log = logging.getLogger("pixelpipe")


def configure_libvips() -> None:
    # The operation cache keeps decoded images alive between requests: with
    # untrusted, mostly distinct inputs it only costs memory.
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)


class ImageService:
    def __init__(
        self,
        settings: Settings,
        sources: Sources,
        executor: ThreadPoolExecutor,
        cache: ResultCache,
        watermark: pyvips.Image | None = None,
        shared: SharedCache | None = None,
    ) -> None:
        self.settings = settings
        self.sources = sources
        self.executor = executor
        self.cache = cache
        self.shared = shared
        self.source_cache = SourceCache(settings.source_cache_bytes, settings.source_cache_ttl)
        self.result_flights: SingleFlight[str, CachedResult] = SingleFlight()
        self.fetch_flights: SingleFlight[str, SourceImage] = SingleFlight()
        self.fetches = 0
        self.parsed: LRUCache[str, tuple[ProcessingOptions, str]] = LRUCache(maxsize=20_000)
        self.keys = KeyRing.from_pairs(settings.keys, settings.salts, settings.signature_size)
        self.parser_config = ParserConfig.from_settings(settings)
        self.limits = ProcessingLimits.from_settings(settings)
        self.encoder = EncoderSettings.from_settings(settings)
        self.negotiation = NegotiationPolicy.from_settings(settings)
        self.negotiates = self.negotiation.consults_accept or self.negotiation.client_hints
        # Negotiated variants of parsed options -> their cache key.
        self.variant_keys: LRUCache[ProcessingOptions, str] = LRUCache(maxsize=20_000)
        self.watermark = watermark
        # Jobs running plus jobs waiting for a processing thread.
        self.admission = Admission(settings.concurrency + settings.requests_queue_size)
        self.secret = settings.secret.encode() if settings.secret else None
        self.pipeline_runs = 0
        self.cache_policy = CachePolicy(
            settings.ttl, settings.s_maxage, settings.stale_while_revalidate
        )

    def authorize(self, authorization: str | None) -> None:
        if self.secret is None:
            return
        scheme, _, token = (authorization or "").partition(" ")
        # compare_digest: the time taken must not tell how close a guess was.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode("utf-8", "replace"), self.secret
        ):
            raise Unauthorized()

    def parse(self, raw_path: str) -> ProcessingOptions:
        # The signature is checked before anything else in the URL is read.
        signature, signed_path = split_signature(raw_path)
        if self.keys and not self.keys.verify(signature, signed_path):
            raise InvalidSignature()
        split = split_path(raw_path)
        return parse_options(
            split.option_segments, split.source_url, split.extension, self.parser_config
        )

    def parse_cached(self, raw_path: str) -> tuple[ProcessingOptions, str]:
        """parse() and canonical(), remembered per exact raw path.

        A path that verified and parsed once gives the same answer again (the
        settings are fixed for the process's life), so hot URLs skip the HMAC
        and the parser. Failures are not remembered: they raise every time.
        """
        known = self.parsed.get(raw_path)
        if known is None:
            options = self.parse(raw_path)
            known = (options, options.canonical())
            self.parsed[raw_path] = known
        return known

    def negotiated(
        self, raw_path: str, headers: Mapping[str, str]
    ) -> tuple[ProcessingOptions, str, tuple[str, ...]]:
        """Options, cache key and Vary for this request: the URL refined by its headers."""
        options, key = self.parse_cached(raw_path)
        if not self.negotiates:
            return options, key, ()
        hint_names = ("sec-ch-dpr", "dpr", "sec-ch-width", "width")
        hints = (
            {name: headers.get(name, "") for name in hint_names}
            if self.negotiation.client_hints
            else {}
        )
        result = negotiate(options, headers.get("accept"), hints, self.negotiation)
        if result.options is not options:
            options = result.options
            key = self.variant_keys.get(options)
            if key is None:
                key = self.variant_keys[options] = options.canonical()
        return options, key, result.vary

    async def respond(self, raw_path: str, headers: Mapping[str, str]) -> Response:
        options, key, vary = self.negotiated(raw_path, headers)
        now = time.time()
        if options.expires is not None and 0 < options.expires < now:
            raise ExpiredURL()
        record = current()
        result = self.cache.get(key)
        if result is None:
            MEMORY_MISS.inc()
            record.cache = "coalesced"  # unless this request leads the work (see _miss)
            result = await self.result_flights.run(key, lambda: self._miss(options, key))
        else:
            MEMORY_HIT.inc()
            record.cache = "memory"
        record.format = format_label(result.content_type)
        return self._image_response(result, options, headers.get("if-none-match"), now, vary)

    async def info(self, raw_path: str, headers: Mapping[str, str]) -> Response:
        """/info: what the source is, and how the result compares with its unencoded self."""
        options, _key, vary = self.negotiated(raw_path, headers)
        if options.expires is not None and 0 < options.expires < time.time():
            raise ExpiredURL()
        source = await self._source(options.source_url)
        with self.admission.slot():
            loop = asyncio.get_running_loop()
            report = await loop.run_in_executor(
                self.executor,
                image_report,
                source.data,
                options,
                self.limits,
                self.watermark,
                self.encoder,
            )
        response = JSONResponse(report, headers={"Cache-Control": "no-cache"})
        if vary:
            response.headers["Vary"] = ", ".join(vary)
        return response

    async def _miss(self, options: ProcessingOptions, key: str) -> CachedResult:
        """Not in this process's cache: the shared tier, else fetch and process."""
        record = current()
        result = await self.shared.get(key) if self.shared else None
        if self.shared:
            (REDIS_MISS if result is None else REDIS_HIT).inc()
        record.cache = "miss" if result is None else "redis"
        if result is None:
            with self.admission.slot():
                result = await self._produce(options, key)
            if self.shared:
                self.shared.put(key, result)
        self.cache.put(key, result)
        return result

    async def _source(self, url: str) -> SourceImage:
        cached = self.source_cache.get(url)
        (SOURCE_MISS if cached is None else SOURCE_HIT).inc()
        if cached is not None:
            return cached
        return await self.fetch_flights.run(url, lambda: self._fetch(url))

    async def _fetch(self, url: str) -> SourceImage:
        self.fetches += 1
        started = time.perf_counter()
        try:
            source = await self.sources.fetch(url)
        except ProxyError as error:
            SOURCE_ERRORS.labels(kind=error_kind(error)).inc()
            raise
        elapsed = time.perf_counter() - started
        FETCH_SECONDS.observe(elapsed)
        SOURCE_BYTES.inc(len(source.data))
        current().fetch_seconds = elapsed
        # Hashing megabytes would stall the event loop: off it, with the pixels.
        digest = await asyncio.to_thread(source_digest, source.data)
        source = replace(source, digest=digest)
        self.source_cache.put(source)
        return source

    async def _produce(self, options: ProcessingOptions, key: str) -> CachedResult:
        source = await self._source(options.source_url)
        if options.raw:
            # raw: the source's bytes as they came, unchecked (size limits still applied).
            body, content_type, extension = (
                source.data,
                source.content_type or "application/octet-stream",
                "",
            )
            extra = ()
        else:
            loop = asyncio.get_running_loop()
            self.pipeline_runs += 1
            JOBS_QUEUED.inc()
            try:
                processed, seconds = await loop.run_in_executor(
                    self.executor, self._process, source.data, options
                )
            except ProxyError as error:
                # The bytes arrived but are no usable image: a source error too.
                SOURCE_ERRORS.labels(kind=error_kind(error)).inc()
                raise
            current().process_seconds = seconds
            body, content_type = processed.data, processed.content_type
            extension = EXTENSIONS[processed.format]
            extra = production_headers(processed)
        # Everything in the key is fixed for this result, so its headers are too.
        filename = options.filename or default_filename(options.source_url, extension).rstrip(".")
        return CachedResult(
            body=body,
            content_type=content_type,
            etag=make_etag(key, source.digest or ""),
            disposition=content_disposition(filename, options.return_attachment),
            extra_headers=extra,
            # Kept only when asked for: it is stored with the result (and in Redis).
            source_caching=source.caching if self.settings.cache_control_passthrough else (),
        )

    def _process(self, data: bytes, options: ProcessingOptions) -> tuple[ProcessedImage, float]:
        # On a processing thread: from here the job runs, no longer waits.
        JOBS_QUEUED.dec()
        started = time.perf_counter()
        with running_job():
            try:
                processed = process_image(data, options, self.limits, self.watermark, self.encoder)
            finally:
                PROCESSING_SECONDS.observe(time.perf_counter() - started)
        return processed, time.perf_counter() - started

    def _image_response(
        self,
        result: CachedResult,
        options: ProcessingOptions,
        if_none_match: str | None,
        now: float,
        vary: tuple[str, ...] = (),
    ) -> Response:
        if result.raw_source_caching and options.expires is None:
            # CACHE_CONTROL_PASSTHROUGH: the origin's own lifetime, as it sent it.
            caching = result.raw_source_caching
        else:
            caching = response_caching(self.cache_policy, options.expires, now)
        if vary:
            caching = (*caching, (b"vary", ", ".join(vary).encode()))
            if self.negotiation.client_hints:
                caching = (*caching, (b"accept-ch", ", ".join(CLIENT_HINT_HEADERS).encode()))
        if etag_matches(if_none_match, result.etag):
            return PreparedResponse(b"", [(b"etag", result.etag.encode()), *caching], status=304)
        return PreparedResponse(result.body, [*result.raw_headers, *caching])


def production_headers(processed: ProcessedImage) -> tuple[tuple[str, str], ...]:
    """How the result was made, for people tuning quality and budgets."""
    headers = [("x-pixelpipe-encodes", str(processed.encodes))]
    if processed.quality:
        headers.append(("x-pixelpipe-quality", str(processed.quality)))
    if processed.scale < 1:
        # max_bytes could not be met at the lowest quality: the image was made smaller.
        headers.append(("x-pixelpipe-downscaled", f"{processed.scale:.3f}"))
    return tuple(headers)


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


def build_sources(settings: Settings, client: httpx.AsyncClient) -> Sources:
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
    return Sources(by_scheme, allowed)


def build_shared_cache(settings: Settings) -> SharedCache | None:
    if not settings.redis_url:
        return None
    return SharedCache(
        settings.redis_url,
        ttl=settings.redis_ttl,
        max_item_bytes=settings.redis_max_item_bytes,
        timeout=settings.redis_timeout,
    )


def create_app(settings: Settings, resolver: Resolver = resolve_host) -> Starlette:
    configure_libvips()
    readiness = Readiness(settings.shutdown_delay)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not settings.signing_enabled:
            log.warning("no PIXELPIPE_KEY/PIXELPIPE_SALT set: URL signatures are NOT checked")
        async with build_client(settings, resolver) as client:
            executor = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="pipeline")
            sources = build_sources(settings, client)
            shared = build_shared_cache(settings)
            app.state.service = ImageService(
                settings,
                sources,
                executor,
                ResultCache(settings.result_cache_bytes, settings.result_cache_ttl),
                await load_watermark(settings, sources),
                shared,
            )
            readiness.hook_sigterm()
            readiness.started = True
            try:
                yield
            finally:
                readiness.draining = True
                if shared is not None:
                    await shared.close()
                executor.shutdown(wait=True, cancel_futures=True)
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
                return await service.info(path.removeprefix("/info"), request.headers)
            return await service.respond(path, request.headers)
        except ProxyError as error:
            record.error = error_kind(error)
            return error_response(error, settings.error_ttl)
        except Exception:
            # Never a traceback to the client; the log has it.
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
    routes += [
        Route("/info/{path:path}", info, methods=["GET"]),
        Route("/{path:path}", image, methods=["GET", "HEAD"]),
    ]
    app = Starlette(
        middleware=[
            Middleware(Observability, access_log_enabled=settings.access_log),
            Middleware(RequestLimits, max_bytes=settings.max_header_bytes),
        ],
        routes=routes,
        lifespan=lifespan,
    )
    app.state.readiness = readiness
    return app


def tune_garbage_collector() -> None:
    # Requests allocate many short-lived objects; at the default threshold the
    # collector runs every few requests and its full passes show up as tail
    # latency. Objects made at start-up are frozen out of its work for good.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def create_app_from_env() -> Starlette:
    """uvicorn's factory in each worker process: settings are read once, here."""
    tune_garbage_collector()
    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(settings)
