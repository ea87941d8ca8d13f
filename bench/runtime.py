"""pixelpipe under real traffic: memory, worker balance, cache hits, cold peers (issue 13).

    .venv/bin/python bench/runtime.py [--corpus ../shared/corpus] [--only memory,balance,hits,cold]

Every part starts its own servers on loopback and measures side by side in
one run, alternating where there are rounds:

- memory: per-worker RSS sampled every 0.5 s under W3 (1200 px JPEG from
  5120x2880 JPEGs, 8 connections, 20 s) and an overload (AVIF 1200 px from
  the same sources, 128 connections, 20 s), then 15 s after each, for each
  allocator: jemalloc, glibc with MALLOC_ARENA_MAX=2, and glibc untouched.
- balance: the share of the workers' CPU time each of 2 workers used, under
  8, 32 and 128 keep-alive connections, with SO_REUSEPORT sockets and with
  uvicorn's one shared socket.
- hits: cache hits at 32 connections against a bare one-route Starlette app
  returning the same bytes from a dict on uvicorn with httptools + uvloop, 2
  workers, both with uvicorn's shared socket and with SO_REUSEPORT (the better
  is the baseline); pixelpipe with its access log (JSON, to a file) and metrics on.
- cold: W1 (300x300 fill JPEG q80 from 2560x1600 JPEGs) at 4 and 32
  connections against ipx (npm, sharp/libvips), with mean bytes per image;
  pixelpipe twice, with its source cache serving the repeated source URLs and
  with every source URL new (a download per request, as ipx always does).

Cold runs never repeat a path: every load script's cachebuster is seeded per
run. wrk and ipx are installed when missing (apt-get, npm); without npm the
ipx part is skipped, loudly.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pyvips

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    cold_limit,
    ensure_wrk,
    free_port,
    photo_like,
    run_wrk,
    server_env,
    sign,
    start_bare,
    start_origin,
    status_mb,
    stop,
)
from tests.soak import worker_pids  # noqa: E402

BIN = Path(sys.executable).parent
IPX_DIR = Path.home() / ".cache" / "pixelpipe-bench" / "ipx"
SEED = random.SystemRandom().randrange(10**9)  # this run's cachebuster prefix


# --- processes -----------------------------------------------------------------


def rss_mb(pid: int) -> float:
    return status_mb(pid, "VmRSS")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """RSS of each worker every `interval` seconds, in a thread, with labels for phases."""

    def __init__(self, pids: list[int], interval: float = 0.5) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: list[tuple[float, str, list[float]]] = []
        self.phase = "idle"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic() - self.started
            self.samples.append((now, self.phase, [rss_mb(pid) for pid in self.pids]))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, phase: str) -> float:
        return max((max(rss) for _, p, rss in self.samples if p == phase), default=0.0)

    def last(self, phase: str) -> float:
        values = [max(rss) for _, p, rss in self.samples if p == phase]
        return values[-1] if values else 0.0


def start_pixelpipe(
    env: dict[str, str], workers: int = 2, stderr: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sink = stderr.open("ab") if stderr else subprocess.DEVNULL
    process = subprocess.Popen(
        [str(BIN / "pixelpipe"), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=sink,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/ready", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    while len(worker_pids(process.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    return process, base


def warm(base: str, paths: list[str], workers: int) -> None:
    # Connections land on workers by a hash: many fresh connections warm every worker.
    for _ in range(8 * workers):
        for path in paths:
            httpx.get(base + path, timeout=60)


# --- images --------------------------------------------------------------------


def huge_sources(directory: Path, corpus: Path | None) -> list[str]:
    """Four distinct 5120x2880 JPEGs (the corpus photo and its mirror images, when there)."""
    names = []
    base = None
    if corpus is not None and (corpus / "SafeLanding-5k.jpg").exists():
        base = pyvips.Image.new_from_file(str(corpus / "SafeLanding-5k.jpg"))
    for index in range(4):
        if base is not None:
            image = base.flip("horizontal") if index % 2 else base
            image = image.flip("vertical") if index // 2 else image
        else:
            image = photo_like(5120, 2880, 60 + index)
        name = f"huge-{index}.jpg"
        image.jpegsave(str(directory / name), Q=90)
        names.append(name)
    return names


def big_sources(directory: Path, corpus: Path | None) -> list[str]:
    names = []
    if corpus is not None:
        for path in sorted(corpus.glob("*.jpg")):
            header = pyvips.Image.new_from_file(str(path))
            if header.width == 2560 and header.get_fields().count("orientation") == 0:
                shutil.copy(path, directory / path.name)
                names.append(path.name)
    if not names:
        for index in range(8):
            name = f"big-{index}.jpg"
            photo_like(2560, 1600, index).jpegsave(str(directory / name), Q=90)
            names.append(name)
    return names


def cold_paths(
    template: str,
    sources: list[str],
    origin: str,
    run: str,
    count: int,
    source_cold: bool = False,
) -> list[str]:
    """Signed paths with cachebusters of this run; `source_cold`: each source URL
    gets the cachebuster too (as a query, escaped as plain sources are), so no
    server's source cache has seen it."""
    paths = []
    for i in range(count):
        busted = f"{SEED}-{run}-{i}"
        source = f"{origin}/{sources[i % len(sources)]}" + (f"%3Fs={busted}" if source_cold else "")
        paths.append(sign(template.format(cb=busted, source=source)))
    return paths


