"""s3://, gs:// and abs:// sources and the result store, against real emulators on loopback.

Every scheme: a resize from a bucket object (pixels checked against pyvips),
a missing object and bucket, wrong credentials, an object over the size limit,
and the result store's round trip. S3 also: versions, coalescing, allowed
sources, a store that never answers, and a second process served from the
first one's results.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from proxy.result_store import result_attributes
from proxy.settings import SettingsError
from tests.conftest import KEY, SALT, make_settings, signed
from tests.emulators import (
    AzureServer,
    GcsServer,
    S3Server,
    azurite,
    fake_gcs,
    free_port,
    moto_s3,
)
from tests.images import decode, encode, gradient, mean_abs_difference, quadrants
from tests.servers import Origin, running_apps, serve_pixelpipe, wait_until_serving

_names = itertools.count()
PHOTO = gradient(320, 240)
PHOTO_JPEG = encode(PHOTO, "jpg", Q=95)


@dataclass
class Backend:
    """One storage service as the tests use it."""

    scheme: str
    settings: dict[str, object]
    env: dict[str, str]
    put: Callable[[str, str, bytes, str], object]
    wrong_credentials: tuple[dict[str, object], dict[str, str]] | None
    put_result: Callable[[str, str, bytes, dict[str, str]], object] | None = None
    buckets: dict[str, str] = field(default_factory=dict)

    def url(self, key: str, bucket: str = "photos") -> str:
        return f"{self.scheme}://{self.buckets[bucket]}/{key}"

    def serve(
        self, monkeypatch: pytest.MonkeyPatch, **overrides: object
    ) -> AbstractContextManager[str]:
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)
        return serve_pixelpipe(make_settings(**(self.settings | overrides)))


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="module")
def gcs() -> Iterator[GcsServer]:
    with fake_gcs() as server:
        yield server


@pytest.fixture(scope="module")
def azure() -> Iterator[AzureServer]:
    with azurite() as server:
        yield server


def s3_backend(server: S3Server) -> Backend:
    backend = Backend(
        "s3",
        {"use_s3": True, "s3_endpoint": server.endpoint, "s3_region": "us-east-1"},
        server.env(),
        lambda bucket, key, body, content_type: server.put(bucket, key, body, content_type),
        ({}, server.env(secret_key="not-the-secret")),
    )
    for bucket in ("photos", "results"):
        backend.buckets[bucket] = name = f"{bucket}-{next(_names)}"
        server.create_bucket(name)
    return backend


def gcs_backend(server: GcsServer) -> Backend:
    backend = Backend(
        "gs",
        {"use_gcs": True, "gcs_key": server.key, "gcs_endpoint": server.endpoint},
        {},
        lambda bucket, key, body, content_type: server.put(bucket, key, body, content_type),
        None,  # fake-gcs-server accepts any credentials
        lambda bucket, key, body, meta: server.put(
            bucket, key, body, meta.pop("Content-Type"), meta
        ),
    )
    for bucket in ("photos", "results"):
        backend.buckets[bucket] = name = f"{bucket}-{next(_names)}"
        server.create_bucket(name)
    return backend


def azure_backend(server: AzureServer) -> Backend:
    settings = {
        "use_abs": True,
        "abs_name": server.account,
        "abs_key": server.key,
        "abs_endpoint": server.endpoint,
    }
    wrong_key = base64.b64encode(b"w" * 32).decode()
    backend = Backend(
        "abs",
        settings,
        {},
        lambda bucket, key, body, content_type: server.put(bucket, key, body, content_type),
        ({"abs_key": wrong_key}, {}),
    )
    for bucket in ("photos", "results"):
        backend.buckets[bucket] = name = f"{bucket}-{next(_names)}"
        server.create_container(name)
    return backend


@pytest.fixture(params=["s3", "gs", "abs"])
def backend(request: pytest.FixtureRequest) -> Backend:
    build = {"s3": s3_backend, "gs": gcs_backend, "abs": azure_backend}[request.param]
    server = request.getfixturevalue({"s3": "s3", "gs": "gcs", "abs": "azure"}[request.param])
    return build(server)


def get(base: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(base + signed(path), headers=headers, timeout=30)


# --- every scheme ------------------------------------------------------------


def test_resize_from_a_bucket_object(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    backend.put(backend.buckets["photos"], "dir/cup photo.jpg", PHOTO_JPEG, "image/jpeg")
    url = backend.url("dir/cup%20photo.jpg")
    encoded = base64.urlsafe_b64encode(backend.url("dir/cup photo.jpg").encode()).decode()
    with backend.serve(monkeypatch) as base:
        answer = get(base, f"/rs:fit:160:160/plain/{url}@png")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/png"
        image = decode(answer.content)
        assert (image.width, image.height) == (160, 120)
        expected = decode(PHOTO_JPEG).resize(0.5)
        assert mean_abs_difference(image, expected) < 1.5
        # The base64 form of the same source gives the same result.
        again = get(base, f"/rs:fit:160:160/{encoded}.png")
        assert again.status_code == 200 and again.content == answer.content


def test_missing_object_and_bucket_are_404(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    with backend.serve(monkeypatch) as base:
        missing = get(base, f"/rs:fit:50:50/plain/{backend.url('no/such.jpg')}")
        assert missing.status_code == 404
        assert missing.text.strip() == "source image not found"
        no_bucket = f"{backend.scheme}://no-such-bucket-{next(_names)}/a.jpg"
        assert get(base, f"/rs:fit:50:50/plain/{no_bucket}").status_code == 404
        backend.put(backend.buckets["photos"], "after.jpg", PHOTO_JPEG, "image/jpeg")
        assert get(base, f"/rs:fit:50:50/plain/{backend.url('after.jpg')}").status_code == 200


def test_wrong_credentials_are_403(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    if backend.wrong_credentials is None:
        pytest.skip(
            "fake-gcs-server does not check credentials, so a refused GCS key cannot be "
            "shown here; the 403 mapping is shared with S3 and Azure (tested)"
        )
    backend.put(backend.buckets["photos"], "guarded.jpg", PHOTO_JPEG, "image/jpeg")
    settings, env = backend.wrong_credentials
    backend.env = backend.env | env
    with backend.serve(monkeypatch, **settings) as base:
        answer = get(base, f"/rs:fit:50:50/plain/{backend.url('guarded.jpg')}")
        assert answer.status_code == 403
        assert answer.text.strip() == "access to the source object is denied"
        assert "secret" not in answer.text.lower() and "http" not in answer.text
        assert httpx.get(base + "/health").status_code == 200


def test_object_over_the_size_limit_is_refused(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.put(backend.buckets["photos"], "big.jpg", PHOTO_JPEG, "image/jpeg")
    with backend.serve(monkeypatch, max_src_file_size=len(PHOTO_JPEG) - 1) as base:
        answer = get(base, f"/rs:fit:50:50/plain/{backend.url('big.jpg')}")
        assert answer.status_code == 422
        assert answer.text.strip() == "source image file is too large"


def test_result_store_round_trip(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pod A makes and stores a result; pod B, with empty caches, answers it without work."""
    backend.put(backend.buckets["photos"], "shared.jpg", PHOTO_JPEG, "image/jpeg")
    storage = f"{backend.scheme}://{backend.buckets['results']}/pixelpipe/v1"
    path = signed(f"/rs:fill:80:60/q:70/plain/{backend.url('shared.jpg')}@webp")
    if backend.put_result is not None:
        # fake-gcs-server does not take the XML API upload (PUT /bucket/key) that
        # the client writes with, so the object pod A would write is put here
        # through the JSON API, exactly as ResultStore names and describes it.
        with backend.serve(monkeypatch) as base:
            first = httpx.get(base + path, timeout=30)
            service = running_apps[base].state.service
            _options, key = service.parse_cached(path)
            result = service.cache.get(key)
        name = f"pixelpipe/v1/{_digest(key)}"
        backend.put_result(backend.buckets["results"], name, result.body, result_attributes(result))
    else:
        with backend.serve(monkeypatch, result_storage=storage) as base:
            first = httpx.get(base + path, timeout=30)
            _wait_for_writes(base)
    assert first.status_code == 200
    with backend.serve(monkeypatch, result_storage=storage) as base:
        second = httpx.get(base + path, timeout=30)
        service = running_apps[base].state.service
        assert second.status_code == 200
        assert second.content == first.content
        assert second.headers["etag"] == first.headers["etag"]
        assert second.headers["content-type"] == "image/webp"
        assert second.headers["content-disposition"] == first.headers["content-disposition"]
        assert service.pipeline_runs == 0 and service.fetches == 0
    image = decode(second.content)
    assert (image.width, image.height) == (80, 60)


