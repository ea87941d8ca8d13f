"""Prometheus metrics: what operators graph and alert on.

The metrics are module-level, as prometheus-client expects: one set per
process. With several uvicorn workers each process writes its values to files
in PROMETHEUS_MULTIPROC_DIR (set by `pixelpipe serve` before any worker
starts), and a scrape of any worker, or of the metrics port, adds up all of
them. Label values are drawn from small fixed sets (status codes, formats,
error kinds) so the number of series stays bounded whatever clients send.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds: a cache hit is well under 1 ms, a large AVIF encode a few seconds.
_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter(
    "pixelpipe_requests",
    "Image and /info requests answered, by HTTP status and output format",
    ["status", "format"],
)
REQUEST_SECONDS = Histogram(
    "pixelpipe_request_duration_seconds",
    "Time from request to the last byte of the answer",
    buckets=_LATENCY_BUCKETS,
)
PROCESSING_SECONDS = Histogram(
    "pixelpipe_processing_duration_seconds",
    "Time a pipeline run takes in its thread (decode, transform, encode)",
    buckets=_LATENCY_BUCKETS,
)
FETCH_SECONDS = Histogram(
    "pixelpipe_fetch_duration_seconds",
    "Time to download a source image",
    buckets=_LATENCY_BUCKETS,
)
CACHE_LOOKUPS = Counter(
    "pixelpipe_cache_lookups",
    "Cache lookups by tier (memory: results in this process; redis: the shared tier; "
    "source: downloaded sources) and outcome (hit or miss)",
    ["tier", "outcome"],
)
# The cache outcomes, bound once: labels() per lookup would cost a lock and a dict.
MEMORY_HIT = CACHE_LOOKUPS.labels(tier="memory", outcome="hit")
MEMORY_MISS = CACHE_LOOKUPS.labels(tier="memory", outcome="miss")
REDIS_HIT = CACHE_LOOKUPS.labels(tier="redis", outcome="hit")
REDIS_MISS = CACHE_LOOKUPS.labels(tier="redis", outcome="miss")
SOURCE_HIT = CACHE_LOOKUPS.labels(tier="source", outcome="hit")
SOURCE_MISS = CACHE_LOOKUPS.labels(tier="source", outcome="miss")
SOURCE_BYTES = Counter("pixelpipe_source_bytes", "Bytes of source images downloaded")
RESPONSE_BYTES = Counter("pixelpipe_response_bytes", "Bytes of response bodies sent")
JOBS_RUNNING = Gauge(
    "pixelpipe_jobs_running",
    "Pipeline runs executing in a processing thread now",
    multiprocess_mode="livesum",
)
JOBS_QUEUED = Gauge(
    "pixelpipe_jobs_queued",
    "Pipeline runs waiting for a processing thread and their share of the memory budget",
    multiprocess_mode="livesum",
)
MEMORY_RESERVED = Gauge(
    "pixelpipe_memory_reserved_bytes",
    "Estimated peak memory of the pipeline runs admitted now (see MEMORY_BUDGET)",
    multiprocess_mode="livesum",
)
CACHE_BYTES = Gauge(
    "pixelpipe_cache_bytes",
    "Bytes held by this worker's in-process caches (result, source)",
    ["tier"],
    multiprocess_mode="liveall",
)
RESULT_CACHE_BYTES = CACHE_BYTES.labels(tier="result")
SOURCE_CACHE_BYTES = CACHE_BYTES.labels(tier="source")
MEMORY_RELEASES = Counter(
    "pixelpipe_memory_releases",
    "Times a worker gave its freed memory back to the OS: after running no job for a second, "
    "or as a job ended with the worker over its ceiling (size at start, caches, memory budget)",
)
LIBVIPS_WARNINGS = Counter(
    "pixelpipe_libvips_warnings",
    "Warnings libvips gave about images (each kind is logged at most once per 10 minutes)",
)
RESULT_STORE = Counter(
    "pixelpipe_result_store",
    "Result-store (RESULT_STORAGE) operations by outcome: hit, miss, read_error on reads; "
    "written, write_error, dropped (queue full or store resting) on writes",
    ["outcome"],
)
SOURCE_ERRORS = Counter(
    "pixelpipe_source_errors",
    "Sources that could not be used, by kind (not_found, timeout, too_large, not_an_image, ...)",
    ["kind"],
)


# Every metric, in the order the README's table lists them (generated from here).
METRICS: tuple[Counter | Gauge | Histogram, ...] = (
    REQUESTS,
    REQUEST_SECONDS,
    PROCESSING_SECONDS,
    FETCH_SECONDS,
    CACHE_LOOKUPS,
    SOURCE_BYTES,
    RESPONSE_BYTES,
    JOBS_RUNNING,
    JOBS_QUEUED,
    MEMORY_RESERVED,
    CACHE_BYTES,
    MEMORY_RELEASES,
    LIBVIPS_WARNINGS,
    RESULT_STORE,
    SOURCE_ERRORS,
)


def exposed_name(metric: Counter | Gauge | Histogram) -> str:
    """The name a scrape shows: prometheus-client adds `_total` to counters."""
    name: str = metric._name  # type: ignore[union-attr]
    return f"{name}_total" if isinstance(metric, Counter) else name


def metrics_table() -> str:
    """The README's metrics table, made from `METRICS` so the two cannot drift."""
    rows = ["| metric | type | labels | what |", "|---|---|---|---|"]
    for metric in METRICS:
        labels = ", ".join(f"`{label}`" for label in metric._labelnames)  # type: ignore[union-attr]
        kind = type(metric).__name__.lower()
        text = metric._documentation  # type: ignore[union-attr]
        rows.append(f"| `{exposed_name(metric)}` | {kind} | {labels} | {text} |")
    return "\n".join(rows)


