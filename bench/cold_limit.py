"""The cold W1 limit: libvips doing W1's work in-process, one thread each, in N processes.

    .venv/bin/python bench/cold_limit.py SECONDS PROCESSES SOURCE...

Each process runs pixelpipe's own pipeline (`process_image`, W1's options:
300x300 fill JPEG q80) over the sources' bytes, already in memory, with
libvips on one thread (VIPS_CONCURRENCY=1), for SECONDS; no HTTP, no fetch.
Prints one JSON line: operations per second over all processes, and CPU
seconds per operation. bench/runtime.py's cold part runs it beside pixelpipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

W1 = "/unsafe/rs:fill:300:300/q:80/plain/local:///x@jpg"


def one_process(seconds: float, sources: list[str]) -> dict[str, float]:
    import pyvips

    from bench.run import pipeline_call

    pyvips.cache_set_max(0)
    work = pipeline_call(W1)
    data = [Path(s).read_bytes() for s in sources]
    work(data[0])  # loaded and warm
    done, cpu, started = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - started < seconds:
        work(data[done % len(data)])
        done += 1
    return {"done": done, "cpu": time.process_time() - cpu, "wall": time.perf_counter() - started}


def main() -> int:
    seconds, processes, sources = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    if processes == 0:  # a child
        print(json.dumps(one_process(seconds, sources)))
        return 0
    env = os.environ | {"VIPS_CONCURRENCY": "1"}
    children = [
        subprocess.Popen(
            [sys.executable, __file__, str(seconds), "0", *sources],
            env=env,
            stdout=subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    results = [
        json.loads(child.communicate()[0].decode().strip().splitlines()[-1]) for child in children
    ]
    done = sum(r["done"] for r in results)
    print(
        json.dumps(
            {
                "rate": sum(r["done"] / r["wall"] for r in results),
                "cpu_ms_per_op": 1000 * sum(r["cpu"] for r in results) / done,
                "done": done,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
