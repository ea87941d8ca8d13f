"""Cold W1 at 32 connections for several pixelpipe configurations and the limit, alternating.

    .venv/bin/python bench/cold_variants.py --corpus ../shared/corpus \
        --variant default= --variant vips1=VIPS_CONCURRENCY=1 [--rounds 3 --seconds 8]

Each variant is `label=NAME=VALUE,NAME=VALUE` (nothing after the first `=`:
the defaults) added to `pixelpipe serve`'s environment (2 workers). Each
round runs every variant and the limit (bench/cold_limit.py: the same
pipeline in two single-threaded processes, no HTTP) one after another on
fresh cachebusters, so the machine's drift falls on all of them alike. For
each: req/s, the ratio to the limit of the same round, the workers' CPU ms per
request, and the rate of each round (to see whether it falls as a server
ages). Used to choose between configurations for issue 26; bench/runtime.py
keeps the published cold measurement. `--hits`: cache hits of warmed paths
instead (with `PYTHONPATH=<worktree>` as a variant, two versions of the code
side by side). `--origins nginx,python`: every variant against each origin
(bench/run.py's start_origin), to see what the source server takes from the
two cores. `--sources warm,cold`: warm (the default) names each corpus image
by one URL, so a worker downloads it once and its source cache serves the
rest, as for the widths of a srcset; cold gives every request's source a query
of its own, so every request downloads its source (as a server without a
source cache would). Beside each rate: the workers' CPU per request, the
origin's and wrk's (they share the two cores), and the limit's CPU per
operation.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402

from bench.job_memory import child_environment  # noqa: E402
from bench.run import (  # noqa: E402
    children,
    cold_limit,
    ensure_wrk,
    free_port,
    run_wrk,
    server_env,
    start,
    start_origin,
    stop,
)
from bench.runtime import (  # noqa: E402
    big_sources,
    cold_paths,
    cpu_seconds,
    start_pixelpipe,
    worker_pids,
)

W1 = "/rs:fill:300:300/q:80/cb:{cb}/plain/{source}@jpg"
BARE_LAUNCH = """
import sys, uvicorn
from proxy.workers import serve_workers
config = uvicorn.Config("bare_pipeline_app:app", port=int(sys.argv[1]), workers=2,
                        http="httptools", loop="uvloop", server_header=False,
                        log_level="warning", access_log=False)
