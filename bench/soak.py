"""The soak: minutes of traffic with faults injected, every answer judged (issue 17).

    .venv/bin/python bench/soak.py [--corpus ../shared/corpus] [--minutes 10] [--out docs]

On loopback: a real origin (tests.servers.Origin) serving the corpus, a real
redis-server, and `pixelpipe serve` with 2 workers and Redis as its shared
cache. Traffic (tests.soak.run_load, every answer judged: a 200 must decode to
the last pixel as the type it declares):

- a Zipf mix over 2,000 URLs: the corpus photos at sizes 200-1200, fit and
  fill, JPEG/WebP/AVIF/PNG, plain, blurred, sharpened, q:60 and q:auto; 10%
  of requests for 200 URLs over the two 5120x2880 sources; 5% bad inputs
  (truncated, corrupt, an HTML page, a file over MAX_SRC_FILE_SIZE, an image
  over MAX_SRC_RESOLUTION); 10% of repeats conditional (If-None-Match);
- paced at 70% of the capacity measured first (45 s, 16 connections, closed
  loop, the same mix with another cachebuster), over 32 connections.

Faults: one worker SIGKILLed every 60 s (always the youngest, so one worker
lives through the whole soak and shows any leak); Redis stopped for 30 s at
2.5 minutes and started again empty; the origin fails 5% of downloads at
random (503, reset, truncated with and without a length, drip-fed); the origin
takes 2 s per answer for a minute from minute 6.

Sampled every 2 s per worker: RSS, open file descriptors, sockets. Prints the
report (markdown) and writes the charts soak-rss.svg, soak-fds.svg and
soak-latency.svg to --out. Every source URL carries this run's cachebuster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import pickle
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import pyvips
import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.run import RUN, free_port, server_env, sign  # noqa: E402
from bench.svg_chart import line_chart  # noqa: E402
from tests.servers import Origin, RedisServer  # noqa: E402
from tests.soak import (  # noqa: E402
    LoadResult,
    Outcome,
    Request,
    open_fds,
    pixelpipe_process,
    run_load,
    worker_pids,
    zipf_weights,
)

PIXELPIPE = str(Path(sys.executable).parent / "pixelpipe")
SIZES = (200, 300, 400, 600, 800, 1200)
EFFECTS = ("", "bl:2/", "sh:0.5/", "q:60/", "q:auto/")
FORMATS = ("jpg", "webp", "avif", "png")
MAX_SRC_FILE_SIZE = 12 * 1024 * 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else math.nan


class Sources:
    """What the origin serves: photos, large photos and bad inputs, by URL."""

    def __init__(self, origin: Origin, corpus: Path) -> None:
        self.photos: list[str] = []
        self.large: list[str] = []
        self.bad: list[tuple[str, str]] = []
        for path in sorted(corpus.iterdir()):
            if path.suffix.lower() not in (".jpg", ".png"):
                continue
            kind = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
            url = origin.add(f"/corpus/{path.name}", path.read_bytes(), kind)
            header = pyvips.Image.new_from_file(str(path))
            (self.large if header.width * header.height >= 5120 * 2880 else self.photos).append(url)
        whole = (corpus / "Autumn.jpg").read_bytes()
        noise = random.Random(RUN).randbytes
        over_pixels = pyvips.Image.black(6000, 3000).jpegsave_buffer()  # 18 MP > 16.8
        padded = whole + noise(MAX_SRC_FILE_SIZE)  # a JPEG, then junk: over the byte limit
        self.bad = [
            ("truncated", origin.add("/bad/truncated.jpg", whole[: len(whole) // 2])),
            ("corrupt", origin.add("/bad/corrupt.jpg", b"\xff\xd8\xff\xe0" + noise(50_000))),
            ("wrong-type", origin.add("/bad/page.jpg", b"<html>not an image</html>", "text/html")),
            ("oversized-bytes", origin.add("/bad/padded.jpg", padded)),
            ("oversized-pixels", origin.add("/bad/wide.jpg", over_pixels)),
        ]


def url_space(sources: Sources, seed: int) -> tuple[list[str], list[str]]:
    """2,000 distinct paths: 1,800 over the photos, 200 over the large sources (shuffled ranks).

    Each path names its source with a query of its own, so a path's first
    request downloads (the origin's faults then meet real downloads, not only
    the first of each photo).
    """
    rng = random.Random(seed)

    def paths(urls: list[str], count: int) -> list[str]:
        every = [
            f"/rs:{mode}:{size}:{size if mode == 'fit' else size * 2 // 3}/{effect}plain/{url}"
            for url in urls
            for size in SIZES
            for mode in ("fit", "fill")
            for effect in EFFECTS
        ]
        chosen = rng.sample([(p, f) for p in every for f in FORMATS], count)
        return [f"{p}%3Frun={RUN}-{i}@{f}" for i, (p, f) in enumerate(chosen)]

    return paths(sources.photos, 1800), paths(sources.large, 200)


def picker(sources: Sources, photos: list[str], large: list[str]):
    photo_weights, large_weights = zipf_weights(len(photos)), zipf_weights(len(large))

    def pick(rng: random.Random) -> Request:
        roll = rng.random()
        if roll < 0.05:
            kind, url = rng.choice(sources.bad)
            return Request(sign(f"/rs:fit:600:600/plain/{url}%3Frun={RUN}@jpg"), f"bad:{kind}")
        if roll < 0.15:
            return Request(sign(rng.choices(large, large_weights)[0]), "large")
        return Request(sign(rng.choices(photos, photo_weights)[0]), "good")

    return pick


def rss_kib(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


class Sampler:
    """Per worker, every 2 s: (seconds, RSS MB, open fds, sockets)."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self.samples: dict[int, list[tuple[float, float, int, int]]] = defaultdict(list)
        self.workers: list[tuple[float, int]] = []  # (seconds, live workers)
        self.final: list[int] = []  # the workers alive at the end

    async def run(self, began: float, seconds: float) -> None:
        while (now := time.monotonic() - began) < seconds:
            pids = worker_pids(self.parent)
            self.workers.append((now, len(pids)))
            for pid in pids:
                rss = rss_kib(pid)
                if rss is None:  # gone, or a zombie with no memory left
                    continue
                fds, sockets = open_fds(pid)
                self.samples[pid].append((now, rss / 1024, fds, sockets))
            await asyncio.sleep(2)
        self.final = worker_pids(self.parent)


