"""What a source fetch costs: CPU per fetch for the origin and for pixelpipe's client.

    .venv/bin/python bench/origin_cost.py --corpus ../shared/corpus [--fetches 300] [--rounds 5]

The origin shares the machine's cores with the server under test, so every
millisecond it spends is taken from what a load run measures (the in-process
limit fetches nothing). For each origin (`nginx`, Python's `http.server`) this
fetches the corpus' 2560x1600 JPEGs in turn through pixelpipe's own sources
(its httpx client and address policy, on uvloop, as a worker fetches), once
with the client's connections on asyncio's transports (`proxy/sources/streams.py`,
what the server uses) and once on httpcore's AnyIO backend (what it used
before), alternating round by round. It reports the origin's CPU per fetch
(all its processes) and the client's, medians of the rounds. It runs on the
server's allocator (`bench/job_memory.child_environment`). Only loopback is used.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import httpcore  # noqa: E402
import httpx  # noqa: E402
import uvloop  # noqa: E402

from bench.job_memory import child_environment  # noqa: E402
from bench.run import children, start_origin, stop  # noqa: E402
from bench.runtime import big_sources, cpu_seconds  # noqa: E402
from proxy.app import address_policy, build_client, build_sources  # noqa: E402
from proxy.settings import Settings  # noqa: E402
from proxy.sources.network import PolicyNetworkBackend, PolicyTransport  # noqa: E402

BACKENDS = ("asyncio", "anyio")
ON_ALLOCATOR = "PIXELPIPE_BENCH_ON_ALLOCATOR"


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client_for(backend: str, settings: Settings) -> httpx.AsyncClient:
    if backend == "asyncio":
        return build_client(settings)
    # build_client's client with httpcore's own backend for asyncio under the policy.
    inner = PolicyNetworkBackend(address_policy(settings), inner=httpcore.AnyIOBackend())
    return httpx.AsyncClient(
        transport=PolicyTransport(inner),
        timeout=httpx.Timeout(settings.download_timeout or None, connect=settings.connect_timeout),
        follow_redirects=False,
        headers={"User-Agent": settings.user_agent},
    )


def measure(
    kind: str, images: Path, names: list[str], fetches: int, rounds: int
) -> dict[str, tuple[list[float], list[float]]]:
    """{backend: (origin CPU ms per fetch, client CPU ms per fetch), one per round}."""
    process, base = start_origin(images, kind)
    results: dict[str, tuple[list[float], list[float]]] = {b: ([], []) for b in BACKENDS}
    settings = Settings(allow_loopback_source_addresses=True)

    async def run(pids: list[int]) -> None:
        clients = {backend: client_for(backend, settings) for backend in BACKENDS}
        try:
            sources = {b: build_sources(settings, c) for b, c in clients.items()}
            for source in sources.values():
                await source.fetch(f"{base}/{names[0]}")
            for _ in range(rounds):
                for backend, source in sources.items():
                    before, mine = sum(cpu_seconds(p) for p in pids), own_cpu()
                    for i in range(fetches):
                        await source.fetch(f"{base}/{names[i % len(names)]}")
                    origin_cpu = sum(cpu_seconds(p) for p in pids) - before
                    results[backend][0].append(1000 * origin_cpu / fetches)
                    results[backend][1].append(1000 * (own_cpu() - mine) / fetches)
        finally:
            for client in clients.values():
                await client.aclose()

    try:
        uvloop.run(run([process.pid, *children(process.pid)]))
    finally:
        stop(process)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--fetches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not os.environ.get(ON_ALLOCATOR):
        # Again on the server's malloc: what a fetch allocates costs what it costs there.
        env = child_environment() | {ON_ALLOCATOR: "1"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp)
        names = big_sources(images, args.corpus)
        mean_kb = statistics.mean((images / n).stat().st_size for n in names) / 1000
        print(f"{len(names)} sources, {mean_kb:.0f} KB mean, {args.fetches} fetches per round")
        print(f"malloc: {os.environ.get('LD_PRELOAD') or 'glibc'}\n")
        print("| origin | streams | origin CPU ms/fetch | client CPU ms/fetch | client per round |")
        print("|---|---|---:|---:|---|")
        for kind in ("nginx", "python"):
            for backend, (origin, client) in measure(
                kind, images, names, args.fetches, args.rounds
            ).items():
                rounds = ", ".join(f"{ms:.2f}" for ms in client)
                print(
                    f"| {kind} | {backend} | {statistics.median(origin):.2f} | "
                    f"{statistics.median(client):.2f} | {rounds} |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