class PendingMetrics:
    """Counts and samples from the event loop's thread, applied once per loop turn.

    In multi-worker mode every increment takes a lock and writes to a memory
    map (1.5 µs; a histogram sample 3 µs): on a cache hit that was a sixth of
    the whole answer. Here a request adds to plain ints and a list, and one
    callback per event-loop turn (after every request finished in that turn)
    applies the sums; a scrape applies what is pending first. The loop's
    thread is the only user, so nothing here needs a lock.
    """

    def __init__(self) -> None:
        self.counts: dict[Any, float] = {}
        self.samples: dict[Histogram, list[float]] = {}
        self.scheduled = False

    def inc(self, child: Any, amount: float = 1) -> None:
        self.counts[child] = self.counts.get(child, 0) + amount
        self._schedule()

    def request(
        self, counter: Any, histogram: Histogram, seconds: float, sent: Any, size: int
    ) -> None:
        """One answered request: its count, duration and bytes, in one call (the hot path)."""
        counts = self.counts
        counts[counter] = counts.get(counter, 0) + 1
        counts[sent] = counts.get(sent, 0) + size
        self.samples.setdefault(histogram, []).append(seconds)
        if not self.scheduled:
            self._schedule()

    def _schedule(self) -> None:
        if self.scheduled:
            return
        try:
            asyncio.get_running_loop().call_soon(self.apply)
        except RuntimeError:  # no loop to defer to
            self.apply()
            return
        self.scheduled = True

    def apply(self) -> None:
        self.scheduled = False
        counts, self.counts = self.counts, {}
        for child, amount in counts.items():
            child.inc(amount)
        samples, self.samples = self.samples, {}
        for histogram, values in samples.items():
            _observe_many(histogram, values)


def _observe_many(histogram: Histogram, values: list[float]) -> None:
    """histogram.observe() for each value, with one write per bucket touched.

    prometheus-client has no batch API; this adds to the same per-bucket and
    sum values observe() does (a value goes to the first bucket whose upper
    bound it does not exceed; the exposition makes the counts cumulative).
    """
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect.bisect_left(bounds, value)] += 1
    histogram._sum.inc(sum(values))
    for index, count in enumerate(counts):
        if count:
            histogram._buckets[index].inc(count)


PENDING = PendingMetrics()


def error_kind(error: BaseException) -> str:
    """`SourceTooLarge` -> "source_too_large", `URITooLong` -> "uri_too_long"."""
    name = type(error).__name__
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


@contextmanager
def running_job() -> Iterator[None]:
    JOBS_RUNNING.inc()
    try:
        yield
    finally:
        JOBS_RUNNING.dec()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets: this process's metrics, or every worker's added up."""
    PENDING.apply()
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """Drop a finished worker's live gauges (its counters stay in the sums)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)