async def soak(
    base: str,
    parent: int,
    origin: Origin,
    redis_server: RedisServer,
    pick: Any,
    rate: float,
    seconds: float,
) -> tuple[LoadResult, Sampler, list[tuple[float, str]], dict[str, Any]]:
    began = time.monotonic()
    sampler = Sampler(parent)
    events: list[tuple[float, str]] = []
    recovery: dict[str, Any] = {"kills": [], "redis": None}
    origin.fault_rate = 0.05
    load = asyncio.create_task(run_load(base, pick, seconds, connections=32, rate=rate, seed=RUN))
    sampling = asyncio.create_task(sampler.run(began, seconds))

    def now() -> float:
        return time.monotonic() - began

    async def at(second: float) -> None:
        await asyncio.sleep(max(0.0, second - now()))

    schedule = sorted(
        [(60.0 * k, "kill") for k in range(1, int(seconds // 60) + 1)]
        + [(150.0, "redis-stop"), (180.0, "redis-start"), (360.0, "slow"), (420.0, "fast")]
    )
    for second, action in schedule:
        if second >= seconds:
            continue
        await at(second)
        events.append((now(), action))
        if action == "kill":
            victim = max(worker_pids(parent))  # the youngest: one worker lives throughout
            os.kill(victim, signal.SIGKILL)
            killed_at = now()
            while len([p for p in worker_pids(parent) if p != victim]) < 2 and now() < seconds:
                await asyncio.sleep(0.05)
            recovery["kills"].append({"at": killed_at, "replaced_after": now() - killed_at})
        elif action == "redis-stop":
            await asyncio.to_thread(redis_server.stop)
        elif action == "redis-start":
            await asyncio.to_thread(redis_server.start)
            started = now()
            client = redis.Redis.from_url(redis_server.url)
            while client.dbsize() == 0 and now() < seconds:
                await asyncio.sleep(0.1)
            recovery["redis"] = {"written_again_after": now() - started}
        elif action == "slow":
            origin.slow = 2.0
        elif action == "fast":
            origin.slow = 0.0
    result = await load
    await sampling
    origin.fault_rate = 0.0
    return result, sampler, events, recovery


def windows(outcomes: list[Outcome], size: float) -> dict[int, list[float]]:
    by_window: dict[int, list[float]] = defaultdict(list)
    for o in outcomes:
        if o.status:
            by_window[int(o.started // size)].append(o.latency)
    return by_window


def report(
    result: LoadResult,
    sampler: Sampler,
    events: list[tuple[float, str]],
    recovery: dict[str, Any],
    faults: dict[str, int],
    capacity: float,
    rate: float,
    seconds: float,
    out: Path,
) -> dict[str, Any]:
    outcomes = result.outcomes
    verdicts = result.verdicts()
    by_kind = Counter((o.kind, o.verdict) for o in outcomes)
    reasons = Counter(
        (o.verdict, o.reason.split(":")[0][:70] if o.verdict == "dropped" else o.reason[:70])
        for o in outcomes
        if o.verdict not in ("ok", "not-modified")
    )
    kills = [e[0] for e in events if e[1] == "kill"]
    dropped_elsewhere = result.dropped_outside(kills)
    survivor = min(sampler.samples, key=lambda pid: sampler.samples[pid][0][0])
    series = sampler.samples[survivor]
    last5 = [s for s in series if s[0] >= seconds - 300]
    head = [s[1] for s in last5 if s[0] < last5[0][0] + 30]
    tail = [s[1] for s in last5 if s[0] >= seconds - 30]
    growth = statistics.mean(tail) / statistics.mean(head) - 1 if head and tail else math.nan
    per_minute = windows(outcomes, 60)
    seen_workers = set(sampler.samples)
    live = set(sampler.final)
    summary = {
        "capacity_rps": capacity,
        "rate_rps": rate,
        "seconds": seconds,
        "requests": len(outcomes),
        "verdicts": dict(verdicts),
        "status_500": sum(o.status == 500 for o in outcomes),
        "broken": [o.reason for o in result.broken()][:20],
        "dropped_not_at_a_kill": len(dropped_elsewhere),
        "kills": len(kills),
        "worker_deaths": len(seen_workers - live),
        "origin_faults": faults,
        "survivor_rss_growth_last_5_min": growth,
        "survivor_fds": (series[0][2], last5[0][2] if last5 else None, series[-1][2]),
        "survivor_sockets": (series[0][3], last5[0][3] if last5 else None, series[-1][3]),
        "recovery": recovery,
        "per_minute": {
            m: (len(v), percentile(v, 0.5), percentile(v, 0.99))
            for m, v in sorted(per_minute.items())
        },
    }
    slow_start = next((e[0] for e in events if e[1] == "slow"), None)
    slow_end = next((e[0] for e in events if e[1] == "fast"), None)
    if slow_start is not None and slow_end is not None:
        per_5s = windows(outcomes, 5)
        before = [x for w, v in per_5s.items() if slow_start - 60 <= w * 5 < slow_start for x in v]
        calm = percentile(before, 0.5)
        back = next(
            (
                w * 5 - slow_end
                for w in sorted(per_5s)
                if w * 5 >= slow_end and percentile(per_5s[w], 0.5) <= 1.5 * calm
            ),
            math.nan,
        )
        summary["recovery"]["slow_origin"] = {
            "p50_before_s": calm,
            "p50_back_within_1.5x_after_s": back,
        }
    markers = [(t, name) for t, name in events]
    line_chart(
        {f"worker {pid}" + (" (survivor)" if pid == survivor else ""): [(s[0], s[1]) for s in v]
         for pid, v in sampler.samples.items() if pid == survivor or len(v) > 5},
        "RSS per worker (MB); a killed worker's line ends, its replacement starts a new one",
        "MB",
        out / "soak-rss.svg",
        markers,
    )  # fmt: skip
    line_chart(
        {
            "survivor: open fds": [(s[0], s[2]) for s in series],
            "survivor: sockets": [(s[0], s[3]) for s in series],
            "all workers: open fds": _summed(sampler, 2),
        },
        "Open file descriptors and sockets",
        "count",
        out / "soak-fds.svg",
        markers,
    )
    per_10s = windows(outcomes, 10)
    line_chart(
        {
            "p50 (10 s windows)": [
                (w * 10, percentile(v, 0.5)) for w, v in sorted(per_10s.items())
            ],
            "p99 (10 s windows)": [
                (w * 10, percentile(v, 0.99)) for w, v in sorted(per_10s.items())
            ],
        },
        "Latency of answered requests (s)",
        "seconds",
        out / "soak-latency.svg",
        markers,
    )
    lines = [
        f"Capacity {capacity:.1f} req/s (closed loop, 16 connections); soak paced at {rate:.1f} "
        f"req/s over 32 connections for {seconds / 60:.0f} min: {len(outcomes):,} requests.",
        "",
        "| kind | "
        + " | ".join(("ok", "not-modified", "refused", "fault", "dropped", "BROKEN"))
        + " |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in sorted({o.kind for o in outcomes}):
        lines.append(
            f"| {kind} | "
            + " | ".join(
                f"{by_kind[kind, v]:,}"
                for v in ("ok", "not-modified", "refused", "fault", "dropped", "BROKEN")
            )
            + " |"
        )
    lines += ["", "| verdict | reason | count |", "|---|---|---|"]
    lines += [f"| {v} | {r} | {n:,} |" for (v, r), n in reasons.most_common()]
    lines += ["", "| minute | answered | p50 s | p99 s |", "|---|---|---|---|"]
    lines += [
        f"| {m} | {n:,} | {p50:.3f} | {p99:.3f} |"
        for m, (n, p50, p99) in summary["per_minute"].items()
    ]
    print("\n".join(lines))
    print(json.dumps(summary, indent=1, default=str))
    return summary


def _summed(sampler: Sampler, index: int) -> list[tuple[float, float]]:
    """A column summed over the workers alive at each sampling time."""
    totals: dict[float, float] = defaultdict(float)
    for values in sampler.samples.values():
        for sample in values:
            totals[round(sample[0])] += sample[index]
    return sorted(totals.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--from-raw", type=Path, help="redo the report from a soak-raw.pickle")
    args = parser.parse_args()
    if args.from_raw:
        report(*pickle.loads(args.from_raw.read_bytes()), args.out)
        return 0
    executable = shutil.which("redis-server")
    if executable is None:
        print("redis-server is needed (apt-get install -y redis-server)", file=sys.stderr)
        return 2
    origin = Origin(seed=RUN).start()
    sources = Sources(origin, args.corpus)
    photos, large = url_space(sources, RUN)
    with (
        tempfile.TemporaryDirectory() as workdir,
        RedisServer(executable, free_port(), workdir) as redis_server,
    ):
        port = free_port()
        env = server_env() | {
            "PIXELPIPE_REDIS_URL": redis_server.url,
            "PIXELPIPE_MAX_SRC_FILE_SIZE": str(MAX_SRC_FILE_SIZE),
            "PIXELPIPE_LOG_LEVEL": "error",
            "PIXELPIPE_ACCESS_LOG": "false",
        }
        with pixelpipe_process(PIXELPIPE, env, port, workers=2) as process:
            base = f"http://127.0.0.1:{port}"
            # Capacity on the same mix, other source URLs (a suffix on the cachebuster).
            probe_photos = [p.replace(f"run={RUN}-", f"run={RUN}-probe-") for p in photos]
            probe_large = [p.replace(f"run={RUN}-", f"run={RUN}-probe-") for p in large]
            probe = asyncio.run(
                run_load(base, picker(sources, probe_photos, probe_large), 45, connections=16)
            )
            capacity = len(probe.outcomes) / 45
            rate = 0.7 * capacity
            seconds = args.minutes * 60
            result, sampler, events, recovery = asyncio.run(
                soak(
                    base,
                    process.pid,
                    origin,
                    redis_server,
                    picker(sources, photos, large),
                    rate,
                    seconds,
                )
            )
            answer = httpx.get(base + sign(photos[0]), timeout=30)
            print(f"after the soak: {answer.status_code} {answer.headers.get('content-type')}")
            args.out.mkdir(parents=True, exist_ok=True)
            raw = (result, sampler, events, recovery, dict(origin.faults), capacity, rate, seconds)
            # Kept so the report can be redone (--from-raw) without soaking again.
            (args.out / "soak-raw.pickle").write_bytes(pickle.dumps(raw))
            report(*raw, args.out)
    origin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
