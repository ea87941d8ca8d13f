"""What operators rely on: /metrics, request ids, JSON logs, readiness, CDN caching headers.

In-process tests read the counters of the real app served by uvicorn in a
thread; the multi-worker tests start `pixelpipe serve --workers 2` as a user
would and read its metrics port and its log lines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.http_headers import CachePolicy, error_caching, response_caching
from proxy.monitoring import error_kind
from proxy.observability import format_label
from proxy.readiness import Readiness
from tests.conftest import ServerFactory, signed
from tests.images import decode, encode, gradient, photo_like, quadrants, with_odd_resolution_unit
from tests.ports import free_port
from tests.servers import Origin, wait_until_serving
from tests.test_cli import PIXELPIPE, serve_env

JPEG = encode(quadrants(160, 120), "jpg")


def scrape(client: httpx.Client, url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics answer: (name, sorted labels) -> value."""
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# --- /metrics ----------------------------------------------------------------


def test_metrics_count_known_requests(
    pixelpipe_with: ServerFactory, origin: Origin, client: httpx.Client
) -> None:
    url = origin.add("/ops/metrics.jpg", JPEG)
    missing = origin.base + "/ops/missing.jpg"
    path = signed(f"/rs:fit:80:60/plain/{url}")
    with pixelpipe_with() as base:
        before = scrape(client, base + "/metrics")
        bodies = [client.get(base + path) for _ in range(3)]
        assert [r.status_code for r in bodies] == [200, 200, 200]
        not_found = client.get(base + signed(f"/rs:fit:80:60/plain/{missing}"))
        assert not_found.status_code == 404
        client.get(base + "/health")  # probes are not requests
        after = scrape(client, base + "/metrics")

    assert moved(before, after, "pixelpipe_requests_total", status="200", format="jpeg") == 3
    assert moved(before, after, "pixelpipe_requests_total", status="404", format="none") == 1
    # One miss produced the result, two were answered from memory.
    assert moved(before, after, "pixelpipe_cache_lookups_total", tier="memory", outcome="hit") == 2
    assert moved(before, after, "pixelpipe_cache_lookups_total", tier="memory", outcome="miss") == 2
    assert moved(before, after, "pixelpipe_cache_lookups_total", tier="source", outcome="miss") == 2
    assert moved(before, after, "pixelpipe_fetch_duration_seconds_count") == 1
    assert moved(before, after, "pixelpipe_processing_duration_seconds_count") == 1
    assert moved(before, after, "pixelpipe_request_duration_seconds_count") == 4
    assert moved(before, after, "pixelpipe_source_bytes_total") == len(JPEG)
    sent = sum(len(r.content) for r in bodies) + len(not_found.content)
    assert moved(before, after, "pixelpipe_response_bytes_total") == sent
    assert moved(before, after, "pixelpipe_source_errors_total", kind="source_not_found") == 1
    # Nothing is running or queued once the answers are in.
    assert value(after, "pixelpipe_jobs_running") == 0
    assert value(after, "pixelpipe_jobs_queued") == 0


def test_metrics_count_undecodable_sources_by_kind(
    pixelpipe_with: ServerFactory, origin: Origin, client: httpx.Client
) -> None:
    url = origin.add("/ops/not-an-image.jpg", b"<html>hello</html>", "image/jpeg")
    with pixelpipe_with() as base:
        before = scrape(client, base + "/metrics")
        assert client.get(base + signed(f"/w:10/plain/{url}")).status_code == 422
        after = scrape(client, base + "/metrics")
    assert moved(before, after, "pixelpipe_source_errors_total", kind="not_an_image") == 1
    assert moved(before, after, "pixelpipe_requests_total", status="422", format="none") == 1


def test_jobs_running_and_queued_gauges(
    pixelpipe_with: ServerFactory, origin: Origin, client: httpx.Client
) -> None:
    """One processing thread, two slow AVIF encodes: one runs while the other waits."""
    # 400x300 at speed 2: about 2 s an encode here (800x600 took 6 s).
    body = encode(photo_like(400, 300, grain=8), "png")
    first = origin.add("/ops/slow-a.png", body, "image/png")
    second = origin.add("/ops/slow-b.png", body, "image/png")

    def seen(base: str, running: int, queued: int) -> bool:
        # Polled, not timed: each encode lasts seconds at AVIF speed 2.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            samples = scrape(client, base + "/metrics")
            now = (
                value(samples, "pixelpipe_jobs_running"),
                value(samples, "pixelpipe_jobs_queued"),
            )
            if now == (running, queued):
                return True
            time.sleep(0.02)
        return False

    # TIMEOUT well past two slow encodes: under the parallel suite the second,
    # queued behind the first, passed the 10 s default and answered 503.
    with (
        pixelpipe_with(concurrency=1, avif_speed=2, timeout=120.0) as base,
        ThreadPoolExecutor(2) as pool,
    ):
        answers = [pool.submit(httpx.get, base + signed(f"/f:avif/plain/{first}"), timeout=120)]
        assert seen(base, running=1, queued=0)
        answers.append(
            pool.submit(httpx.get, base + signed(f"/f:avif/plain/{second}"), timeout=120)
        )
        assert seen(base, running=1, queued=1)
        assert [answer.result().status_code for answer in answers] == [200, 200]
        assert seen(base, running=0, queued=0)