# --- S3 in particular ----------------------------------------------------------


@pytest.fixture()
def s3_photos(s3: S3Server) -> Backend:
    return s3_backend(s3)


def test_object_versions_are_distinct_sources(
    s3: S3Server, s3_photos: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"versions-{next(_names)}"
    s3.create_bucket(bucket, versioned=True)
    first = s3.put(bucket, "v.png", encode(quadrants(40, 40), "png"), "image/png")
    s3.put(bucket, "v.png", encode(gradient(40, 40), "png"), "image/png")
    assert first
    with s3_photos.serve(monkeypatch) as base:
        # A plain source's query is escaped, as imgproxy asks.
        old = get(base, f"/rs:fit:40:40/plain/s3://{bucket}/v.png%3FversionId%3D{first}@png")
        old_imgproxy = get(base, f"/rs:fit:40:40/plain/s3://{bucket}/v.png%3F{first}@png")
        new = get(base, f"/rs:fit:40:40/plain/s3://{bucket}/v.png@png")
        unknown = get(base, f"/rs:fit:40:40/plain/s3://{bucket}/v.png%3FversionId%3Dnope@png")
    assert old.status_code == new.status_code == 200
    assert old.content == old_imgproxy.content != new.content
    assert decode(old.content)(2, 2)[:3] == [255, 0, 0]  # the quadrants' red corner
    assert unknown.status_code in (404, 400, 502)  # moto: NoSuchVersion/InvalidArgument


def test_concurrent_requests_share_one_download(
    s3_photos: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_photos.put(s3_photos.buckets["photos"], "hot.jpg", PHOTO_JPEG, "image/jpeg")
    url = s3_photos.url("hot.jpg")

    async def many(base: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as session:
            paths = [signed(f"/rs:fit:{20 + n}:{20 + n}/plain/{url}") for n in range(8)]
            return await asyncio.gather(*(session.get(base + path) for path in paths))

    with s3_photos.serve(monkeypatch) as base:
        answers = asyncio.run(many(base))
        assert [a.status_code for a in answers] == [200] * 8
        assert running_apps[base].state.service.fetches == 1


def test_allowed_sources_apply_to_bucket_urls(
    s3_photos: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_photos.put(s3_photos.buckets["photos"], "ok.jpg", PHOTO_JPEG, "image/jpeg")
    allowed = (f"s3://{s3_photos.buckets['photos']}/",)
    with s3_photos.serve(monkeypatch, allowed_sources=allowed) as base:
        assert get(base, f"/rs:fit:30:30/plain/{s3_photos.url('ok.jpg')}").status_code == 200
        other = get(base, f"/rs:fit:30:30/plain/{s3_photos.url('ok.jpg', 'results')}")
        assert other.status_code in (403, 404)
        assert "allowed sources" in other.text


def test_scheme_not_enabled_is_a_clear_404(client: httpx.Client, pixelpipe: str) -> None:
    for url, switch in [("s3://b/k.jpg", "USE_S3"), ("gs://b/k.jpg", "USE_GCS"),
                        ("abs://c/k.jpg", "USE_ABS")]:  # fmt: skip
        answer = client.get(pixelpipe + signed(f"/rs:fit:30:30/plain/{url}"))
        assert answer.status_code == 404
        assert switch in answer.text and answer.text.count("\n") <= 1


@pytest.mark.parametrize("url", ["s3://x/k.jpg", "s3://bad_bucket!/k.jpg", "s3://bucket/"])
def test_malformed_bucket_urls_are_404(
    url: str, s3: S3Server, s3_photos: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    with s3_photos.serve(monkeypatch) as base:
        answer = get(base, f"/rs:fit:30:30/plain/{url}")
        assert answer.status_code == 404
        assert answer.text.startswith("invalid source URL")


@contextmanager
def silent_endpoint() -> Iterator[str]:
    """Accepts connections and reads requests, never answers: a store that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


def test_store_that_never_answers_is_504(
    s3_photos: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        silent_endpoint() as endpoint,
        s3_photos.serve(monkeypatch, s3_endpoint=endpoint, download_timeout=0.5) as base,
    ):
        answer = get(base, "/rs:fit:30:30/plain/s3://photos/slow.jpg")
        assert answer.status_code == 504
        assert answer.text.strip() == "source image download timed out"
        assert httpx.get(base + "/health").status_code == 200


def test_result_store_down_never_fails_a_request(
    s3: S3Server, origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store with nothing listening, then one that never answers: every answer still 200."""
    source = origin.add(f"/store-down-{next(_names)}.jpg", PHOTO_JPEG)
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    dead = f"http://127.0.0.1:{free_port()}"
    with silent_endpoint() as silent:
        for endpoint in (dead, silent):
            settings = make_settings(
                s3_endpoint=endpoint,
                s3_region="us-east-1",
                result_storage="s3://results/p",
                result_storage_timeout=0.3,
            )
            with serve_pixelpipe(settings) as base:
                for size in (30, 31, 32):
                    answer = get(base, f"/rs:fit:{size}:{size}/plain/{source}")
                    assert answer.status_code == 200, answer.text
                    assert decode(answer.content).width == size


def test_a_store_hit_is_put_in_redis_for_the_next_pod(
    s3_photos: Backend, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    from proxy.shared_cache import SharedCache

    s3_photos.put(s3_photos.buckets["photos"], "tiers.jpg", PHOTO_JPEG, "image/jpeg")
    storage = f"s3://{s3_photos.buckets['results']}/tiers"
    path = signed(f"/rs:fill:50:50/plain/{s3_photos.url('tiers.jpg')}")
    with s3_photos.serve(monkeypatch, result_storage=storage) as base:  # no Redis: bucket only
        first = httpx.get(base + path, timeout=30)
        key = running_apps[base].state.service.parse_cached(path)[1]
        _wait_for_writes(base)
    assert not redis.Redis.from_url(redis_url).exists(SharedCache.key(key))
    with s3_photos.serve(monkeypatch, result_storage=storage, redis_url=redis_url) as base:
        second = httpx.get(base + path, timeout=30)
        service = running_apps[base].state.service
        assert service.pipeline_runs == 0
        deadline = time.monotonic() + 10  # the Redis write is in the background
        while not redis.Redis.from_url(redis_url).exists(SharedCache.key(key)):
            assert time.monotonic() < deadline, "the store hit never reached Redis"
            time.sleep(0.02)
    assert second.content == first.content


def test_two_processes_share_one_bucket(
    s3: S3Server, s3_photos: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second is a real `pixelpipe serve` process: it answers from the bucket, no work."""
    s3_photos.put(s3_photos.buckets["photos"], "pod.jpg", PHOTO_JPEG, "image/jpeg")
    storage = f"s3://{s3_photos.buckets['results']}/pods"
    path = signed(f"/rs:fill:64:48/plain/{s3_photos.url('pod.jpg')}@avif")
    with s3_photos.serve(monkeypatch, result_storage=storage) as base:
        first = httpx.get(base + path, timeout=30)
        _wait_for_writes(base)
    assert first.status_code == 200
    port = free_port()
    env = {
        **os.environ,
        **s3.env(),
        "PIXELPIPE_KEY": KEY,
        "PIXELPIPE_SALT": SALT,
        "PIXELPIPE_PORT": str(port),
        "PIXELPIPE_WORKERS": "1",
        "PIXELPIPE_USE_S3": "true",
        "PIXELPIPE_S3_ENDPOINT": s3.endpoint,
        "PIXELPIPE_S3_REGION": "us-east-1",
        "PIXELPIPE_RESULT_STORAGE": storage,
        "PIXELPIPE_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen([sys.executable, "-m", "proxy", "serve"], env=env)
    try:
        pod_b = f"http://127.0.0.1:{port}"
        wait_until_serving(pod_b, process)
        second = httpx.get(pod_b + path, timeout=30)
        metrics = httpx.get(pod_b + "/metrics").text
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert second.status_code == 200 and second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert 'pixelpipe_result_store_total{outcome="hit"} 1.0' in metrics
    assert "pixelpipe_processing_duration_seconds_count 0.0" in metrics
    # Ended by our SIGTERM (uvicorn re-raises it after a graceful shutdown), not by an abort.
    assert process.returncode in (0, -signal.SIGTERM)


def test_bad_storage_configuration_stops_the_server_at_start() -> None:
    from proxy.app import create_app

    with pytest.raises(SettingsError, match="S3_ASSUME_ROLE_ARN"):
        create_app(make_settings(use_s3=True, s3_assume_role_arn="arn:aws:iam::1:role/r"))
    with pytest.raises(SettingsError, match="USE_GCS"):
        create_app(make_settings(use_gcs=True, gcs_key='{"not": "a key"}'))


# --- helpers -------------------------------------------------------------------


def _digest(key: str) -> str:
    from proxy.shared_cache import result_digest

    return result_digest(key)


def _wait_for_writes(base: str) -> None:
    """Until the server's result store has no write queued or running."""
    store = running_apps[base].state.service.store
    deadline = time.monotonic() + 30
    while store.pending:
        assert time.monotonic() < deadline, "result store writes did not finish"
        time.sleep(0.02)
