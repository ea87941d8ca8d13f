"""Freed memory handed back to the OS when a worker goes quiet, not while it works.

libvips allocates and frees megabytes per image. An allocator that returns
freed pages on a timer while requests keep coming (jemalloc's decay) makes
the next image fault them in again: measured under cold W1, 1,950-2,000 page
faults per request with any decay time from 1 to 30 s against 250-500 with
decay off, and about 2 ms of CPU per request (BENCHMARKS.md). So the pages
stay with the process while it works, and go back once it has run no job
for `quiet_seconds`: the RSS after a burst falls as it did with decay.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import math
import os
import time
from collections.abc import Callable

from proxy.monitoring import MEMORY_RELEASES

log = logging.getLogger("pixelpipe")

# jemalloc's MALLCTL_ARENAS_ALL: "arena.<i>.purge" for every arena at once.
_ALL_ARENAS = 4096


def releaser(allocator: str) -> Callable[[], None] | None:
    """How this process gives its freed pages back now (None: it cannot say)."""
    try:
        if allocator == "jemalloc":
            mallctl = ctypes.CDLL(None).mallctl  # the preloaded library's symbol
            name = f"arena.{_ALL_ARENAS}.purge".encode()
            return lambda: mallctl(name, None, None, None, ctypes.c_size_t(0))
        if allocator == "glibc":
            trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
            return lambda: trim(ctypes.c_size_t(0))
    except (OSError, AttributeError):
        log.warning("cannot release freed memory on %s: pages stay with the process", allocator)
    return None


class IdleRelease:
    """Calls `release` (in a thread) once no job has run for `quiet_seconds`.

    `idle()` is called on the event loop whenever the last running job ends;
    `busy()` says whether a job runs or waits now.
    """

    def __init__(
        self,
        release: Callable[[], None] | None,
        busy: Callable[[], bool],
        quiet_seconds: float = 1.0,
    ) -> None:
        self._release = release
        self._busy = busy
        self._quiet = quiet_seconds
        self._last_idle = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.releases = 0

    def idle(self) -> None:
        if self._release is None:
            return
        self._last_idle = time.monotonic()
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._quiet, self._check)

    def _check(self) -> None:
        self._timer = None
        if self._busy():
            return  # the job that ends next calls idle() again
        left = self._quiet - (time.monotonic() - self._last_idle)
        loop = asyncio.get_running_loop()
        if left > 0:
            self._timer = loop.call_later(left, self._check)
            return
        self.releases += 1
        release_in_thread(self._release)  # type: ignore[arg-type]


def release_in_thread(release: Callable[[], None]) -> None:
    """`release` on the running loop's executor, counted (the event loop never waits)."""
    MEMORY_RELEASES.inc()
    with contextlib.suppress(RuntimeError):  # the loop's executor is shutting down
        asyncio.get_running_loop().run_in_executor(None, release)


def resident_bytes(statm: str = "/proc/self/statm") -> int:
    """This process's resident memory now (0 where /proc cannot say).

    Read at every job's end (CeilingRelease), on the event loop: three system
    calls on raw bytes, not open()'s text file (eight calls and a decoder;
    12 against 6 us a read here, and a tenth of the loop's GIL-holding samples
    under W1: BENCHMARKS.md, "Where a W1 request's CPU goes")."""
    try:
        descriptor = os.open(statm, os.O_RDONLY)
        try:
            numbers = os.read(descriptor, 256)
        finally:
            os.close(descriptor)
        return int(numbers.split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class CeilingRelease:
    """Calls `release` (in a thread) when a job ends with the process's resident
    memory over `ceiling_bytes`, at most once every `interval` seconds.

    IdleRelease never runs in a worker that never rests, and without decay the
    pages one job freed wait for the next: jobs of many sizes, one after
    another, took a worker to 1.4-3.0 GB with a 192 MiB budget
    (bench/fuzz_options.py, BENCHMARKS.md). Giving back only what is free,
    only past the ceiling, keeps the pages a steady load reuses.
    """

    def __init__(
        self,
        release: Callable[[], None] | None,
        ceiling_bytes: int,
        resident: Callable[[], int] = resident_bytes,
        interval: float = 1.0,
    ) -> None:
        self._release = release
        self._ceiling = ceiling_bytes
        self._resident = resident
        self._interval = interval
        self._last = -math.inf
        self.releases = 0

    def job_ended(self) -> None:
        if self._release is None:
            return
        now = time.monotonic()
        if now - self._last < self._interval or self._resident() <= self._ceiling:
            return
        self._last = now
        self.releases += 1
        release_in_thread(self._release)