# --- memory --------------------------------------------------------------------

ALLOCATORS = {
    "jemalloc": {"PIXELPIPE_ALLOCATOR": "jemalloc"},
    # Before 2026-12-02: jemalloc's own number of arenas (4 per core).
    "jemalloc, 4 arenas a core": {
        "PIXELPIPE_ALLOCATOR": "jemalloc",
        "MALLOC_CONF": "background_thread:false,dirty_decay_ms:-1,muzzy_decay_ms:-1",
    },
    # What jemalloc ran with before the release on going quiet: purging on a 1 s decay.
    "jemalloc, 1 s decay": {
        "PIXELPIPE_ALLOCATOR": "jemalloc",
        "MALLOC_CONF": "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0",
    },
    "glibc, MALLOC_ARENA_MAX=2": {"PIXELPIPE_ALLOCATOR": "glibc"},
    # What pixelpipe ran on before: no re-execution, glibc's defaults.
    "glibc defaults": {"PIXELPIPE_ALLOCATOR_APPLIED": "1"},
}


def memory(
    origin: str, huge: list[str], wrk: str, seconds: int, out: Path, only: str | None = None
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for number, (label, extra) in enumerate(ALLOCATORS.items()):
        if only and not label.startswith(only):
            continue
        env = server_env() | extra
        process, base = start_pixelpipe(env)
        pids = worker_pids(process.pid)
        try:
            warm(base, [sign(f"/w:100/plain/{origin}/{huge[0]}@jpg")], 2)
            time.sleep(2)
            with RssSampler(pids) as sampler:
                time.sleep(2)
                idle = sampler.last("idle")
                sampler.phase = "w3"
                w3 = run_wrk(
                    wrk,
                    base,
                    cold_paths(
                        "/w:1200/q:80/cb:{cb}/plain/{source}@jpg",
                        huge,
                        origin,
                        f"w3a{number}",
                        20_000,
                    ),
                    8,
                    seconds,
                )
                sampler.phase = "after_w3"
                wait_until_idle(base)
                time.sleep(15)
                sampler.phase = "overload"
                overload = run_wrk(
                    wrk,
                    base,
                    cold_paths(
                        "/w:1200/q:65/cb:{cb}/plain/{source}@avif",
                        huge,
                        origin,
                        f"ova{number}",
                        40_000,
                    ),
                    128,
                    seconds,
                )
                sampler.phase = "after_overload"
                # Jobs admitted before the load stopped still run: "after" starts when they end.
                wait_until_idle(base)
                time.sleep(15)
                held = cache_bytes_mb(base)
            results[label] = {
                "idle_mb": idle,
                "w3_peak_mb": sampler.peak("w3"),
                "w3_after_mb": sampler.last("after_w3"),
                "w3_rate": w3["rate"],
                "w3_errors": w3["non_2xx"] + w3["socket_errors"],
                "overload_peak_mb": sampler.peak("overload"),
                "overload_after_mb": sampler.last("after_overload"),
                "caches_after_mb": held,
                "overload_rate": overload["rate"],
                "overload_non_2xx": overload["non_2xx"],
                "overload_socket_errors": overload["socket_errors"],
                "overload_p99_ms": overload["p99_us"] / 1000,
                "samples": sampler.samples,
            }
            print(
                f"memory {label}: { {k: v for k, v in results[label].items() if k != 'samples'} }",
                file=sys.stderr,
            )
        finally:
            stop(process)
    draw_rss(results, out)
    return results


def wait_until_idle(base: str, limit: float = 180) -> None:
    """Until no pipeline run is running or queued in any worker (from /metrics)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        busy = 0.0
        for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
            if line.startswith(("pixelpipe_jobs_running", "pixelpipe_jobs_queued")):
                busy += float(line.rpartition(" ")[2])
        if busy == 0:
            return
        time.sleep(0.5)


def cache_bytes_mb(base: str) -> float:
    """The most any worker's in-process caches hold (pixelpipe_cache_bytes, per process)."""
    per_pid: dict[str, float] = {}
    for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith("pixelpipe_cache_bytes{"):
            labels, _, value = line.rpartition(" ")
            pid = labels.split('pid="')[1].split('"')[0]
            per_pid[pid] = per_pid.get(pid, 0.0) + float(value)
    return max(per_pid.values(), default=0.0) / 2**20


def draw_rss(results: dict[str, Any], out: Path) -> None:
    """RSS over time per allocator as an SVG polyline chart (no plotting library needed)."""
    width, height, pad = 760, 320, 40
    colours = ["#c0392b", "#2471a3", "#7d7d7d"]
    t_max = max(s[0] for r in results.values() for s in r["samples"]) or 1
    mb_max = max(max(s[2]) for r in results.values() for s in r["samples"]) or 1
    mb_max = (int(mb_max / 100) + 1) * 100
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="14">largest worker RSS (MB) over time (s): W3 8 conn, '
        "15 s rest, overload 128 conn AVIF, 15 s rest</text>",
    ]
    for mb in range(0, mb_max + 1, 100):
        y = height - pad - (height - 2 * pad) * mb / mb_max
        parts.append(
            f'<line x1="{pad}" x2="{width - 10}" y1="{y:.0f}" y2="{y:.0f}" stroke="#ddd"/>'
        )
        parts.append(f'<text x="4" y="{y + 4:.0f}">{mb}</text>')
    for index, (label, result) in enumerate(results.items()):
        points = " ".join(
            f"{pad + (width - pad - 10) * t / t_max:.1f},"
            f"{height - pad - (height - 2 * pad) * max(rss) / mb_max:.1f}"
            for t, _, rss in result["samples"]
        )
        colour = colours[index % len(colours)]
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'
        )
        parts.append(f'<text x="{pad + 10}" y="{pad + 14 * index}" fill="{colour}">{label}</text>')
    parts.append(f'<text x="{width / 2:.0f}" y="{height - 8}">seconds</text></svg>')
    out.write_text("\n".join(parts))


