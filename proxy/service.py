"""The request path behind the HTTP edge: url -> signature -> options -> cache -> fetch -> pipeline.

`ImageService` holds what lives for a worker's lifetime (caches, the source
doors, the processing threads, admission control) and answers one image or
/info request by calling into the module that owns each step. `proxy.app`
builds it in the lifespan and hands it requests; `proxy.hits` asks it for
cache hits before any routing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import logging.config
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import quote

import pyvips
from cachetools import LRUCache
from starlette.responses import Response

from proxy import tracing
from proxy.admission import Admission
from proxy.allocator import loaded_allocator
from proxy.cache import CachedResult, ResultCache, SourceCache
from proxy.cdn import source_key
from proxy.coalesce import SingleFlight
from proxy.errors import (
    ExpiredURL,
    InvalidSignature,
    InvalidURL,
    NotAnImage,
    ProcessingFailed,
    ProxyError,
    Unauthorized,
)
from proxy.http_headers import (
    SVG_CSP,
    CachePolicy,
    content_disposition,
    default_filename,
    etag_matches,
    make_etag,
    response_caching,
    source_digest,
)
from proxy.info import image_report
from proxy.memory_release import CeilingRelease, IdleRelease, releaser, resident_bytes
from proxy.monitoring import (
    FETCH_SECONDS,
    JOBS_QUEUED,
    MEMORY_HIT,
    MEMORY_MISS,
    MEMORY_RESERVED,
    PENDING,
    PROCESSING_SECONDS,
    REDIS_HIT,
    REDIS_MISS,
    RESULT_CACHE_BYTES,
    SOURCE_BYTES,
    SOURCE_CACHE_BYTES,
    SOURCE_ERRORS,
    SOURCE_HIT,
    SOURCE_MISS,
    error_kind,
    running_job,
)
from proxy.negotiate import CLIENT_HINT_HEADERS, NegotiationPolicy, negotiate
from proxy.observability import RequestRecord, current, format_label
from proxy.options import ParserConfig, ProcessingOptions, parse_options
from proxy.options.formats import CONTENT_TYPES, EXTENSIONS
from proxy.options.thumbor import asks_thumbor_options, looks_like_thumbor, parse_thumbor
from proxy.options.url import rewrite_source, split_path, split_signature
from proxy.pipeline.auto_quality import AutoQualityMemory
from proxy.pipeline.encode import EncoderSettings
from proxy.pipeline.faces import FindingsMemory
from proxy.pipeline.footprint import job_footprint, known_footprint, marks_footprint
from proxy.pipeline.interrupt import stoppable
from proxy.pipeline.process import (
    ProcessedImage,
    ProcessingLimits,
    process_image,
    raw_result,
    render_image,
)
from proxy.responses import PreparedResponse
from proxy.result_store import ResultStore
from proxy.settings import Settings
from proxy.shared_cache import SharedCache
from proxy.sources import SourceImage, Sources
from proxy.thumbor_meta import thumbor_meta
from signing import KeyRing
from signing.thumbor import thumbor_verify

log = logging.getLogger("pixelpipe")

T = TypeVar("T")

THUMBOR_OFF = (
    "a thumbor URL? thumbor URLs are off:"
    " set PIXELPIPE_THUMBOR_KEY or PIXELPIPE_THUMBOR_ALLOW_UNSAFE"
)

# Remembered parses of raw paths (and negotiated variants' keys): ~1.8 KB each,
# so this bounds them at ~15 MB per worker; hot paths stay, a long tail re-parses.
PARSED_PATHS = 8192


class ImageService:
    def __init__(
        self,
        settings: Settings,
        sources: Sources,
        executor: ThreadPoolExecutor,
        cache: ResultCache,
        watermark: pyvips.Image | None = None,
        shared: SharedCache | None = None,
        store: ResultStore | None = None,
    ) -> None:
        self.settings = settings
        self.sources = sources
        self.executor = executor
        self.cache = cache
        self.shared = shared
        self.store = store
        self.source_cache = SourceCache(settings.source_cache_bytes, settings.source_cache_ttl)
        self.result_flights: SingleFlight[str, CachedResult] = SingleFlight()
        self.fetch_flights: SingleFlight[str, SourceImage] = SingleFlight()
        self.fetches = 0
        self.parsed: LRUCache[str, tuple[ProcessingOptions, str, str | None]] = LRUCache(
            maxsize=PARSED_PATHS
        )
        self.thumbor_on = settings.thumbor_key is not None or settings.thumbor_allow_unsafe
        self.url_replacements = tuple(
            (re.compile(pattern), replacement) for pattern, replacement in settings.url_replacements
        )
        self.keys = KeyRing.from_pairs(settings.keys, settings.salts, settings.signature_size)
        self.parser_config = ParserConfig.from_settings(settings)
        self.limits = ProcessingLimits.from_settings(settings)
        self.encoder = EncoderSettings.from_settings(settings)
        # quality:auto's choices by picture, for the same source's other sizes.
        self.auto_memory = AutoQualityMemory()
        self.findings_memory = FindingsMemory()
        self.negotiation = NegotiationPolicy.from_settings(settings)
        self.negotiates = self.negotiation.consults_accept or self.negotiation.client_hints
        # Negotiated variants of parsed options -> their cache key.
        self.variant_keys: LRUCache[ProcessingOptions, str] = LRUCache(maxsize=PARSED_PATHS)
        self.watermark = watermark
        self.admission = Admission(
            max_jobs=settings.concurrency + settings.requests_queue_size,
            budget_bytes=settings.memory_budget,
            max_running=settings.concurrency,
        )
        # Freed pages back to the OS once the worker has run nothing for a second,
        # or when a job ends with the worker over what it is meant to hold: what
        # it holds now, its caches and the memory budget.
        release = releaser(loaded_allocator())
        self.idle_release = IdleRelease(release, lambda: self.admission.busy)
        ceiling = (
            resident_bytes()
            + settings.result_cache_bytes
            + settings.source_cache_bytes
            + settings.memory_budget
        )
        self.ceiling_release = CeilingRelease(release, ceiling)
        self.secret = settings.secret.encode() if settings.secret else None
        self.pipeline_runs = 0
        self.jobs_stopped = 0  # runs stopped because nobody waited for them any more
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

    def parse(self, raw_path: str) -> tuple[ProcessingOptions, str | None]:
        """The options a path asks for, and for a thumbor `meta/` request the
        image as its path names it (None for any other request).

        imgproxy's dialect first: a path both dialects could read is imgproxy's,
        so no imgproxy URL changes meaning when thumbor's is switched on. A
        path imgproxy refuses is tried as thumbor's (or, with THUMBOR_PREFIX,
        only the paths under the prefix are).
        """
        prefix = self.settings.thumbor_prefix
        if self.thumbor_on and prefix and raw_path.startswith(prefix + "/"):
            return self._parse_thumbor(raw_path[len(prefix) :])
        try:
            return self._parse_imgproxy(raw_path), None
        except (InvalidURL, InvalidSignature) as refused:
            if not self.thumbor_on and _reads_as_thumbor(raw_path):
                # A thumbor user moving over would otherwise read only
                # imgproxy's complaint about a path it never meant.
                raise type(refused)(f"{refused.reason} ({THUMBOR_OFF})") from None
            if not self.thumbor_on or prefix:
                raise
            try:
                return self._parse_thumbor(raw_path)
            except ProxyError:
                if looks_like_thumbor(raw_path):
                    raise  # its own reason says more than imgproxy's would
                raise refused from None

    def _parse_imgproxy(self, raw_path: str) -> ProcessingOptions:
        # The signature is checked before anything else in the URL is read.
        signature, signed_path = split_signature(raw_path)
        if self.keys:
            if not self.keys.verify(signature, signed_path):
                raise InvalidSignature()
        elif not self.settings.imgproxy_unsigned:
            raise InvalidSignature("invalid signature: imgproxy URLs need PIXELPIPE_KEY")
        split = split_path(
            raw_path,
            self.parser_config.separator,
            self.settings.base64_url_includes_filename,
            self.settings.only_presets,
        )
        source = rewrite_source(split.source_url, self.settings.base_url, self.url_replacements)
        return parse_options(split.option_segments, source, split.extension, self.parser_config)

    def _parse_thumbor(self, raw_path: str) -> tuple[ProcessingOptions, str | None]:
        signature, signed_path = split_signature(raw_path)
        if signature == "unsafe":
            if not self.settings.thumbor_allow_unsafe:
                raise InvalidSignature("unsigned thumbor URLs are not allowed")
        elif self.settings.thumbor_key is None or not thumbor_verify(
            signature, signed_path[1:], self.settings.thumbor_key
        ):
            raise InvalidSignature()
        request = parse_thumbor(signed_path, self.parser_config)
        return request.options, request.image if request.meta else None

    def parse_cached(self, raw_path: str) -> tuple[ProcessingOptions, str]:
        """parse() and canonical(), remembered per exact raw path.

        A path that verified and parsed once gives the same answer again (the
        settings are fixed for the process's life), so hot URLs skip the HMAC
        and the parser. Failures are not remembered: they raise every time.
        """
        try:
            # Indexing, not .get(): cachetools' get() looks the key up twice.
            known = self.parsed[raw_path]
        except KeyError:
            options, meta = self.parse(raw_path)
            known = self.parsed[raw_path] = (options, options.canonical(), meta)
        return known[0], known[1]

    def meta_image(self, raw_path: str) -> str | None:
        """The image a thumbor `meta/` path names, None for other paths (ask
        after parse_cached, which remembers it)."""
        known = self.parsed.get(raw_path)
        return known[2] if known is not None else None

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

    def cached_answer(
        self, raw_path: str, headers: Mapping[str, str], record: RequestRecord
    ) -> PreparedResponse | None:
        """A result in this process's cache, answered before any routing (see proxy.hits).

        None when the request needs the full path: not cached, or anything to
        refuse (the full path then raises the error and counts the miss).
        """
        now = time.time()
        try:
            self.authorize(headers.get("authorization"))
            options, key, vary = self.live(raw_path, headers, now)
        except ProxyError:
            return None
        if self.thumbor_on and self.meta_image(raw_path) is not None:
            return None  # a thumbor meta/ request shares the image's key, not its answer
        result = self.cache.get(key)
        if result is None:
            return None
        PENDING.inc(MEMORY_HIT)
        record.kind = "image"
        record.cache = "memory"
        record.format = format_label(result.content_type)
        return self._image_response(result, options, headers.get("if-none-match"), now, vary)

    def live(
        self, raw_path: str, headers: Mapping[str, str], now: float
    ) -> tuple[ProcessingOptions, str, tuple[str, ...]]:
        """negotiated(), refusing a URL whose `expires` has passed."""
        options, key, vary = self.negotiated(raw_path, headers)
        if options.expires is not None and 0 < options.expires < now:
            raise ExpiredURL()
        return options, key, vary

    async def respond(self, raw_path: str, headers: Mapping[str, str]) -> Response:
        now = time.time()
        with tracing.span("parse"):  # URL, signature, negotiation
            options, key, vary = self.live(raw_path, headers, now)
        image = self.meta_image(raw_path) if self.thumbor_on else None
        if image is not None:
            return await self.thumbor_meta(raw_path, image, headers)
        record = current()
        with tracing.span("cache.memory"):
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
        """/info: what the source is, and how the result compares with its unencoded self.

        A report is work like an image (a pipeline run, encodes, decodes and the
        metrics): it takes a slot and its share of the memory budget, concurrent
        asks share one run, and it is kept in the result tiers under its own key.
        """
        options, key, vary = self.live(raw_path, headers, time.time())
        return await self._report_response("info/" + key, options, vary, self._produce_info)

    async def thumbor_meta(self, raw_path: str, image: str, headers: Mapping[str, str]) -> Response:
        """thumbor's `meta/`: its JSON of the operations (proxy.thumbor_meta),
        kept like a report under its own key (the image's spelling is in it)."""
        options, key, vary = self.live(raw_path, headers, time.time())

        async def produce(options: ProcessingOptions, key: str) -> CachedResult:
            return await self._produce_meta(options, key, image)

        meta_key = f"meta/{quote(image, safe='')}/{key}"
        return await self._report_response(meta_key, options, vary, produce)

    async def _report_response(
        self,
        key: str,
        options: ProcessingOptions,
        vary: tuple[str, ...],
        produce: Callable[[ProcessingOptions, str], Awaitable[CachedResult]],
    ) -> Response:
        """A JSON report from the result tiers, or made once for concurrent asks."""
        result = self.cache.get(key)
        if result is None:
            MEMORY_MISS.inc()
            result = await self.result_flights.run(key, lambda: self._miss(options, key, produce))
        else:
            MEMORY_HIT.inc()
            current().cache = "memory"
        response = Response(
            result.body, media_type=result.content_type, headers={"Cache-Control": "no-cache"}
        )
        if vary:
            response.headers["Vary"] = ", ".join(vary)
        return response

    async def _produce_info(self, options: ProcessingOptions, key: str) -> CachedResult:
        source = await self._source(options.source_url)
        self.pipeline_runs += 1
        try:
            report, _seconds = await self._run_job(
                source.data,
                options,
                self._report,
                options,
                source.digest or "",
                digest=source.digest or "",
                measuring=True,
            )
        except ProxyError as error:
            self._forget_unreadable(error, options)
            raise
        body = json.dumps(report, separators=(",", ":")).encode()
        return CachedResult(body, "application/json", make_etag(key, source.digest or ""), "")

    async def _produce_meta(self, options: ProcessingOptions, key: str, image: str) -> CachedResult:
        source = await self._source(options.source_url)
        self.pipeline_runs += 1
        digest = source.digest or ""
        try:
            report = await self._run_job(
                source.data,
                options,
                self._meta_report,
                options,
                image,
                digest,
                digest=digest,
                detect_anyway=True,  # as render_image: its footprint counts detection
            )
        except ProxyError as error:
            self._forget_unreadable(error, options)
            raise
        body = json.dumps(report, separators=(",", ":")).encode()
        return CachedResult(body, "application/json", make_etag(key, digest), "")

    def _meta_report(
        self, data: bytes, options: ProcessingOptions, image: str, digest: str
    ) -> dict[str, Any]:
        with running_job():
            rendered = render_image(data, options, self.limits, digest, self.findings_memory)
            return thumbor_meta(image, options, rendered)

    def _report(
        self, data: bytes, options: ProcessingOptions, digest: str = ""
    ) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        with running_job():
            # The same memory as images: /info reports the quality an image gets.
            report = image_report(
                data,
                options,
                self.limits,
                self.watermark,
                self.encoder,
                self.auto_memory,
                digest,
                self.findings_memory,
            )
        return report, time.perf_counter() - started

    async def _miss(
        self,
        options: ProcessingOptions,
        key: str,
        produce: Callable[[ProcessingOptions, str], Awaitable[CachedResult]] | None = None,
    ) -> CachedResult:
        """Not in this process's cache: the shared tiers (Redis, the bucket), else the work."""
        record = current()
        record.cache = "miss"
        result = None
        if self.shared:
            with tracing.span("cache.redis"):
                result = await self.shared.get(key)
            (REDIS_MISS if result is None else REDIS_HIT).inc()
            if result is not None:
                record.cache = "redis"
        if result is None and self.store:
            with tracing.span("cache.result_store"):
                result = await self.store.get(key)
            if result is not None:
                record.cache = "store"
                if self.shared:
                    self.shared.put(key, result)  # the faster shared tier has it next time
        if result is None:
            with self.admission.slot():
                result = await (produce or self._produce)(options, key)
            if self.shared:
                self.shared.put(key, result)
            if self.store:
                self.store.put(key, result)
        self.cache.put(key, result)
        RESULT_CACHE_BYTES.set(self.cache.size_bytes)
        return result

    async def _source(self, url: str) -> SourceImage:
        cached = self.source_cache.get(url)
        (SOURCE_MISS if cached is None else SOURCE_HIT).inc()
        if cached is not None:
            return cached
        with tracing.span("fetch"):
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
        SOURCE_CACHE_BYTES.set(self.source_cache.size_bytes)
        return source

    async def _produce(self, options: ProcessingOptions, key: str) -> CachedResult:
        source = await self._source(options.source_url)
        if options.raw:
            # raw: the source's bytes as they came, if they are an image (see raw_result).
            try:
                processed = await asyncio.to_thread(raw_result, source.data, self.limits)
            except ProxyError as error:
                SOURCE_ERRORS.labels(kind=error_kind(error)).inc()
                raise
            body, content_type = processed.data, processed.content_type
            extension = EXTENSIONS[processed.format]
            extra: tuple[tuple[str, str], ...] = ()
        else:
            self.pipeline_runs += 1
            # thumbor's watermark(url, ...): a second source, under the same rules.
            marks = options.thumbor_watermarks
            fetched = await asyncio.gather(*(self._source(mark.url) for mark in marks))
            mark_data = tuple(source.data for source in fetched)
            frame_url = options.frame_url
            frame_data = (await self._source(frame_url)).data if frame_url else None
            try:
                digest = source.digest or ""
                marks = (*mark_data, frame_data) if frame_data else mark_data
                # Up to four marks and a frame, decoded whole: reserved with the job.
                held = await asyncio.to_thread(marks_footprint, marks, self.limits) if marks else 0
                processed, seconds = await self._run_job(
                    source.data,
                    options,
                    self._process,
                    options,
                    mark_data,
                    digest,
                    frame_data,
                    digest=digest,
                    extra_bytes=held,
                )
            except ProxyError as error:
                # The bytes arrived but are no usable image: a source error too.
                SOURCE_ERRORS.labels(kind=error_kind(error)).inc()
                self._forget_unreadable(error, options)
                raise
            current().process_seconds = seconds
            body, content_type = processed.data, processed.content_type
            extension = EXTENSIONS[processed.format]
            extra = production_headers(processed)
        if content_type == CONTENT_TYPES["svg"]:
            extra = (*extra, ("content-security-policy", SVG_CSP))
        # The CDN purges every variant of a source by this (proxy.cdn).
        sources = [options.source_url]
        sources += [mark.url for mark in options.thumbor_watermarks]
        if options.frame_url:
            sources.append(options.frame_url)
        extra = (*extra, ("surrogate-key", " ".join(source_key(url) for url in sources)))
        # Everything in the key is fixed for this result, so its headers are too.
        filename = default_filename(options.source_url, extension, options.filename)
        return CachedResult(
            body=body,
            content_type=content_type,
            etag=make_etag(key, source.digest or ""),
            disposition=content_disposition(filename, options.return_attachment),
            extra_headers=extra,
            # Kept only when asked for: it is stored with the result (and in Redis).
            source_caching=source.caching if self.settings.cache_control_passthrough else (),
        )

    def _forget_unreadable(self, error: ProxyError, options: ProcessingOptions) -> None:
        """Bytes that did not decode leave the source cache (see SourceCache.forget)."""
        if isinstance(error, NotAnImage | ProcessingFailed):
            self.source_cache.forget(options.source_url)
            for mark in options.thumbor_watermarks:
                self.source_cache.forget(mark.url)
            if options.frame_url:
                self.source_cache.forget(options.frame_url)

    async def _run_job(
        self,
        data: bytes,
        options: ProcessingOptions,
        work: Callable[..., T],
        *args: object,
        digest: str = "",
        detect_anyway: bool = False,
        extra_bytes: int = 0,
        measuring: bool = False,
    ) -> T:
        """work(data, *args) on a processing thread, once its memory fits the budget
        (`detect_anyway`: the work detects even with nothing to cut, thumbor's meta/;
        `extra_bytes`: what it holds beside the source, thumbor's marks;
        `measuring`: it measures the result's quality, /info).

        Cancelled (nobody waits any more), the run is told to stop (see
        proxy.pipeline.interrupt); its memory stays reserved until the thread
        has actually let go of it.
        """
        # A remembered header makes the estimate arithmetic: no thread hop for it.
        estimate = known_footprint(
            len(data), options, self.limits, digest, detect_anyway, measuring
        )
        if estimate is None:
            estimate = await asyncio.to_thread(
                job_footprint, data, options, self.limits, digest, detect_anyway, measuring
            )
        estimate += extra_bytes
        JOBS_QUEUED.inc()
        admitted = False
        # The wait for a slot and memory, as a span of its own: it ends when admitted.
        waiting = tracing.span("admission", **{"pixelpipe.footprint_bytes": estimate})
        waiting.__enter__()
        try:
            async with self.admission.reserve(estimate) as reserved:
                waiting.__exit__(None, None, None)
                admitted = True
                JOBS_QUEUED.dec()
                MEMORY_RESERVED.inc(reserved)
                loop = asyncio.get_running_loop()
                stop = threading.Event()
                carried = tracing.carry()  # a thread does not inherit the trace
                running = loop.run_in_executor(
                    self.executor, _stoppable, stop, carried, work, data, *args
                )
                try:
                    return await asyncio.shield(running)
                except asyncio.CancelledError:
                    stop.set()
                    self.jobs_stopped += 1
                    await asyncio.wait([running])
                    if not running.cancelled():
                        # Read on purpose and dropped: a stopped run ends in
                        # Interrupted, which nobody needs; unread, asyncio logs
                        # it as an ERROR with a traceback once per stopped job.
                        running.exception()
                    raise
                finally:
                    MEMORY_RESERVED.dec(reserved)
                    self.ceiling_release.job_ended()
        finally:
            if not admitted:
                waiting.__exit__(None, None, None)
                JOBS_QUEUED.dec()
            if self.admission.running == 0:
                self.idle_release.idle()

    def _process(
        self,
        data: bytes,
        options: ProcessingOptions,
        mark_data: tuple[bytes, ...] = (),
        digest: str = "",
        frame_data: bytes | None = None,
    ) -> tuple[ProcessedImage, float]:
        started = time.perf_counter()
        with running_job():
            try:
                processed = process_image(
                    data,
                    options,
                    self.limits,
                    self.watermark,
                    self.encoder,
                    mark_data,
                    self.auto_memory,
                    digest,
                    self.findings_memory,
                    frame_data,
                )
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
    ) -> PreparedResponse:
        if not vary and if_none_match is None and options.expires is None:
            plain = not result.raw_source_caching
            second = int(now)
            memo = result.answer_memo
            if plain and memo[0] == second:
                return memo[1]  # type: ignore[return-value]
        else:
            plain = False
        if result.raw_source_caching and options.expires is None:
            # CACHE_CONTROL_PASSTHROUGH: the origin's own lifetime, as it sent it.
            caching = result.raw_source_caching
        else:
            policy = self.cache_policy
            if options.max_age is not None:
                policy = policy.limited_to(options.max_age)
            caching = response_caching(policy, options.expires, now)
        if vary:
            caching = (*caching, (b"vary", ", ".join(vary).encode()))
            if self.negotiation.client_hints:
                caching = (*caching, (b"accept-ch", ", ".join(CLIENT_HINT_HEADERS).encode()))
        if etag_matches(if_none_match, result.etag):
            return PreparedResponse(b"", [(b"etag", result.etag.encode()), *caching], status=304)
        answer = PreparedResponse(result.body, [*result.raw_headers, *caching])
        if plain:
            # Shared by every hit of this second: nothing downstream changes it.
            result.answer_memo[:] = (second, answer)
        return answer


def production_headers(processed: ProcessedImage) -> tuple[tuple[str, str], ...]:
    """How the result was made, for people tuning quality and budgets."""
    headers = [("x-pixelpipe-encodes", str(processed.encodes))]
    if processed.quality:
        headers.append(("x-pixelpipe-quality", str(processed.quality)))
    if processed.scale < 1:
        # max_bytes could not be met at the lowest quality: the image was made smaller.
        headers.append(("x-pixelpipe-downscaled", f"{processed.scale:.3f}"))
    return tuple(headers)


def _stoppable(stop: threading.Event, carried: object, work: Callable[..., T], *args: object) -> T:
    with stoppable(stop), tracing.inside(carried), tracing.span("process"):
        return work(*args)


def _reads_as_thumbor(raw_path: str) -> bool:
    """A thumbor path, its signature aside (unchecked: thumbor's dialect is off)."""
    return looks_like_thumbor(raw_path) and asks_thumbor_options(split_signature(raw_path)[1])
