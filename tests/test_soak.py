"""Faults under load, the short form of bench/soak.py: nothing broken is served, nothing lost.

A real `pixelpipe serve` with 2 workers and a real redis-server, loaded by 8
keep-alive clients for 20 s from an origin that fails 10% of downloads at
random (503, reset, truncated with and without a length, drip-fed); meanwhile
a worker is SIGKILLed twice and Redis is stopped for 6 s. Every answer is
judged (tests.soak.judge); no time is asserted.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import pyvips
import redis

from tests.conftest import signed
from tests.images import encode, photo_like, with_alpha
from tests.ports import free_port
from tests.servers import FAULTS, Origin, RedisServer
from tests.soak import (
    LoadResult,
    Request,
    image_problem,
    kill_a_worker,
    pixelpipe_process,
    run_load,
    worker_pids,
    zipf_weights,
)
from tests.test_cli import PIXELPIPE, serve_env

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    REDIS is None, reason="redis-server is not installed (make test installs it): SKIPPING"
)
# The answers each origin fault must give, when the download is not already cached.
FAULT_STATUS = {"5xx": 502, "reset": 502, "truncated": 502, "truncated-eof": 422, "drip": 504}
OPTIONS = ("rs:fit:300:300", "rs:fill:200:200/q:70", "rs:fit:400:0/bl:2", "rs:fit:160:160")
FORMATS = ("jpg", "webp", "avif", "png")


class Rig:
    def __init__(self, origin: Origin, redis_server: RedisServer, base: str, pid: int) -> None:
        self.origin, self.redis, self.base, self.pid = origin, redis_server, base, pid
        self.good: list[str] = []
        self.large: list[str] = []
        self.bad: list[tuple[str, str]] = []  # (kind, source URL)


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    origin = Origin(seed=7).start()
    with (
        tempfile.TemporaryDirectory() as workdir,
        RedisServer(str(REDIS), free_port(), workdir) as redis_server,
    ):
        port = free_port()
        env = serve_env(
            PIXELPIPE_REDIS_URL=redis_server.url,
            PIXELPIPE_DOWNLOAD_TIMEOUT="2",
            PIXELPIPE_MAX_SRC_FILE_SIZE=str(1_500_000),
            PIXELPIPE_LOG_LEVEL="error",
            PIXELPIPE_ACCESS_LOG="false",
        )
        with pixelpipe_process(PIXELPIPE, env, port, workers=2) as process:
            rig = Rig(origin, redis_server, f"http://127.0.0.1:{port}", process.pid)
            for seed in range(6):
                image = photo_like(640 + 40 * seed, 480, seed=seed)
                rig.good.append(origin.add(f"/good/{seed}.jpg", encode(image, "jpg", Q=90)))
            rig.good.append(
                origin.add(
                    "/good/alpha.png", encode(with_alpha(photo_like(), 180), "png"), "image/png"
                )
            )
            rig.large.append(
                origin.add("/large/0.jpg", encode(photo_like(2400, 1600), "jpg", Q=85))
            )
            whole = encode(photo_like(640, 480, seed=9), "jpg", Q=90)
            garbage = b"\xff\xd8\xff\xe0" + random.Random(1).randbytes(20_000)  # a JPEG's start
            noisy = encode(photo_like(1600, 1600, grain=40), "png")  # over 1.5 MB
            rig.bad += [
                ("truncated", origin.add("/bad/truncated.jpg", whole[: len(whole) // 2])),
                ("corrupt", origin.add("/bad/corrupt.jpg", garbage)),
                ("wrong-type", origin.add("/bad/page.jpg", b"<html>hello</html>", "text/html")),
                ("oversized", origin.add("/bad/huge.png", noisy, "image/png")),
            ]
            for fault in FAULTS:
                rig.bad.append(
                    (f"origin-{fault}", origin.add(f"/fault/{fault}.jpg", whole, fault=fault))
                )
            yield rig
    origin.stop()


def picker(rig: Rig, run: int):
    """Zipf over the good URLs, 10% large, 8% bad inputs and origin faults, 30% cache-busted."""
    good = [f"/{o}/plain/{u}@{f}" for u in rig.good for o in OPTIONS for f in FORMATS]
    weights = zipf_weights(len(good))
    busted = iter(range(10**9))

    def pick(rng: random.Random) -> Request:
        roll = rng.random()
        if roll < 0.08:
            kind, url = rng.choice(rig.bad)
            return Request(signed(f"/rs:fit:300:300/plain/{url}@jpg"), f"bad:{kind}")
        if roll < 0.18:
            url = rng.choice(rig.large)
            return Request(
                signed(f"/rs:fit:1200:1200/plain/{url}%3Fr={run}-{next(busted)}@jpg"), "large"
            )
        path = rng.choices(good, weights)[0]
        if rng.random() < 0.3:  # a new source URL: a download the origin may fail
            source, fmt = path.rsplit("@", 1)
            path = f"{source}%3Fr={run}-{next(busted)}@{fmt}"  # an escaped query
        return Request(signed(path), "good")

    return pick


def test_faults_under_load_lose_nothing_and_serve_nothing_broken(rig: Rig) -> None:
    rig.origin.fault_rate = 0.1
    kills: list[float] = []
    rng = random.Random(3)
    killed: list[int] = []

    async def scenario() -> LoadResult:
        load = asyncio.create_task(
            run_load(rig.base, picker(rig, random.randrange(10**9)), 20, connections=8, seed=5)
        )
        loop_start = asyncio.get_running_loop().time()

        async def at(second: float) -> None:
            await asyncio.sleep(max(0.0, second - (asyncio.get_running_loop().time() - loop_start)))

        await at(4)
        killed.append(kill_a_worker(rig.pid, rng))
        kills.append(asyncio.get_running_loop().time() - loop_start)
        await at(7)
        await asyncio.to_thread(rig.redis.stop)
        await at(13)
        await asyncio.to_thread(rig.redis.start)
        await at(16)
        killed.append(kill_a_worker(rig.pid, rng))
        kills.append(asyncio.get_running_loop().time() - loop_start)
        return await load

    result = asyncio.run(scenario())
    rig.origin.fault_rate = 0.0
    verdicts = result.verdicts()
    statuses = Counter((o.kind, o.status) for o in result.outcomes)
    print("\nverdicts", dict(verdicts), "\nby kind and status", dict(statuses))
    print("origin faults injected", dict(rig.origin.faults), "kills at", kills)
    assert not result.broken(), result.broken()[:5]
    assert not any(o.status == 500 for o in result.outcomes)
    # Only requests in flight on a killed worker may go unanswered.
    assert not result.dropped_outside(kills), result.dropped_outside(kills)[:5]
    assert verdicts["ok"] > 50
    # Good sources are refused only when the origin cut one short without a
    # length (then the truncation shows only to the decoder: 422).
    served = {(o.verdict, o.status) for o in result.outcomes if o.kind in ("good", "large")}
    assert {v for v, status in served if status != 422} <= {
        "ok",
        "not-modified",
        "fault",
        "dropped",
    }
    for kind, status in FAULT_STATUS.items():
        seen = {o.status for o in result.outcomes if o.kind == f"bad:origin-{kind}"}
        assert seen <= {status, 503, 0}, (kind, seen)
    # Bad inputs are refused with a 4xx (or, under overload, 503).
    for kind in ("truncated", "corrupt", "wrong-type", "oversized"):
        seen = {o.verdict for o in result.outcomes if o.kind == f"bad:{kind}"}
        assert seen <= {"refused", "fault", "dropped"}, (kind, seen)
    # Every random fault mode happened during the run.
    assert set(rig.origin.faults) == set(FAULTS), rig.origin.faults
    # The supervisor replaced the killed workers; the server answers the next request.
    # Its health check runs every few seconds: a kill 4 s before the load ended
    # may still be listed (unreaped) when the load returns, so wait for it.
    deadline = time.monotonic() + 30
    pids = worker_pids(rig.pid)
    while (len(pids) != 2 or set(pids) & set(killed)) and time.monotonic() < deadline:
        time.sleep(0.2)
        pids = worker_pids(rig.pid)
    assert len(pids) == 2 and not set(pids) & set(killed)
    fresh = signed(f"/rs:fit:100:100/plain/{rig.good[0]}%3Fafter@png")
    answer = httpx.get(rig.base + fresh, timeout=30)
    assert answer.status_code == 200 and not image_problem("image/png", answer.content)
    # Redis came back and is written to again.
    assert redis.Redis.from_url(rig.redis.url).dbsize() > 0


@pytest.mark.parametrize("fault", ["truncated", "truncated-eof", "drip", "5xx", "reset"])
def test_a_failed_download_is_never_cached(rig: Rig, fault: str) -> None:
    """The same URL after the origin recovers: the whole image, not a remembered failure."""
    whole = encode(photo_like(500, 400, seed=11), "jpg", Q=90)
    url = rig.origin.add(f"/once/{fault}.jpg", whole, fault=fault)
    path = signed(f"/rs:fit:200:200/plain/{url}@png")
    with httpx.Client(timeout=30) as client:
        failed = client.get(rig.base + path)
        assert failed.status_code == FAULT_STATUS[fault], failed.text
        rig.origin.routes[url.removeprefix(rig.origin.base)].fault = ""
        # Both workers (connections land on either): neither may remember the failure.
        for _ in range(4):
            with httpx.Client(timeout=30) as fresh_connection:
                answer = fresh_connection.get(rig.base + path)
            assert answer.status_code == 200, answer.text
    expected = pyvips.Image.thumbnail_buffer(whole, 200, height=200)
    got = pyvips.Image.new_from_buffer(answer.content, "")
    assert (got.width, got.height) == (expected.width, expected.height)
    assert abs(got.avg() - expected.avg()) < 1.0
