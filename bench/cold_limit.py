"""A cold workload's limit: pixelpipe's pipeline in N processes, one libvips thread each.

    .venv/bin/python bench/cold_limit.py SECONDS PROCESSES SOURCE... [--path PATH]

Each process runs pixelpipe's own pipeline (`process_image`) with the options
of PATH (a request path; by default W1's: 300x300 fill JPEG q80) over the
sources' bytes, already in memory, with libvips on one thread
(VIPS_CONCURRENCY=1), for SECONDS; no HTTP, no fetch. Prints one JSON line:
operations per second over all processes, and CPU seconds per operation.
bench/runtime.py's cold part and bench/run.py's W1-W3 run it beside pixelpipe.

This is the best shape measured for the loop: one process per core, each on
the malloc `pixelpipe serve` chooses (jemalloc without decay where installed;
`PIXELPIPE_ALLOCATOR=glibc` for glibc with two arenas). On glibc's defaults
W1's loop ran 58.5 op/s against 80.3, and as threads of one process (what
bench/run.py measured before) 55.6 (BENCHMARKS.md, "The limit's allocator").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

W1 = "/unsafe/rs:fill:300:300/q:80/plain/local:///x@jpg"


def one_process(seconds: float, sources: list[str], path: str) -> dict[str, Any]:
    import pyvips

    from bench.run import pipeline_call

    pyvips.cache_set_max(0)
    work = pipeline_call(path)
    data = [Path(s).read_bytes() for s in sources]
    work(data[0])  # loaded and warm
    durations: list[float] = []
    cpu, started = time.process_time(), time.perf_counter()
    while time.perf_counter() - started < seconds:
        begun = time.perf_counter()
        work(data[len(durations) % len(data)])
        durations.append(time.perf_counter() - begun)
    return {
        "done": len(durations),
        "cpu": time.process_time() - cpu,
        "wall": time.perf_counter() - started,
        "durations": durations,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("seconds", type=float)
    parser.add_argument("processes", type=int, help="0: be one of them")
    parser.add_argument("sources", nargs="+")
    parser.add_argument("--path", default=W1, help="the request path whose options to run")
    args = parser.parse_args()
    if args.processes == 0:
        print(json.dumps(one_process(args.seconds, args.sources, args.path)))
        return 0
    from bench.job_memory import child_environment

    env = child_environment() | {"VIPS_CONCURRENCY": "1"}
    children = [
        subprocess.Popen(
            [sys.executable, __file__, str(args.seconds), "0", *args.sources, "--path", args.path],
            env=env,
            stdout=subprocess.PIPE,
        )
        for _ in range(args.processes)
    ]
    results = [
        json.loads(child.communicate()[0].decode().strip().splitlines()[-1]) for child in children
    ]
    done = sum(r["done"] for r in results)
    durations = sorted(d for r in results for d in r["durations"])
    print(
        json.dumps(
            {
                "rate": sum(r["done"] / r["wall"] for r in results),
                "cpu_ms_per_op": 1000 * sum(r["cpu"] for r in results) / done,
                "done": done,
                "p50_us": 1e6 * durations[len(durations) // 2],
                "p99_us": 1e6 * durations[int(len(durations) * 0.99)],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