def test_metrics_port_setting_takes_metrics_off_the_main_port(
    pixelpipe_with: ServerFactory, client: httpx.Client
) -> None:
    with pixelpipe_with(metrics_port=free_port()) as base:
        # /metrics is then an image path like any other: unsigned, so refused.
        assert client.get(base + "/metrics").status_code in (403, 404)


def test_error_kinds_are_snake_case_class_names() -> None:
    from proxy.errors import SourceTooLarge, URITooLong

    assert error_kind(SourceTooLarge()) == "source_too_large"
    assert error_kind(URITooLong()) == "uri_too_long"


def test_format_labels_are_bounded() -> None:
    assert format_label("image/svg+xml") == "svg"
    assert format_label("image/webp") == "webp"
    assert format_label("application/x-anything-an-origin-says") == "other"


# --- request ids -------------------------------------------------------------


def test_request_id_is_echoed_or_generated(pixelpipe: str, client: httpx.Client) -> None:
    given = client.get(pixelpipe + "/health", headers={"X-Request-ID": "abc-123.x:y"})
    assert given.headers["x-request-id"] == "abc-123.x:y"
    made = client.get(pixelpipe + "/health")
    assert len(made.headers["x-request-id"]) == 32
    int(made.headers["x-request-id"], 16)
    # Ids with spaces, quotes or too long are replaced, never echoed into logs/headers.
    for bad in ('a"b', "x" * 200, "a b"):
        answer = client.get(pixelpipe + "/nope", headers={"X-Request-ID": bad})
        assert answer.headers["x-request-id"] != bad
        assert len(answer.headers["x-request-id"]) == 32


# --- readiness -----------------------------------------------------------------


def test_ready_while_serving(pixelpipe: str, client: httpx.Client) -> None:
    answer = client.get(pixelpipe + "/ready")
    assert (answer.status_code, answer.text) == (200, "ready\n")
    assert client.get(pixelpipe + "/health").text == "ok\n"


def test_readiness_states() -> None:
    readiness = Readiness(shutdown_delay=0)
    assert not readiness.ready  # before start-up
    readiness.started = True
    assert readiness.ready
    readiness.draining = True
    assert not readiness.ready


# --- Cache-Control for CDNs ----------------------------------------------------


def test_cache_control_directives() -> None:
    now = 1_000_000.0
    plain = dict(response_caching(CachePolicy(3600), None, now))
    assert plain[b"cache-control"] == b"public, max-age=3600"
    cdn = dict(response_caching(CachePolicy(3600, 86400, 600), None, now))
    assert (
        cdn[b"cache-control"] == b"public, max-age=3600, s-maxage=86400, stale-while-revalidate=600"
    )
    # A URL that expires in 100 s: every lifetime capped, nothing stale.
    expiring = dict(response_caching(CachePolicy(3600, 86400, 600), int(now) + 100, now))
    assert expiring[b"cache-control"] == b"public, max-age=100, s-maxage=100"
    expires_at = parsedate_to_datetime(expiring[b"expires"].decode()).timestamp()
    assert expires_at == now + 100


def test_errors_cached_only_when_asked_and_never_5xx_or_429() -> None:
    assert error_caching(404, 0) == "no-store"
    assert error_caching(404, 30) == "public, max-age=30"
    assert error_caching(422, 30) == "public, max-age=30"
    assert error_caching(429, 30) == "no-store"
    assert error_caching(502, 30) == "no-store"
    assert error_caching(504, 30) == "no-store"


