"""pixelpipe against its limits, side by side, in one run.

    .venv/bin/python bench/run.py [--workers N] [--duration S] [--corpus DIR]

Starts a loopback origin, pixelpipe (`pixelpipe serve`), and wrk as the load
generator; in the same run measures pixelpipe's own pipeline doing the same
operations in-process on bytes in memory (bench/cold_limit.py: a process per
core, one libvips thread each, on the server's malloc), plain libvips'
thumbnail for reference, and a bare Starlette app returning the same bytes
from a dict with the same workers. Prints a markdown table with rates,
latencies, errors, peak RSS per worker, and the ratios. Installs wrk with
apt-get when it is missing. Only loopback is used.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyvips

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from signing import Signer  # noqa: E402
from tests.ports import free_port  # noqa: E402

KEY = "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881"  # example pair
SALT = "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5"
SIGNER = Signer(KEY, SALT)
# This run's cachebuster prefix: no cold path repeats one from an earlier run.
RUN = random.SystemRandom().randrange(10**9)


def sign(path: str) -> str:
    return "/" + SIGNER.sign(path) + path


def ensure_program(program: str, package: str) -> str:
    """The path of `program`, installing Debian's `package` with apt-get when it is missing."""
    found = shutil.which(program)
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", package], check=True, stdout=subprocess.DEVNULL
    )
    return shutil.which(program) or program


def ensure_wrk() -> str:
    return ensure_program("wrk", "wrk")


# --- images -------------------------------------------------------------------


def photo_like(width: int, height: int, seed: int) -> pyvips.Image:
    """Smooth colour fields plus grain: compresses like a photo, not like a flat test card."""
    xyz = pyvips.Image.xyz(width, height)
    red = (xyz[0] * (255.0 / width) + seed * 17) % 256
    green = (xyz[1] * (255.0 / height) + seed * 31) % 256
    blue = ((xyz[0] + xyz[1]) * (128.0 / (width + height)) + seed * 7) % 256
    base = red.bandjoin([green, blue])
    grain = pyvips.Image.gaussnoise(width, height, sigma=12, mean=0).bandjoin([0, 0]).gaussblur(0.8)
    return (base + grain).cast("uchar").copy(interpretation="srgb")


def prepare_images(directory: Path, corpus: Path | None) -> dict[str, list[str]]:
    """Names of the 2560x1600 and 5120x2880 JPEGs served by the origin."""
    sizes: dict[str, list[str]] = {"2560": [], "5120": []}
    if corpus is not None:
        for path in sorted(corpus.glob("*.jpg")):
            header = pyvips.Image.new_from_file(str(path))
            if "orientation" in header.get_fields() and header.get("orientation") != 1:
                continue
            key = {2560: "2560", 5120: "5120"}.get(header.width)
            if key:
                shutil.copy(path, directory / path.name)
                sizes[key].append(path.name)
        return sizes
    for i in range(8):
        name = f"photo-2560-{i}.jpg"
        photo_like(2560, 1600, i).jpegsave(str(directory / name), Q=90)
        sizes["2560"].append(name)
    for i in range(3):
        name = f"photo-5120-{i}.jpg"
        photo_like(5120, 2880, i + 50).jpegsave(str(directory / name), Q=90)
        sizes["5120"].append(name)
    return sizes


# --- workloads ----------------------------------------------------------------


@dataclass
class Workload:
    name: str
    title: str
    paths: list[str]
    connections: int
    raw: object | None = None  # callable(bytes) -> bytes: the same work in pyvips
    raw_sources: list[str] = field(default_factory=list)
    warm: list[str] = field(default_factory=list)