serve_workers(config, 2, True)
"""


def start_bare_pipeline(sources: list[Path]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    # On the malloc pixelpipe serve runs on, as the limit is (bench/cold_limit.py).
    env = child_environment() | {
        "BARE_SOURCES": ":".join(str(s) for s in sources),
        "PYTHONPATH": f"{HERE}:{HERE.parent}",
    }
    base = f"http://127.0.0.1:{port}"
    process = start(
        [sys.executable, "-c", BARE_LAUNCH, str(port)], env, f"{base}/x/{sources[0].name}"
    )
    while len(worker_pids(process.pid)) < 2:
        time.sleep(0.1)
    return process, base


def children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk runs as one)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    # A comma starts the next pair only before a NAME=: jemalloc's MALLOC_CONF
    # has commas of its own (`MALLOC_CONF=narenas:1,dirty_decay_ms:-1`).
    label, _, rest = text.partition("=")
    pairs = [pair.split("=", 1) for pair in re.split(r",(?=[A-Z_][A-Z0-9_]*=)", rest) if pair]
    return label, {name: value for name, value in pairs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--hits", action="store_true", help="cache hits instead: the same warmed paths each round"
    )
    parser.add_argument(
        "--bare",
        action="store_true",
        help="also a bare Starlette app running the pipeline (bench/bare_pipeline_app.py)",
    )
    parser.add_argument("--origins", default="nginx", help="source servers: nginx, python")
    parser.add_argument(
        "--sources", default="warm", help="warm, cold: one URL per source, or one per request"
    )
    parser.add_argument(
        "--options",
        help="processing options instead of W1's, e.g. rs:fill:300:300/g:sm/q:80 "
        "(the limit stays W1's: its ratio then only shows the machine's drift)",
    )
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    template = f"/{args.options}/cb:{{cb}}/plain/{{source}}@jpg" if args.options else W1
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp)
        big = big_sources(images, args.corpus)
        kinds = args.origins.split(",")
        temperatures = args.sources.split(",")
        origins = {kind: start_origin(images, kind) for kind in kinds}
        servers = {label: start_pixelpipe(server_env() | env) for label, env in variants}
        # One run per (variant, origin, sources), named by what varies.
        runs = [
            (
                "/".join(
                    [label]
                    + ([kind] if len(kinds) > 1 else [])
                    + ([f"sources {heat}"] if len(temperatures) > 1 else [])
                ),
                label,
                kind,
                heat,
            )
            for label, _ in variants
            for kind in kinds
            for heat in temperatures
        ]
        if args.bare:  # reads its sources from memory: no origin
            servers["bare"] = start_bare_pipeline([images / name for name in big])
            runs.append(("bare", "bare", kinds[0], "warm"))
        names = [name for name, _, _, _ in runs]
        rates: dict[str, list[float]] = {name: [] for name in names}
        ratios: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        beside: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        limits: list[float] = []
        limit_cpu: list[float] = []
        try:
            for r in range(args.rounds):
                measured = cold_limit([images / n for n in big], args.seconds, 2)
                limit = measured["rate"]
                limits.append(limit)
                limit_cpu.append(measured["cpu_ms_per_op"])
                for name, label, kind, heat in runs:
                    process, base = servers[label]
                    origin_process, origin = origins[kind]
                    workers = worker_pids(process.pid)
                    origin_pids = [origin_process.pid, *children(origin_process.pid)]
                    if args.hits:
                        paths = cold_paths(template, big, origin, "hits", len(big))
                        for path in paths:  # warm: every later request is a hit
                            httpx.get(base + path, timeout=60)
                    else:
                        run_id = f"{label}-{kind}-{heat}-r{r}"
                        paths = cold_paths(template, big, origin, run_id, 20_000, heat == "cold")
                    before = sum(cpu_seconds(pid) for pid in workers)
                    before_origin = sum(cpu_seconds(pid) for pid in origin_pids)
                    before_wrk = children_cpu()
                    run = run_wrk(wrk, base, paths, args.connections, args.seconds)
                    done = max(run["requests"], 1)
                    used = sum(cpu_seconds(pid) for pid in workers) - before
                    served = sum(cpu_seconds(pid) for pid in origin_pids) - before_origin
                    rates[name].append(run["rate"])
                    ratios[name].append(run["rate"] / limit)
                    cpu[name].append(1000 * used / done)
                    beside[name].append(
                        (1000 * served / done, 1000 * (children_cpu() - before_wrk) / done)
                    )
                    errors = run["non_2xx"] + run["socket_errors"]
                    print(
                        f"round {r} {name}: {run['rate']:.1f} req/s, limit {limit:.1f}"
                        + (f", {errors} ERRORS" if errors else "")
                    )
        finally:
            for process, _ in servers.values():
                stop(process)
            for process, _ in origins.values():
                stop(process)
    print(f"\nlimit op/s per round: {', '.join(f'{x:.1f}' for x in limits)}")
    print(f"limit CPU ms/op, median: {statistics.median(limit_cpu):.1f}\n")
    print(
        "| variant | req/s | ratio to limit | per round | CPU ms/request (workers) | origin | wrk |"
    )
    print("|---|---:|---:|---|---:|---:|---:|")
    for name in names:
        origin_ms = statistics.median(o for o, _ in beside[name])
        wrk_ms = statistics.median(w for _, w in beside[name])
        print(
            f"| {name} | {statistics.median(rates[name]):.1f} "
            f"| **{statistics.median(ratios[name]):.2f}** "
            f"| {', '.join(f'{x:.1f}' for x in rates[name])} "
            f"| {statistics.median(cpu[name]):.1f} | {origin_ms:.2f} | {wrk_ms:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