def test_cdn_headers_end_to_end(
    pixelpipe_with: ServerFactory, origin: Origin, client: httpx.Client
) -> None:
    url = origin.add("/ops/cdn.jpg", JPEG)
    with pixelpipe_with(ttl=600, s_maxage=86400, stale_while_revalidate=60, error_ttl=30) as base:
        answer = client.get(base + signed(f"/w:50/plain/{url}"))
        assert answer.headers["cache-control"] == (
            "public, max-age=600, s-maxage=86400, stale-while-revalidate=60"
        )
        assert "vary" not in answer.headers  # nothing in the request changed the answer
        missing = client.get(base + signed(f"/w:50/plain/{origin.base}/ops/none.jpg"))
        assert missing.status_code == 404
        assert missing.headers["cache-control"] == "public, max-age=30"
        unreachable = client.get(base + signed(f"/w:50/plain/http://127.0.0.1:{free_port()}/x"))
        assert unreachable.status_code == 502
        assert unreachable.headers["cache-control"] == "no-store"


def test_cache_control_passthrough(
    pixelpipe_with: ServerFactory, origin: Origin, client: httpx.Client
) -> None:
    with_header = origin.add("/ops/pass.jpg", JPEG, headers={"Cache-Control": "public, max-age=77"})
    with_expires = origin.add(
        "/ops/pass-expires.jpg", JPEG, headers={"Expires": "Wed, 21 Oct 2037 07:28:00 GMT"}
    )
    without = origin.add("/ops/pass-none.jpg", JPEG)
    with pixelpipe_with(ttl=600, cache_control_passthrough=True) as base:
        for _ in range(2):  # a miss, then a hit from the result cache: the same headers
            answer = client.get(base + signed(f"/w:40/plain/{with_header}"))
            assert answer.headers["cache-control"] == "public, max-age=77"
            assert "expires" not in answer.headers
        answer = client.get(base + signed(f"/w:40/plain/{with_expires}"))
        assert answer.headers["expires"] == "Wed, 21 Oct 2037 07:28:00 GMT"
        assert "cache-control" not in answer.headers
        answer = client.get(base + signed(f"/w:40/plain/{without}"))
        assert answer.headers["cache-control"] == "public, max-age=600"
    with pixelpipe_with(ttl=600) as base:  # off by default
        answer = client.get(base + signed(f"/w:40/plain/{with_header}"))
        assert answer.headers["cache-control"] == "public, max-age=600"


def test_vary_only_when_the_answer_depends_on_headers(
    pixelpipe_with: ServerFactory, origin: Origin, client: httpx.Client
) -> None:
    url = origin.add("/ops/vary.jpg", JPEG)
    with pixelpipe_with(auto_webp=True) as base:
        negotiated = client.get(
            base + signed(f"/w:40/plain/{url}"), headers={"Accept": "image/webp"}
        )
        assert negotiated.headers["content-type"] == "image/webp"
        assert negotiated.headers["vary"] == "Accept"
        # A format in the URL: Accept changes nothing, so no Vary.
        fixed = client.get(
            base + signed(f"/w:40/f:png/plain/{url}"), headers={"Accept": "image/webp"}
        )
        assert fixed.headers["content-type"] == "image/png"
        assert "vary" not in fixed.headers


# --- `pixelpipe serve` with two workers: metrics, logs, graceful shutdown --------


@dataclass
class Served:
    base: str
    metrics: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture()
def served_json(origin: Origin) -> Iterator[Served]:
    port, metrics_port = free_port(), free_port()
    env = serve_env(
        PIXELPIPE_LOG_FORMAT="json",
        PIXELPIPE_METRICS_PORT=str(metrics_port),
        PIXELPIPE_SHUTDOWN_DELAY="3",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory() as workdir:
        log = Path(workdir) / "stderr.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [PIXELPIPE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        served = Served(
            f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}", process, log
        )
        try:
            wait_until_serving(served.base, process, "/ready")
            # Each worker has its own socket (SO_REUSEPORT): /ready answered by one
            # says nothing of the other, so wait until both have started.
            deadline = time.monotonic() + 30
            while log.read_text().count("Application startup complete") < 2:
                assert time.monotonic() < deadline, "a worker did not start"
                time.sleep(0.1)
            yield served
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


