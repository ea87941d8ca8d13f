"""What a benchmark's source server costs: CPU per fetch for each origin bench/run.py can start.

    .venv/bin/python bench/origin_cost.py --corpus ../shared/corpus [--fetches 300]

The origin shares the machine's cores with the server under test, so every
millisecond it spends is taken from what a load run measures (the in-process
limit fetches nothing). For each origin (`nginx`, Python's `http.server`) this
fetches the corpus' 2560x1600 JPEGs in turn through pixelpipe's own sources
(its httpx client and address policy, on uvloop, as a worker fetches), and
reports the origin's CPU per fetch (all its processes) and the client's,
medians of 3 rounds. Only loopback is used.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import uvloop  # noqa: E402

from bench.run import children, start_origin, stop  # noqa: E402
from bench.runtime import big_sources, cpu_seconds  # noqa: E402
from proxy.app import build_client, build_sources  # noqa: E402
from proxy.settings import Settings  # noqa: E402


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(kind: str, images: Path, names: list[str], fetches: int) -> tuple[float, float]:
    """(origin CPU ms, client CPU ms) per fetch, medians of 3 rounds."""
    process, base = start_origin(images, kind)
    origin_ms: list[float] = []
    client_ms: list[float] = []
    settings = Settings(allow_loopback_source_addresses=True)

    async def rounds(pids: list[int]) -> None:
        async with build_client(settings) as client:
            sources = build_sources(settings, client)
            await sources.fetch(f"{base}/{names[0]}")
            for _ in range(3):
                before, mine = sum(cpu_seconds(p) for p in pids), own_cpu()
                for i in range(fetches):
                    await sources.fetch(f"{base}/{names[i % len(names)]}")
                origin_ms.append(1000 * (sum(cpu_seconds(p) for p in pids) - before) / fetches)
                client_ms.append(1000 * (own_cpu() - mine) / fetches)

    try:
        uvloop.run(rounds([process.pid, *children(process.pid)]))
    finally:
        stop(process)
    return statistics.median(origin_ms), statistics.median(client_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--fetches", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp)
        names = big_sources(images, args.corpus)
        mean_kb = statistics.mean((images / n).stat().st_size for n in names) / 1000
        print(f"{len(names)} sources, {mean_kb:.0f} KB mean, {args.fetches} fetches per round\n")
        print("| origin | origin CPU ms/fetch | pixelpipe's fetch, CPU ms |")
        print("|---|---:|---:|")
        for kind in ("nginx", "python"):
            origin, client = measure(kind, images, names, args.fetches)
            print(f"| {kind} | {origin:.2f} | {client:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