def workloads(origin: str, images: dict[str, list[str]], count: int) -> list[Workload]:
    big, huge = images["2560"], images["5120"]
    w1 = [
        sign(f"/rs:fill:300:300/q:80/cb:{RUN}-{i}/plain/{origin}/{big[i % len(big)]}@jpg")
        for i in range(count)
    ]
    w2 = [
        sign(f"/rs:fit:800:800/q:80/cb:{RUN}-{i}/plain/{origin}/{big[i % len(big)]}@webp")
        for i in range(count)
    ]
    w3 = [
        sign(f"/w:1200/q:80/cb:{RUN}-{i}/plain/{origin}/{huge[i % len(huge)]}@jpg")
        for i in range(count)
    ]
    w4 = [sign(f"/rs:fill:300:300/q:80/plain/{origin}/{name}@jpg") for name in big]
    variants = [f"/rs:fill:{w}:{w * 2 // 3}/q:80" for w in range(160, 1600, 24)]
    distinct = [
        sign(f"{variant}/plain/{origin}/{name}@jpg") for variant in variants for name in big
    ][:500]
    rng = random.Random(7)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(distinct))]
    w5 = rng.choices(distinct, weights=weights, k=count)

    def w1_raw(data: bytes) -> bytes:
        image = pyvips.Image.thumbnail_buffer(data, 300, height=300, crop="centre")
        return image.jpegsave_buffer(Q=80, optimize_coding=True, keep="none")

    def w2_raw(data: bytes) -> bytes:
        return pyvips.Image.thumbnail_buffer(data, 800, height=800).webpsave_buffer(
            Q=80, keep="none"
        )

    def w3_raw(data: bytes) -> bytes:
        image = pyvips.Image.thumbnail_buffer(data, 1200, height=100_000, size="down")
        return image.jpegsave_buffer(Q=80, optimize_coding=True, keep="none")

    return [
        Workload("W1", "300x300 fill JPEG q80 from 2560x1600 JPEG, cold", w1, 8, w1_raw, big),
        Workload("W2", "fit 800x800 WebP q80 from 2560x1600 JPEG, cold", w2, 8, w2_raw, big),
        Workload("W3", "1200 px wide JPEG from 5120x2880 JPEG, cold", w3, 8, w3_raw, huge),
        Workload("W4", "cache hits of W1", w4, 32, warm=w4),
        Workload("W5", "Zipf mix over 500 distinct URLs", w5, 32),
    ]


# --- processes ----------------------------------------------------------------


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def status_mb(pid: int, field: str) -> float:
    """A memory line of /proc/PID/status in MB: VmHWM (peak RSS), VmRSS (now)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb(pid: int) -> float:
    return status_mb(pid, "VmHWM")


def start(args: list[str], env: dict[str, str], health: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_up(health, process)
    return process


NGINX_ORIGIN_CONF = """
daemon off;
{user}
worker_processes 1;
pid {state}/nginx.pid;
error_log {state}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    client_body_temp_path {state}/body;
    proxy_temp_path {state}/proxy;
    fastcgi_temp_path {state}/fastcgi;
    uwsgi_temp_path {state}/uwsgi;
    scgi_temp_path {state}/scgi;
    types {{ image/jpeg jpg jpeg; image/png png; image/webp webp; }}
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""