# --- balance -------------------------------------------------------------------


def balance(origin: str, big: list[str], wrk: str, seconds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    hit_paths = [sign(f"/rs:fill:300:300/q:80/plain/{origin}/{name}@jpg") for name in big]
    for mode, reuse in (("SO_REUSEPORT", "true"), ("one shared socket", "false")):
        process, base = start_pixelpipe(
            server_env() | {"PIXELPIPE_REUSE_PORT": reuse, "PIXELPIPE_REQUESTS_QUEUE_SIZE": "64"}
        )
        pids = worker_pids(process.pid)
        try:
            warm(base, hit_paths, 2)
            for kind in ("hits", "cold"):
                for connections in (8, 32, 128):
                    paths = (
                        hit_paths
                        if kind == "hits"
                        else cold_paths(
                            "/rs:fill:300:300/q:80/cb:{cb}/plain/{source}@jpg",
                            big,
                            origin,
                            f"bal{reuse}{connections}",
                            20_000,
                        )
                    )
                    before = [cpu_seconds(pid) for pid in pids]
                    run = run_wrk(wrk, base, paths, connections, seconds)
                    used = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
                    total = sum(used) or 1
                    results[f"{mode}|{kind}|{connections}"] = {
                        "shares": [u / total for u in used],
                        "rate": run["rate"],
                        "non_2xx": run["non_2xx"],
                        "p99_ms": run["p99_us"] / 1000,
                    }
                    print(
                        f"balance {mode} {kind} {connections}: "
                        f"{results[f'{mode}|{kind}|{connections}']}",
                        file=sys.stderr,
                    )
        finally:
            stop(process)
    return results


# --- hits ----------------------------------------------------------------------


def measured_run(
    wrk: str, server: subprocess.Popen[bytes], base: str, paths: list[str], seconds: int
) -> dict[str, float]:
    """wrk at 32 connections, plus the server's own CPU time per request (all its workers)."""
    pids = worker_pids(server.pid)
    before = sum(cpu_seconds(pid) for pid in pids)
    run = run_wrk(wrk, base, paths, 32, seconds)
    used = sum(cpu_seconds(pid) for pid in pids) - before
    run["cpu_us_per_request"] = used / max(run["requests"], 1) * 1e6
    return run


def hits(
    origin: str, big: list[str], wrk: str, seconds: int, rounds: int, logs: Path
) -> dict[str, Any]:
    paths = [sign(f"/rs:fill:300:300/q:80/plain/{origin}/{name}@jpg") for name in big]
    # Access log on (INFO, JSON, to a file) and /metrics on: as in production.
    env = server_env() | {"PIXELPIPE_LOG_LEVEL": "info", "PIXELPIPE_LOG_FORMAT": "json"}
    process, base = start_pixelpipe(env, stderr=logs)
    bares = []
    try:
        warm(base, paths, 2)
        bodies = {p: (httpx.get(base + p).content, "image/jpeg") for p in paths}
        bares = [
            ("bare, shared socket", *start_bare(bodies, False)),
            ("bare, SO_REUSEPORT", *start_bare(bodies, True)),
        ]
        runs: dict[str, list[dict[str, float]]] = {"pixelpipe": []} | {b[0]: [] for b in bares}
        servers = [("pixelpipe", process, base)] + [(b[0], b[1], b[2]) for b in bares]
        for round_number in range(rounds):
            # Each round starts with another server: no one always goes first.
            turn = round_number % len(servers)
            for label, server, server_base in servers[turn:] + servers[:turn]:
                runs[label].append(measured_run(wrk, server, server_base, paths, seconds))
        one = run_wrk(wrk, base, paths, 1, seconds)
    finally:
        stop(process)
        for _label, proc, _base, data in bares:
            stop(proc)
            data.unlink()
    medians = {
        label: {
            "rate": statistics.median(r["rate"] for r in rs),
            "p50_ms": statistics.median(r["p50_us"] for r in rs) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in rs) / 1000,
            "errors": sum(r["non_2xx"] + r["socket_errors"] for r in rs),
            "rates": [r["rate"] for r in rs],
            "cpu_us": statistics.median(r["cpu_us_per_request"] for r in rs),
        }
        for label, rs in runs.items()
    }
    best = max(
        (label for label in medians if label != "pixelpipe"), key=lambda k: medians[k]["rate"]
    )
    medians["baseline"] = best
    medians["ratio"] = medians["pixelpipe"]["rate"] / medians[best]["rate"]
    medians["ratios_per_round"] = [
        p["rate"] / b["rate"] for p, b in zip(runs["pixelpipe"], runs[best], strict=True)
    ]
    medians["one_connection_p50_ms"] = one["p50_us"] / 1000
    medians["access_lines"] = sum(
        1 for line in logs.read_text().splitlines() if '"request"' in line
    )
    print(f"hits: {medians}", file=sys.stderr)
    return medians


