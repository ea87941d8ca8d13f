"""Where a cached answer's time goes: py-spy on one pixelpipe worker under W4 load.

    .venv/bin/python bench/profile_hits.py [--duration 10] [--connections 32]

Starts a loopback origin and `pixelpipe serve --workers N` (default 1; py-spy
samples the first worker), warms the W4 paths
(300x300 fill JPEG of generated photos), drives them with wrk while py-spy
samples the worker, and prints the share of samples spent in each layer
(inclusive: a frame's own time plus everything it calls). Installs py-spy
with pip and wrk with apt when missing. Only loopback is used.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import (  # noqa: E402
    ensure_wrk,
    free_port,
    prepare_images,
    server_env,
    sign,
    start,
    start_origin,
    stop,
)

# Layers, matched against "function (file)" frames; the first match per stack wins
# for "own" attribution, and every match counts for "inclusive".
LAYERS = {
    "pixelpipe cache-hit path (proxy/hits.py)": "(proxy/hits.py",
    "pixelpipe ImageService.cached_answer": "cached_answer (proxy/service.py",
    "pixelpipe negotiation / parse memo": "negotiated (proxy/service.py",
    "pixelpipe response headers": "_image_response (proxy/service.py",
    "pixelpipe request id, metrics, access line": "(proxy/observability.py",
    "pixelpipe access line": "write (proxy/logs.py",
    "pixelpipe metrics (batched)": "(proxy/monitoring.py",
    "pixelpipe request limits": "check (proxy/limits.py",
    "starlette routing": "(starlette/routing.py",
    "starlette Request/headers": "(starlette/datastructures.py",
    "starlette middleware stack": "(starlette/middleware/",
    "uvicorn httptools protocol": "(uvicorn/protocols/http/httptools_impl.py",
    "uvicorn h11 protocol": "(uvicorn/protocols/http/h11_impl.py",
    "asyncio (pure-Python parts; uvloop's are native)": "(asyncio/",
}


def first_worker(pid: int) -> int:
    """The first worker process of `pixelpipe serve` (itself when it has one worker)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return pid
    for child in children:
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    return pid


def ensure_py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    wrk, py_spy = ensure_wrk(), ensure_py_spy()
    with tempfile.TemporaryDirectory() as tmp:
        images_dir = Path(tmp) / "images"
        images_dir.mkdir()
        names = prepare_images(images_dir, None)["2560"]
        origin, origin_base = start_origin(images_dir)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start(
            [str(Path(sys.executable).parent / "pixelpipe"), "serve", "--port", str(port),
             "--workers", str(args.workers)],
            # Access log (JSON) and metrics on, as in production.
            server_env() | {"PIXELPIPE_LOG_LEVEL": "info", "PIXELPIPE_LOG_FORMAT": "json"},
            base + "/health",
        )  # fmt: skip
        try:
            paths = [sign(f"/rs:fill:300:300/q:80/plain/{origin_base}/{n}@jpg") for n in names]
            for path in paths:
                httpx.get(base + path, timeout=60).raise_for_status()
            paths_file = Path(tmp) / "paths.txt"
            paths_file.write_text("\n".join(paths))
            raw = Path(tmp) / "profile.txt"
            spy = subprocess.Popen(
                [py_spy, "record", "--pid", str(first_worker(server.pid)), "--duration",
                 str(args.duration),
                 "--rate", "250", "--format", "raw", "--output", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            subprocess.run(
                [wrk, "-t2", f"-c{args.connections}", f"-d{args.duration}s", "-s",
                 str(HERE / "report.lua"), base, "--", str(paths_file), "2"],
                check=True, capture_output=True,
            )  # fmt: skip
            spy.wait(timeout=60)
            print_layers(raw.read_text())
        finally:
            stop(server)
            stop(origin)
    return 0


def print_layers(raw: str) -> None:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    idle = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        if frames and "select (selectors.py" in frames[-1]:
            idle += count  # waiting in epoll: no request to work on
        if frames:
            own[frames[-1]] += count
        for layer, needle in LAYERS.items():
            if any(needle in frame for frame in frames):
                inclusive[layer] += count
    busy = total - idle
    print(f"samples: {total}, in epoll wait: {idle} ({idle / total:.0%}), busy: {busy}\n")
    print("| layer | share of busy samples (inclusive) |\n|---|---|")
    for layer, _needle in LAYERS.items():
        print(f"| {layer} | {inclusive[layer] / busy:.1%} |")
    print("\n| function (own time) | share |\n|---|---|")
    for frame, count in own.most_common(15):
        print(f"| {frame[:90]} | {count / busy:.1%} |")


if __name__ == "__main__":
    raise SystemExit(main())