def test_two_workers_metrics_add_up_and_logs_are_json(served_json: Served, origin: Origin) -> None:
    url = origin.add("/ops/workers.jpg", JPEG)
    path = signed(f"/rs:fit:64:48/plain/{url}")
    ids = [f"req-{n}" for n in range(8)]
    for request_id in ids:
        # A new connection each time, so both workers get some of them.
        answer = httpx.get(served_json.base + path, headers={"X-Request-ID": request_id})
        assert answer.status_code == 200 and answer.headers["x-request-id"] == request_id
        assert (decode(answer.content).width, decode(answer.content).height) == (64, 48)
    with httpx.Client() as client:
        samples = scrape(client, served_json.metrics + "/metrics")
        # The main port has no /metrics when the metrics port is set.
        refused = client.get(served_json.base + "/metrics").status_code
        assert refused in (403, 404)
    assert value(samples, "pixelpipe_requests_total", status="200", format="jpeg") == len(ids)
    assert value(samples, "pixelpipe_source_bytes_total") >= len(JPEG)

    served_json.process.send_signal(signal.SIGTERM)
    served_json.process.wait(timeout=30)
    lines = [json.loads(line) for line in served_json.log.read_text().splitlines() if line]
    access = [entry for entry in lines if entry["logger"] == "pixelpipe.access"]
    # The unsigned /metrics probe on the main port is an (refused) image request too.
    assert [entry["status"] for entry in access if entry["path"] == "/metrics"] == [refused]
    access = [entry for entry in access if entry["path"] == path]
    assert sorted(entry["request_id"] for entry in access) == sorted(ids)
    for entry in access:
        assert entry["status"] == 200 and entry["format"] == "jpeg"
        assert entry["bytes"] > 0 and entry["duration_ms"] >= 0
        assert entry["cache"] in ("memory", "miss", "redis", "coalesced")
        assert entry["path"] == path
    misses = [entry for entry in access if entry["cache"] == "miss"]
    # Each worker has its own memory cache: at most one miss per worker.
    assert 1 <= len(misses) <= 2
    assert all(
        entry["fetch_ms"] is not None and entry["process_ms"] is not None for entry in misses
    )
    # uvicorn's own lines come out as JSON too.
    assert any(entry["logger"].startswith("uvicorn") for entry in lines)


def test_sigterm_fails_readiness_then_drains(served_json: Served, origin: Origin) -> None:
    url = origin.add("/ops/drain.jpg", JPEG)
    path = signed(f"/w:30/plain/{url}")
    served_json.process.send_signal(signal.SIGTERM)
    # During SHUTDOWN_DELAY (3 s) the workers still serve, but are not ready.
    deadline = time.monotonic() + 2.5
    seen_not_ready = False
    while time.monotonic() < deadline and not seen_not_ready:
        answer = httpx.get(served_json.base + "/ready", timeout=2)
        seen_not_ready = answer.status_code == 503 and answer.text == "shutting down\n"
    assert seen_not_ready
    assert httpx.get(served_json.base + "/health", timeout=2).status_code == 200
    assert httpx.get(served_json.base + path, timeout=10).status_code == 200
    served_json.process.wait(timeout=30)
    assert served_json.process.returncode == 0
    errors = [
        line
        for line in served_json.log.read_text().splitlines()
        if line and json.loads(line)["level"] in ("error", "critical")
    ]
    assert errors == []


def test_json_log_level_and_text_format_settings() -> None:
    from proxy.logs import logging_config
    from proxy.settings import Settings

    assert logging_config(Settings(log_format="json"))["formatters"]["main"]["()"].endswith(
        "JsonFormatter"
    )
    text = logging_config(Settings(log_level="warning"))
    assert text["formatters"]["main"]["()"].endswith("TextFormatter")
    assert text["root"]["level"] == "WARNING"
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") is None  # tests use one registry


def test_libvips_warnings_are_counted_not_logged_per_image(
    served_json: Served, origin: Origin
) -> None:
    odd = with_odd_resolution_unit(encode(gradient(320, 240), "jpg"))
    url = origin.add("/ops/odd-exif.jpg", odd)
    with httpx.Client(timeout=30) as client:
        for width in range(40, 52):
            answer = client.get(served_json.base + signed(f"/rs:fit:{width}:0/plain/{url}"))
            assert answer.status_code == 200 and decode(answer.content).width == width
        samples = scrape(client, served_json.metrics + "/metrics")
    # Two warnings per image, twelve images: all counted.
    assert value(samples, "pixelpipe_libvips_warnings_total") >= 12
    lines = [
        line
        for line in served_json.log.read_text().splitlines()
        if "unknown EXIF resolution unit" in line
    ]
    # At most once per worker, each a JSON line saying that repeats are counted.
    assert 1 <= len(lines) <= 2, lines
    assert all(json.loads(line)["level"] == "warning" for line in lines)
    # The filter runs once per record (uvicorn's dictConfig and the app's both
    # configure logging, and dictConfig adds a logger's filters to those it has).
    assert all(json.loads(line)["message"].count("repeats are counted") == 1 for line in lines)