# --- cold against ipx ------------------------------------------------------------


def ensure_ipx() -> Path | None:
    binary = IPX_DIR / "node_modules" / ".bin" / "ipx"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        print("WARNING: npm not found: the ipx comparison is SKIPPED", file=sys.stderr)
        return None
    IPX_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "ipx@3"],
        cwd=IPX_DIR,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return binary if binary.exists() else None


def start_ipx(binary: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(os.environ) | {"IPX_HTTP_DOMAINS": "127.0.0.1", "IPX_HTTP_MAX_AGE": "0"}
    process = subprocess.Popen(
        [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=IPX_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    return process, f"http://127.0.0.1:{port}"


def cold(
    origin: str, big: list[str], wrk: str, seconds: int, rounds: int, directory: Path
) -> dict[str, Any]:
    binary = ensure_ipx()
    results: dict[str, Any] = {}
    process, base = start_pixelpipe(server_env() | {"PIXELPIPE_REQUESTS_QUEUE_SIZE": "256"})
    ipx = start_ipx(binary) if binary else None
    try:

        def pp_paths(run: str, source_cold: bool = False) -> list[str]:
            return cold_paths(
                "/rs:fill:300:300/q:80/cb:{cb}/plain/{source}@jpg",
                big,
                origin,
                run,
                20_000,
                source_cold,
            )

        def ipx_paths(run: str) -> list[str]:
            return [
                f"/s_300x300,f_jpeg,q_80/{origin}/{big[i % len(big)]}?cb={SEED}-{run}-{i}"
                for i in range(20_000)
            ]

        # Bytes per image: the same 300x300 crops of every source from both.
        pp_bytes = [
            len(httpx.get(base + p, timeout=60).content) for p in pp_paths("bytes")[: len(big)]
        ]
        results["pixelpipe_mean_bytes"] = statistics.mean(pp_bytes)
        if ipx:
            ipx_bytes = []
            for path in ipx_paths("bytes")[: len(big)]:
                answer = httpx.get(ipx[1] + path, timeout=60)
                assert answer.status_code == 200, (answer.status_code, answer.text[:200])
                ipx_bytes.append(len(answer.content))
            results["ipx_mean_bytes"] = statistics.mean(ipx_bytes)
        workers = worker_pids(process.pid)
        limits: list[dict[str, float]] = []
        for connections in (4, 32):
            # "pixelpipe": each source at one URL, so a worker downloads it once and
            # its source cache serves the rest; "new sources": every request's
            # source URL is new, so pixelpipe downloads it every time, as ipx does
            # (ipx keeps no sources; it sends a HEAD and a GET per request).
            runs: dict[str, list[dict[str, float]]] = {
                "pixelpipe": [],
                "pixelpipe, new sources": [],
                "ipx": [],
            }
            for r in range(rounds):
                for label, source_cold in (("pixelpipe", False), ("pixelpipe, new sources", True)):
                    cpu_before = sum(cpu_seconds(pid) for pid in workers)
                    tag = "n" if source_cold else "w"
                    paths = pp_paths(f"c{connections}r{r}{tag}", source_cold)
                    run = run_wrk(wrk, base, paths, connections, seconds)
                    cpu = sum(cpu_seconds(pid) for pid in workers) - cpu_before
                    run["cpu_ms_per_request"] = 1000 * cpu / max(run["requests"], 1)
                    runs[label].append(run)
                if connections == 32:
                    # W1's limit: two single-threaded processes, no HTTP.
                    limits.append(cold_limit([directory / n for n in big], seconds, 2))
                if ipx:
                    runs["ipx"].append(
                        run_wrk(wrk, ipx[1], ipx_paths(f"c{connections}r{r}"), connections, seconds)
                    )
            entry = {}
            for label, rs in runs.items():
                if rs:
                    entry[label] = {
                        "rate": statistics.median(x["rate"] for x in rs),
                        "p50_ms": statistics.median(x["p50_us"] for x in rs) / 1000,
                        "p99_ms": statistics.median(x["p99_us"] for x in rs) / 1000,
                        "errors": sum(x["non_2xx"] + x["socket_errors"] for x in rs),
                        "rates": [x["rate"] for x in rs],
                    }
                    if label.startswith("pixelpipe"):
                        entry[label]["cpu_ms_per_request"] = statistics.median(
                            x["cpu_ms_per_request"] for x in rs
                        )
            if "ipx" in entry:
                entry["ratio"] = entry["pixelpipe"]["rate"] / entry["ipx"]["rate"]
                entry["ratio_new_sources"] = (
                    entry["pixelpipe, new sources"]["rate"] / entry["ipx"]["rate"]
                )
            if connections == 32:
                entry["limit"] = {
                    "rate": statistics.median(x["rate"] for x in limits),
                    "rates": [x["rate"] for x in limits],
                    "cpu_ms_per_op": statistics.median(x["cpu_ms_per_op"] for x in limits),
                }
                entry["ratio_to_limit"] = entry["pixelpipe"]["rate"] / entry["limit"]["rate"]
                entry["ratios_to_limit"] = [
                    pp["rate"] / lim["rate"]
                    for pp, lim in zip(runs["pixelpipe"], limits, strict=True)
                ]
            results[str(connections)] = entry
            print(f"cold {connections}: {entry}", file=sys.stderr)
    finally:
        stop(process)
        if ipx:
            stop(ipx[0])
    return results


# --- report ----------------------------------------------------------------------


def report(results: dict[str, Any]) -> None:
    if "memory" in results:
        print("\n### Memory (MB, largest worker; 2 workers)\n")
        print(
            "| allocator | idle | W3 peak | 15 s after W3 | overload peak | 15 s after overload "
            "| caches then | W3 req/s | overload req/s | overload 503s | overload p99 ms |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, r in results["memory"].items():
            cells = [
                f"{r[key]:.0f}"
                for key in ("idle_mb", "w3_peak_mb", "w3_after_mb", "overload_peak_mb")
            ]
            cells += [f"{r['overload_after_mb']:.0f}", f"{r.get('caches_after_mb', 0):.0f}"]
            cells += [f"{r['w3_rate']:.1f}"]
            cells += [f"{r['overload_rate']:.1f}", f"{r['overload_non_2xx']:.0f}"]
            cells += [f"{r['overload_p99_ms']:.0f}"]
            print(f"| {label} | " + " | ".join(cells) + " |")
    if "balance" in results:
        print("\n### Balance: share of the workers' CPU time (worker A / worker B)\n")
        print("| sockets | load | 8 conn | 32 conn | 128 conn |")
        print("|---|---|---|---|---|")
        for mode in ("SO_REUSEPORT", "one shared socket"):
            for kind in ("hits", "cold"):
                cells = []
                for c in (8, 32, 128):
                    r = results["balance"][f"{mode}|{kind}|{c}"]
                    a, b = sorted(r["shares"])
                    cells.append(
                        f"{a:.0%} / {b:.0%} ({r['rate']:.0f} req/s, {r['non_2xx']:.0f} non-2xx)"
                    )
                print(f"| {mode} | {kind} | " + " | ".join(cells) + " |")
    if "hits" in results:
        h = results["hits"]
        print("\n### Cache hits, 32 connections, 2 workers (medians)\n")
        print(
            "| server | req/s | p50 ms | p99 ms | errors | server CPU µs/request "
            "| req/s per round |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        for label in ("pixelpipe", "bare, shared socket", "bare, SO_REUSEPORT"):
            r = h[label]
            rounds = ", ".join(f"{x:.0f}" for x in r["rates"])
            print(
                f"| {label} | {r['rate']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                f"| {r['errors']:.0f} | {r['cpu_us']:.0f} | {rounds} |"
            )
        print(
            f"\nratio to the best bare app ({h['baseline']}): {h['ratio']:.2f} "
            f"(per round {', '.join(f'{x:.2f}' for x in h['ratios_per_round'])}); "
            f"one connection p50 {h['one_connection_p50_ms']:.2f} ms; "
            f"access lines written: {h['access_lines']}"
        )
    if "cold" in results:
        c = results["cold"]
        print("\n### Cold W1 against ipx (medians)\n")
        print(
            "New sources: every request's source URL is new, so pixelpipe downloads\n"
            "it each time, as ipx always does; otherwise a worker downloads each of\n"
            "the corpus' sources once and its source cache serves the rest.\n"
        )
        print(
            "| connections | pixelpipe req/s | new sources | ipx req/s | ratio | new sources "
            "| pixelpipe p99 ms | ipx p99 ms | per round (pixelpipe; new sources; ipx) |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        nan = float("nan")
        for conn in ("4", "32"):
            e = c[conn]
            ipx = e.get("ipx", {})
            fresh = e["pixelpipe, new sources"]
            print(
                f"| {conn} | {e['pixelpipe']['rate']:.1f} | {fresh['rate']:.1f} "
                f"| {ipx.get('rate', nan):.1f} | {e.get('ratio', nan):.2f} "
                f"| {e.get('ratio_new_sources', nan):.2f} | {e['pixelpipe']['p99_ms']:.0f} "
                f"| {ipx.get('p99_ms', nan):.0f} "
                f"| {', '.join(f'{x:.1f}' for x in e['pixelpipe']['rates'])}; "
                f"{', '.join(f'{x:.1f}' for x in fresh['rates'])}; "
                f"{', '.join(f'{x:.1f}' for x in ipx.get('rates', []))} |"
            )
        print(
            f"\nmean bytes per 300x300 image: pixelpipe {c['pixelpipe_mean_bytes']:.0f}, "
            f"ipx {c.get('ipx_mean_bytes', float('nan')):.0f}"
        )
        e = c["32"]
        lim = e["limit"]
        print("\n### Cold W1 at 32 connections against the limit (medians)\n")
        print(
            "| pixelpipe req/s | limit op/s | ratio | per round | pixelpipe CPU ms/request "
            "(workers) | limit CPU ms/op |"
        )
        print("|---:|---:|---:|---|---:|---:|")
        print(
            f"| {e['pixelpipe']['rate']:.1f} | {lim['rate']:.1f} | {e['ratio_to_limit']:.2f} "
            f"| {', '.join(f'{x:.2f}' for x in e['ratios_to_limit'])} "
            f"| {e['pixelpipe']['cpu_ms_per_request']:.1f} | {lim['cpu_ms_per_op']:.1f} |"
        )
        fresh = e["pixelpipe, new sources"]
        print(
            f"\nWith new sources: {fresh['rate']:.1f} req/s, "
            f"{fresh['rate'] / lim['rate']:.2f} of the limit, "
            f"{fresh['cpu_ms_per_request']:.1f} ms of CPU per request (workers)."
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, help="a directory of real photos (../shared/corpus)")
    parser.add_argument("--only", default="memory,balance,hits,cold")
    parser.add_argument("--duration", type=int, default=20, help="seconds of each memory load")
    parser.add_argument("--seconds", type=int, default=8, help="seconds of each other measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--allocator", help="memory part: only this allocator (jemalloc, glibc)")
    parser.add_argument(
        "--origin", choices=("nginx", "python"), default="nginx", help="the source server"
    )
    args = parser.parse_args()
    wrk = ensure_wrk()
    args.out.mkdir(parents=True, exist_ok=True)
    parts = set(args.only.split(","))
    results: dict[str, Any] = {"seed": SEED}
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp)
        huge = huge_sources(images, args.corpus) if "memory" in parts else []
        big = big_sources(images, args.corpus)
        origin_process, origin = start_origin(images, args.origin)
        results["origin"] = args.origin
        try:
            if "memory" in parts:
                results["memory"] = memory(
                    origin, huge, wrk, args.duration, args.out / "rss.svg", args.allocator
                )
            if "balance" in parts:
                results["balance"] = balance(origin, big, wrk, args.seconds)
            if "hits" in parts:
                results["hits"] = hits(
                    origin, big, wrk, args.seconds, args.rounds, Path(tmp) / "access.log"
                )
            if "cold" in parts:
                results["cold"] = cold(origin, big, wrk, args.seconds, args.rounds, images)
        finally:
            stop(origin_process)
    (args.out / "runtime.json").write_text(json.dumps(results, indent=1, default=float))
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
