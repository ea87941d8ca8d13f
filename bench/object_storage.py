"""Object storage side by side: S3 sources against HTTP sources, result-store hits against Redis.

    .venv/bin/python bench/object_storage.py [--corpus ../shared/corpus] [--rounds 3]
        [--only sources,hits]

Starts on loopback: an HTTP origin and moto's S3 server over the same
2560x1600 JPEGs, a redis-server, and `pixelpipe serve` (2 workers). In one
run, alternating rounds:

- W1 (300x300 fill JPEG q80, cold: every path has this run's cachebuster)
  with the source over HTTP and from S3, once as `bench/run.py` runs it
  (the source cache on: a source is downloaded once) and once with the source
  cache off, so every request downloads its 0.5-1.5 MB original.
- result hits from the shared tiers with the in-process result cache off:
  every request a Redis hit, or every request a result-store (S3) hit; and,
  as the ceiling of the second, the same objects fetched straight from moto
  by obstore in 2 processes (as the 2 workers) with as many requests in flight.

moto is a Python server: its speed, not S3's, bounds the S3 rows; what the
rows show is the cost pixelpipe adds on top.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.run import ensure_wrk, free_port, run_wrk, server_env, sign, start_origin, stop  # noqa: E402
from bench.runtime import SEED, big_sources, start_pixelpipe, warm  # noqa: E402

BIN = Path(sys.executable).parent
ACCESS_KEY, SECRET_KEY = "AKIAEXAMPLEBENCH", "example-secret-for-moto"  # moto checks no keys here


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(endpoint + "/moto-api/", timeout=1)
            return process, endpoint
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("moto did not start")


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is needed (make test installs it)")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return process, f"redis://127.0.0.1:{port}/0"


def upload(endpoint: str, directory: Path, names: list[str]) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    for bucket in ("photos", "results"):
        client.create_bucket(Bucket=bucket)
    for name in names:
        client.put_object(
            Bucket="photos",
            Key=name,
            Body=(directory / name).read_bytes(),
            ContentType="image/jpeg",
        )


def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "rate": statistics.median(r["rate"] for r in runs),
        "p50_ms": statistics.median(r["p50_us"] for r in runs) / 1000,
        "p99_ms": statistics.median(r["p99_us"] for r in runs) / 1000,
        "errors": sum(r["non_2xx"] + r["socket_errors"] for r in runs),
        "rates": [round(r["rate"], 1) for r in runs],
    }


def sources(
    origin: str, big: list[str], env: dict[str, str], wrk: str, seconds: int, rounds: int
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for cache, extra in (
        ("source cache on", {}),
        ("source cache off", {"PIXELPIPE_SOURCE_CACHE_BYTES": "0"}),
    ):
        process, base = start_pixelpipe(env | extra)
        try:
            runs: dict[str, list[dict[str, float]]] = {"http": [], "s3": []}
            for r in range(rounds):
                for label, prefix in (("http", origin), ("s3", "s3://photos")):
                    paths = [
                        sign(
                            f"/rs:fill:300:300/q:80/cb:{SEED}-{cache.split()[-1]}-{label}-{r}-{i}"
                            f"/plain/{prefix}/{big[i % len(big)]}@jpg"
                        )
                        for i in range(20_000)
                    ]
                    runs[label].append(run_wrk(wrk, base, paths, 8, seconds))
            entry = {label: summary(rs) for label, rs in runs.items()}
            entry["ratio"] = entry["s3"]["rate"] / entry["http"]["rate"]
            results[cache] = entry
            print(f"{cache}: {entry}", file=sys.stderr)
        finally:
            stop(process)
    return results


def hit_paths(origin: str, big: list[str]) -> list[str]:
    return [
        sign(f"/rs:fill:{w}:{w}/q:80/cb:{SEED}-hits/plain/{origin}/{name}@jpg")
        for w in (200, 240, 280, 320)
        for name in big
    ]


def shared_hits(
    origin: str,
    big: list[str],
    env: dict[str, str],
    redis_url: str,
    wrk: str,
    seconds: int,
    rounds: int,
) -> dict[str, Any]:
    no_memory = {"PIXELPIPE_RESULT_CACHE_BYTES": "0"}
    tiers = {
        "redis": env | no_memory | {"PIXELPIPE_REDIS_URL": redis_url},
        "result store": env | no_memory | {"PIXELPIPE_RESULT_STORAGE": "s3://results/bench"},
    }
    paths = hit_paths(origin, big)
    servers = {}
    results: dict[str, Any] = {}
    try:
        for label, tier_env in tiers.items():
            servers[label] = start_pixelpipe(tier_env)
            warm(servers[label][1], paths, 1)
        time.sleep(3)  # the background writes to the bucket end
        runs: dict[str, list[dict[str, float]]] = {label: [] for label in tiers}
        raw: list[dict[str, float]] = []
        for _ in range(rounds):
            for label, (_process, base) in servers.items():
                runs[label].append(run_wrk(wrk, base, paths, 32, seconds))
            raw.append(raw_store_rate(env["PIXELPIPE_S3_ENDPOINT"], seconds))
        for label, rs in runs.items():
            results[label] = summary(rs)
        results["raw obstore GETs from moto, 2 processes x 16 in flight"] = {
            key: statistics.median(r[key] for r in raw) for key in ("rate", "p50_ms", "p99_ms")
        } | {"rates": [round(r["rate"], 1) for r in raw]}
        metrics = httpx.get(servers["result store"][1] + "/metrics").text
        results["store_outcomes"] = [
            line for line in metrics.splitlines() if line.startswith("pixelpipe_result_store_total")
        ]
    finally:
        for process, _base in servers.values():
            stop(process)
    print(f"hits: {results}", file=sys.stderr)
    return results


def raw_store_rate(endpoint: str, seconds: int) -> dict[str, float]:
    """The ceiling of a result-store hit: the same GETs, no server, 2 processes x 16 in flight."""
    with ProcessPoolExecutor(2) as pool:
        parts = list(pool.map(_raw_gets, [endpoint] * 2, [seconds] * 2, [16] * 2))
    latencies = sorted(value for part in parts for value in part["latencies"])
    return {
        "rate": sum(part["rate"] for part in parts),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def _raw_gets(endpoint: str, seconds: int, in_flight: int) -> dict[str, Any]:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        "results",
        endpoint=endpoint,
        region="us-east-1",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        client_options={"allow_http": True},
    )

    async def run() -> dict[str, Any]:
        keys = [item["path"] for batch in obstore.list(store, prefix="bench") for item in batch]
        assert keys, "no results were written to the bucket"
        done = 0
        latencies: list[float] = []
        deadline = time.monotonic() + seconds

        async def worker(offset: int) -> None:
            nonlocal done
            index = offset
            while time.monotonic() < deadline:
                started = time.perf_counter()
                found = await obstore.get_async(store, keys[index % len(keys)])
                await found.bytes_async()
                latencies.append(time.perf_counter() - started)
                done += 1
                index += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(n) for n in range(in_flight)))
        return {"rate": done / (time.monotonic() - started), "latencies": latencies}

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, help="a directory of real photos (../shared/corpus)")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--only", default="sources,hits")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    wrk = ensure_wrk()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"seed": SEED}
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp)
        big = big_sources(images, args.corpus)
        origin_process, origin = start_origin(images)
        moto_process, endpoint = start_moto()
        redis_process, redis_url = start_redis()
        try:
            upload(endpoint, images, big)
            env = server_env() | {
                "PIXELPIPE_USE_S3": "true",
                "PIXELPIPE_S3_ENDPOINT": endpoint,
                "PIXELPIPE_S3_REGION": "us-east-1",
                "PIXELPIPE_REQUESTS_QUEUE_SIZE": "256",
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            }
            if "sources" in parts:
                results["sources"] = sources(origin, big, env, wrk, args.seconds, args.rounds)
            if "hits" in parts:
                results["hits"] = shared_hits(
                    origin, big, env, redis_url, wrk, args.seconds, args.rounds
                )
        finally:
            for process in (origin_process, moto_process, redis_process):
                stop(process)
    (args.out / "object_storage.json").write_text(json.dumps(results, indent=1, default=float))
    print(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
