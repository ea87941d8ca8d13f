"""Which malloc the server runs on, chosen before the process starts.

libvips allocates and frees large pixel buffers from many threads. glibc's
malloc gives each thread its own arena (up to 8 per core) and rarely hands
freed memory back: under load a worker's RSS grew to 2-3x what its images
held, and stayed there (BENCHMARKS.md, "Memory"). jemalloc returns dirty
pages on a timer and keeps few arenas; where it is not installed, glibc with
two arenas comes close. Both must be in place before the first allocation,
so `pixelpipe serve` re-executes itself once with the chosen environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

APPLIED = "PIXELPIPE_ALLOCATOR_APPLIED"

# Debian's libjemalloc2 on the architectures we build for, and a local build.
JEMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
)

# No purging on a timer: freed pages stay while the worker works and go back
# when it goes quiet (proxy.memory_release); decay cost ~2 ms of CPU per cold
# request in page faults whatever its time. One arena: with jemalloc's 4 per
# core, the threads libaom starts for each encode landed on other arenas than
# the last encode's, each arena kept the pages freed in it, and a job of
# several encodes (max_bytes) held 2-3x what one encode needs: 193 MiB
# against 61 with one arena, for no measurable CPU (BENCHMARKS.md, "Memory").
JEMALLOC_CONF = "background_thread:false,dirty_decay_ms:-1,muzzy_decay_ms:-1,narenas:1"

GLIBC_ARENAS = "2"


def find_jemalloc(candidates: tuple[str, ...] = JEMALLOC_PATHS) -> str | None:
    return next((path for path in candidates if Path(path).is_file()), None)


def allocator_environment(
    choice: str, environ: Mapping[str, str], jemalloc: str | None
) -> tuple[str, dict[str, str]]:
    """The allocator's name and the environment to run the server in.

    `choice` is auto, jemalloc or glibc. Variables the operator set
    (LD_PRELOAD, MALLOC_CONF, MALLOC_ARENA_MAX) are kept as given.
    """
    env = dict(environ)
    env[APPLIED] = "1"
    if choice in ("auto", "jemalloc") and jemalloc:
        preload = env.get("LD_PRELOAD", "")
        if jemalloc not in preload.split():
            env["LD_PRELOAD"] = f"{jemalloc} {preload}".strip()
        env.setdefault("MALLOC_CONF", JEMALLOC_CONF)
        return "jemalloc", env
    env.setdefault("MALLOC_ARENA_MAX", GLIBC_ARENAS)
    return f"glibc (MALLOC_ARENA_MAX={env['MALLOC_ARENA_MAX']})", env


def exec_with_allocator(choice: str, argv: list[str]) -> None:
    """Re-execute `python -m proxy ARGV` once under the chosen allocator.

    Returns at once when this process is that re-execution; otherwise the
    process image is replaced and it does not return.
    """
    if os.environ.get(APPLIED):
        return
    name, env = allocator_environment(choice, os.environ, find_jemalloc())
    if choice == "jemalloc" and name != "jemalloc":
        print(
            "pixelpipe: PIXELPIPE_ALLOCATOR=jemalloc but libjemalloc.so.2 is not installed "
            "(Debian: apt-get install libjemalloc2); using glibc with 2 arenas",
            file=sys.stderr,
        )
    os.execve(sys.executable, [sys.executable, "-m", "proxy", *argv], env)


def loaded_allocator(maps: str = "/proc/self/maps") -> str:
    """What this process really runs on: jemalloc if its library is mapped."""
    try:
        text = Path(maps).read_text()
    except OSError:
        return "unknown"
    return "jemalloc" if "libjemalloc" in text else "glibc"