def start_origin(directory: Path, kind: str = "nginx") -> tuple[subprocess.Popen[bytes], str]:
    """A loopback HTTP origin over `directory`: the process and its base URL.

    nginx (Debian's, installed when missing) by default: sendfile and keep-alive, as a
    production origin or object store answers. It shares the two cores with the server
    under test, so its cost is taken from what is measured: Python's `http.server`
    spends 0.70 ms of CPU per 586 KB source against nginx's 0.13 and opens a
    connection per request (`bench/origin_cost.py`). `kind="python"` keeps it for
    comparison.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if kind == "python":
        args = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                "--directory", str(directory)]  # fmt: skip
        return start(args, dict(os.environ), base + "/"), base
    nginx = ensure_program("nginx", "nginx-light")
    state = Path(tempfile.mkdtemp(prefix="pixelpipe-origin-"))
    atexit.register(shutil.rmtree, state, True)
    conf = state / "nginx.conf"
    conf.write_text(
        NGINX_ORIGIN_CONF.format(
            # As root, nginx's workers would run as nobody and could not read a 0700 tmpdir.
            user="user root;" if os.geteuid() == 0 else "",
            state=state,
            port=port,
            root=directory.resolve(),
        )
    )
    args = [nginx, "-c", str(conf), "-p", str(state), "-e", str(state / "error.log")]
    return start(args, dict(os.environ), base + "/"), base


def server_env() -> dict[str, str]:
    """The environment for `pixelpipe serve` in benchmarks: example keys, loopback allowed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIXELPIPE_", "IMGPROXY_"))}
    return env | {
        "PIXELPIPE_KEY": KEY,
        "PIXELPIPE_SALT": SALT,
        "PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES": "true",
        "PIXELPIPE_LOG_LEVEL": "warning",
    }


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def run_wrk(
    wrk: str, base: str, paths: list[str], connections: int, duration: int
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(paths))
    try:
        out = subprocess.run(
            [wrk, f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s",
             "--timeout", "30s", "-s", str(HERE / "report.lua"), base, "--", handle.name,
             str(min(2, connections))],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(handle.name)
    stats = json.loads(out.strip().splitlines()[-1])
    stats["rate"] = stats["requests"] / (stats["duration_us"] / 1e6)
    return stats


def cold_limit(
    sources: list[Path], seconds: float, processes: int, path: str | None = None
) -> dict[str, float]:
    """bench/cold_limit.py: the pipeline of `path` (W1's by default) in
    `processes` processes on the sources' bytes; its rate and CPU per operation."""
    out = subprocess.run(
        [sys.executable, str(HERE / "cold_limit.py"), str(seconds), str(processes)]
        + [str(source) for source in sources]
        + (["--path", path] if path else []),
        check=True,
        capture_output=True,
    ).stdout
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


def raw_rate(work, sources: list[bytes], threads: int, duration: float) -> dict[str, float]:
    """The same operation in-process, `threads` at a time, for `duration` seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def loop(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            work(sources[i % len(sources)])
            with lock:
                latencies.append(time.perf_counter() - started)
            i += threads

    begun = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))
    elapsed = time.perf_counter() - begun
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50_us": latencies[len(latencies) // 2] * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
    }


def pipeline_call(signed_path: str):  # type: ignore[no-untyped-def]
    """The pipeline a request path asks for, as a plain function of the source bytes."""
    from proxy.options import ParserConfig, parse_options, split_path
    from proxy.pipeline.process import ProcessingLimits, process_image
    from proxy.settings import Settings

    settings = Settings()
    split = split_path(signed_path)
    options = parse_options(
        split.option_segments, split.source_url, split.extension, ParserConfig()
    )
    limits = ProcessingLimits.from_settings(settings)
    return lambda data: process_image(data, options, limits).data


def overhead_breakdown(origin: str, name: str) -> dict[str, float]:
    """In-process cost of each Python stage of a request, beside the libvips work.

    parse + signature + canonical form (uncached), the fetch of one source from
    the loopback origin through pixelpipe's client (policy, limits, streaming),
    hashing it, the pipeline itself, and answering a cache hit (everything in
    `ImageService.respond` but the HTTP server).
    """
    import asyncio
    from dataclasses import replace

    from proxy.app import build_client, build_sources
    from proxy.cache import ResultCache
    from proxy.http_headers import source_digest
    from proxy.options import ParserConfig, parse_options, split_path
    from proxy.options.url import split_signature
    from proxy.service import ImageService
    from proxy.settings import Settings
    from signing import KeyRing

    ring = KeyRing.from_pairs([bytes.fromhex(KEY)], [bytes.fromhex(SALT)])
    path = sign(f"/rs:fill:300:300/q:80/plain/{origin}/{name}@jpg")
    config = ParserConfig()
    rounds = 20000
    started = time.perf_counter()
    for _ in range(rounds):
        signature, signed_path = split_signature(path)
        ring.verify(signature, signed_path)
        split = split_path(path)
        parse_options(split.option_segments, split.source_url, split.extension, config).canonical()
    parse_us = (time.perf_counter() - started) / rounds * 1e6

    settings = replace(
        Settings(),
        keys=(bytes.fromhex(KEY),),
        salts=(bytes.fromhex(SALT),),
        allow_loopback_source_addresses=True,
    )

    def median_ms(samples: list[float]) -> float:
        return statistics.median(samples) * 1000

    async def measure_async() -> dict[str, float]:
        async with build_client(settings) as client:
            sources = build_sources(settings, client)
            fetch, digest = [], []
            for _ in range(30):
                t0 = time.perf_counter()
                source = await sources.fetch(f"{origin}/{name}")
                t1 = time.perf_counter()
                source_digest(source.data)
                fetch.append(t1 - t0)
                digest.append(time.perf_counter() - t1)
            pipeline = pipeline_call(path)
            runs = []
            for _ in range(10):
                t0 = time.perf_counter()
                pipeline(source.data)
                runs.append(time.perf_counter() - t0)
            with ThreadPoolExecutor(1) as executor:
                service = ImageService(settings, sources, executor, ResultCache(10_000_000, 3600))
                await service.respond(path, {})  # miss: fetch + pipeline, then cached
                hits = 5000
                t0 = time.perf_counter()
                for _ in range(hits):
                    await service.respond(path, {})
                hit_us = (time.perf_counter() - t0) / hits * 1e6
        return {
            "parse_sign_canonical_us": parse_us,
            "fetch_ms": median_ms(fetch),
            "source_bytes": float(len(source.data)),
            "digest_ms": median_ms(digest),
            "pipeline_ms": median_ms(runs),
            "cache_hit_us": hit_us,
        }

    return asyncio.run(measure_async())


# --- main ---------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument(
        "--corpus", type=Path, help="a directory of real photos (e.g. ../shared/corpus)"
    )
    parser.add_argument("--only", help="comma-separated workload names, e.g. W1,W4")
    parser.add_argument("--rounds", type=int, default=3, help="alternations; medians are shown")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    wrk = ensure_wrk()
    cores = len(os.sched_getaffinity(0))
    results: dict[str, Any] = {}

    with tempfile.TemporaryDirectory() as tmp:
        images_dir = Path(tmp) / "images"
        images_dir.mkdir()
        images = prepare_images(images_dir, args.corpus)
        origin, origin_base = start_origin(images_dir)
        env = server_env() | {"PIXELPIPE_REQUESTS_QUEUE_SIZE": "256"}
        try:
            selected = workloads(origin_base, images, count=50_000)
            if args.only:
                wanted = set(args.only.split(","))
                selected = [w for w in selected if w.name in wanted]
            source_bytes = {
                name: (images_dir / name).read_bytes()
                for names in images.values()
                for name in names
            }
            results["front_end"] = overhead_breakdown(origin_base, images["2560"][0])
            for workload in selected:
                result = measure(workload, args, env, wrk, cores, source_bytes, images_dir)
                results[workload.name] = result
                print(f"{workload.name}: {json.dumps(result, default=float)}", file=sys.stderr)
        finally:
            stop(origin)

    print_table(results, args, cores)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def measure(
    workload: Workload,
    args: argparse.Namespace,
    env: dict[str, str],
    wrk: str,
    cores: int,
    source_bytes: dict[str, bytes],
    images_dir: Path,
) -> dict[str, Any]:
    """pixelpipe and its limit, alternated for `--rounds` rounds; medians of each."""
    bin_dir = Path(sys.executable).parent
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start(
        [str(bin_dir / "pixelpipe"), "serve", "--port", str(port), "--workers", str(args.workers)],
        env, base + "/health",
    )  # fmt: skip
    bare: tuple[subprocess.Popen[bytes], str, Path] | None = None
    try:
        # Each worker process has its own caches, and connections land on workers
        # at random: warm every path over many fresh connections.
        for _ in range(6 * args.workers if workload.warm else 1):
            for path in workload.warm or workload.paths[:4]:
                httpx.get(base + path, timeout=60)
        sources = [source_bytes[name] for name in workload.raw_sources]
        limit_call: Any = None
        if workload.raw is not None:
            # The limit: pixelpipe's own pipeline (exactly the same libvips
            # operations) on bytes in memory, a process per core.
            files = [images_dir / name for name in workload.raw_sources]

            def limit_call() -> dict[str, float]:
                return cold_limit(files, args.duration, cores, workload.paths[0])

        if workload.name == "W4":
            bodies = {p: (httpx.get(base + p).content, "image/jpeg") for p in workload.paths}
            # One shared socket: the better of the two in bench/runtime.py's hits.
            bare = start_bare(bodies, False, args.workers)
            bare_base = bare[1]

            def limit_call() -> dict[str, float]:
                return run_wrk(wrk, bare_base, workload.paths, workload.connections, args.duration)

        runs, limits, thumbnails = [], [], []
        cursor = 10  # cold workloads: each run gets paths no earlier run has asked for
        for _ in range(args.rounds):
            paths = workload.paths[cursor : cursor + 20_000] if workload.raw else workload.paths
            run = run_wrk(wrk, base, paths, workload.connections, args.duration)
            cursor += int(run["requests"]) + 100
            runs.append(run)
            if limit_call is not None:
                limits.append(limit_call())
            if workload.raw is not None:
                thumbnails.append(raw_rate(workload.raw, sources, cores, args.duration))
        stats = median_of(runs)
        rss = [peak_rss_mb(pid) for pid in children(server.pid)] or [peak_rss_mb(server.pid)]
        stats["peak_rss_mb_per_worker"] = max(rss)
        if workload.name == "W4":
            single = run_wrk(wrk, base, workload.paths, 1, max(3, args.duration // 2))
            stats["p50_us_one_connection"] = single["p50_us"]
    finally:
        stop(server)
        if bare is not None:
            stop(bare[0])
            bare[2].unlink()
    result: dict[str, Any] = {"title": workload.title, "pixelpipe": stats, "rounds": args.rounds}
    if limits:
        limit = median_of(limits)
        result["limit"] = limit
        result["ratio"] = stats["rate"] / limit["rate"]
        result["ratios_per_round"] = [
            r["rate"] / lim["rate"] for r, lim in zip(runs, limits, strict=True)
        ]
    if thumbnails:
        result["thumbnail"] = median_of(thumbnails)
        # Extra CPU per request over the same operations in-process, all cores busy.
        result["overhead_ms"] = (cores / stats["rate"] - cores / result["limit"]["rate"]) * 1000
    return result


BARE_LAUNCH = """
import sys, uvicorn
from proxy.workers import serve_workers
port, workers, reuse = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
config = uvicorn.Config("bare_app:app", port=port, workers=workers, http="httptools",
                        loop="uvloop", server_header=False, log_level="warning",
                        access_log=False)
serve_workers(config, workers, reuse)
"""


def start_bare(
    bodies: dict[str, tuple[bytes, str]], reuse: bool, workers: int = 2
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """The bare Starlette app (bench/bare_app.py) at its best: httptools and
    uvloop, no access log, `workers` processes on one shared socket or on
    SO_REUSEPORT (`reuse`), pixelpipe's own worker supervisor."""
    data = Path(tempfile.mkstemp(suffix=".pickle")[1])
    data.write_bytes(pickle.dumps(bodies))
    port = free_port()
    env = dict(os.environ) | {"BARE_APP_DATA": str(data), "PYTHONPATH": f"{HERE}:{ROOT}"}
    first = next(iter(bodies))
    process = start(
        [sys.executable, "-c", BARE_LAUNCH, str(port), str(workers), "1" if reuse else "0"],
        env,
        f"http://127.0.0.1:{port}{first}",
    )
    return process, f"http://127.0.0.1:{port}", data


def print_table(results: dict[str, Any], args: argparse.Namespace, cores: int) -> None:
    print(
        f"\n{cores} cores, {args.workers} pixelpipe workers, {args.rounds} alternating rounds "
        f"of {args.duration} s, medians; images: {args.corpus or 'generated'}\n"
    )
    print(
        "| workload | pixelpipe req/s | p50 ms | p99 ms | errors | peak RSS/worker MB "
        "| limit req/s | limit p50 ms | ratio | extra CPU ms/request | vips thumbnail req/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    nan = float("nan")
    for name, result in results.items():
        if name == "front_end":
            continue
        pp = result["pixelpipe"]
        limit = result.get("limit") or {}
        overhead = result.get("overhead_ms")
        thumbnail = result.get("thumbnail", {}).get("rate")
        cells = [
            f"{name}: {result['title']}",
            f"{pp['rate']:.1f}",
            f"{pp['p50_us'] / 1000:.1f}",
            f"{pp['p99_us'] / 1000:.1f}",
            f"{pp['non_2xx'] + pp['socket_errors']:.0f}",
            f"{pp['peak_rss_mb_per_worker']:.0f}",
            f"{limit.get('rate', nan):.1f}",
            f"{limit.get('p50_us', nan) / 1000:.1f}",
            f"{result.get('ratio', nan):.2f}",
            "" if overhead is None else f"{overhead:.1f}",
            "" if thumbnail is None else f"{thumbnail:.1f}",
        ]
        print("| " + " | ".join(cells) + " |")
    w4 = results.get("W4", {}).get("pixelpipe", {})
    if w4:
        one = w4["p50_us_one_connection"] / 1000
        print(f"\nW4 at 1 connection: p50 {one:.2f} ms (the whole HTTP path of a cached answer)")
    front = results["front_end"]
    size_kb = front["source_bytes"] / 1024
    python_ms = (
        front["parse_sign_canonical_us"] / 1000
        + front["fetch_ms"]
        + front["digest_ms"]
        + front["cache_hit_us"] / 1000
    )
    print(
        "\nPython stages of one cold W1 request, in-process, one at a time (medians):\n\n"
        "| stage | time |\n|---|---|\n"
        f"| parse + signature + canonical form | {front['parse_sign_canonical_us']:.1f} µs |\n"
        f"| fetch {size_kb:.0f} KB from the loopback origin | {front['fetch_ms']:.2f} ms |\n"
        f"| content hash of the source | {front['digest_ms']:.2f} ms |\n"
        f"| cache lookup + response (a hit) | {front['cache_hit_us']:.1f} µs |\n"
        f"| **Python overhead, total** | **{python_ms:.2f} ms** |\n"
        f"| the pipeline (libvips: load, resize, encode) | {front['pipeline_ms']:.1f} ms |"
    )


if __name__ == "__main__":
    raise SystemExit(main())
