"""Coalescing, the source cache and the shared Redis tier, with a real redis-server."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import redis

from proxy.cache import CachedResult
from proxy.shared_cache import SharedCache, decode_result, encode_result
from tests.conftest import make_settings, signed
from tests.images import decode, encode, gradient, quadrants
from tests.ports import free_port
from tests.servers import Origin, serve_pixelpipe

_names = itertools.count()
IMAGE = encode(gradient(120, 80), "jpg")


def _service(app_base: str):  # type: ignore[no-untyped-def]
    from tests.servers import running_apps

    return running_apps[app_base].state.service


async def _many(base: str, path: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=count)) as s:
        return await asyncio.gather(*(s.get(base + path) for _ in range(count)))


def test_fifty_identical_requests_cost_one_fetch_and_one_pipeline_run(origin: Origin) -> None:
    # The fifty requests must all arrive while the one download is in flight:
    # a second's delay leaves room for a busy CI machine (0.3 s was tight).
    url = origin.add(f"/coalesce/{next(_names)}.jpg", IMAGE, delay=1.0)
    path = signed(f"/rs:fill:50:50/plain/{url}")
    with serve_pixelpipe(make_settings(requests_queue_size=0, concurrency=1)) as base:
        responses = asyncio.run(_many(base, path, 50))
        service = _service(base)
        assert {r.status_code for r in responses} == {200}
        assert len({r.content for r in responses}) == 1
        assert origin.hits[url.removeprefix(origin.base)] == 1
        assert service.pipeline_runs == 1
        assert service.result_flights.started == 1 and service.result_flights.joined == 49


def test_concurrent_different_options_share_one_download(origin: Origin) -> None:
    # The four requests must all arrive while the one download is in flight:
    # a second's delay leaves room for a busy CI machine (0.3 s was tight).
    url = origin.add(f"/coalesce/{next(_names)}.jpg", IMAGE, delay=1.0)

    async def run(base: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as s:
            paths = [signed(f"/w:{w}/plain/{url}") for w in (10, 20, 30, 40)]
            return await asyncio.gather(*(s.get(base + p) for p in paths))

    with serve_pixelpipe(make_settings()) as base:
        responses = asyncio.run(run(base))
        assert [decode(r.content).width for r in responses] == [10, 20, 30, 40]
        assert origin.hits[url.removeprefix(origin.base)] == 1
        assert _service(base).pipeline_runs == 4


def test_the_same_bytes_at_two_urls_are_stored_once(client: httpx.Client, origin: Origin) -> None:
    data = encode(quadrants(90, 60), "png")
    first = origin.add(f"/dup/a/{next(_names)}.png", data, "image/png")
    second = origin.add(f"/dup/b/{next(_names)}.png", data, "image/png")
    with serve_pixelpipe(make_settings()) as base:
        client.get(base + signed(f"/w:10/plain/{first}"))
        cache = _service(base).source_cache
        stored = cache.size_bytes
        client.get(base + signed(f"/w:10/plain/{second}"))
        assert cache.size_bytes == stored  # one copy of the bytes
        again = client.get(base + signed(f"/w:20/plain/{second}"))
        assert decode(again.content).width == 20
        assert origin.hits[second.removeprefix(origin.base)] == 1


def test_shared_tier_lets_a_second_pod_skip_the_work(
    client: httpx.Client, origin: Origin, redis_url: str
) -> None:
    url = origin.add(f"/shared/{next(_names)}.jpg", IMAGE)
    path = signed(f"/rs:fit:60:60/plain/{url}")
    with serve_pixelpipe(make_settings(redis_url=redis_url)) as pod_a:
        first = client.get(pod_a + path)
        asyncio.run(_flush(pod_a))
    with serve_pixelpipe(make_settings(redis_url=redis_url)) as pod_b:
        second = client.get(pod_b + path)
        service = _service(pod_b)
        assert service.pipeline_runs == 0 and service.fetches == 0
        assert service.shared.hits == 1
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    assert origin.hits[url.removeprefix(origin.base)] == 1
    ttl = redis.Redis.from_url(redis_url).ttl(SharedCache.key(_canonical(path)))
    assert 0 < ttl <= 86400


def test_large_results_are_not_stored_in_redis(
    client: httpx.Client, origin: Origin, redis_url: str
) -> None:
    url = origin.add(f"/shared/{next(_names)}.jpg", IMAGE)
    path = signed(f"/plain/{url}@png")
    with serve_pixelpipe(make_settings(redis_url=redis_url, redis_max_item_bytes=100)) as base:
        assert client.get(base + path).status_code == 200
        asyncio.run(_flush(base))
    assert not redis.Redis.from_url(redis_url).exists(SharedCache.key(_canonical(path)))


def test_redis_down_serves_uncached(client: httpx.Client, origin: Origin) -> None:
    url = origin.add(f"/shared/{next(_names)}.jpg", IMAGE)
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with serve_pixelpipe(make_settings(redis_url=dead)) as base:
        for width in (10, 20, 30):
            response = client.get(base + signed(f"/w:{width}/plain/{url}"))
            assert response.status_code == 200
            assert decode(response.content).width == width
        shared = _service(base).shared
        assert shared.errors >= 1
        # after one failure the tier rests: later requests do not wait on Redis again
        assert shared.errors <= 2


def test_slow_redis_serves_uncached(client: httpx.Client, origin: Origin, redis_url: str) -> None:
    url = origin.add(f"/shared/{next(_names)}.jpg", IMAGE)
    blocker = redis.Redis.from_url(redis_url)
    settings = make_settings(redis_url=redis_url, redis_timeout=0.1)
    with serve_pixelpipe(settings) as base:
        import threading

        sleeper = threading.Thread(target=lambda: blocker.execute_command("DEBUG", "SLEEP", "1.0"))
        sleeper.start()
        time.sleep(0.1)
        response = client.get(base + signed(f"/w:15/plain/{url}"))
        sleeper.join()
        assert response.status_code == 200
        assert _service(base).shared.errors >= 1


def test_result_blob_round_trip() -> None:
    result = CachedResult(b"\x00\x01body\n", "image/png", '"e"', 'inline; filename="cup.png"')
    assert decode_result(encode_result(result)) == result
    assert decode_result(b"garbage") is None
    assert decode_result(b"pixelpipe-result-v2\n{not json}\nbody") is None


def _canonical(signed_path: str) -> str:
    from proxy.options import ParserConfig, parse_options, split_path
    from proxy.settings import Settings

    settings = Settings()
    split = split_path(signed_path)
    config = ParserConfig(quality=settings.quality, format_quality=settings.format_quality)
    return parse_options(
        split.option_segments, split.source_url, split.extension, config
    ).canonical()


async def _flush(base: str) -> None:
    service = _service(base)
    if service.shared is not None:
        # The writes run on the server's loop; give them a moment to land.
        for _ in range(50):
            if not service.shared._writes:
                return
            await asyncio.sleep(0.02)
