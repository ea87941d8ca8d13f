"""`pixelpipe serve` as a process tree: SO_REUSEPORT sockets per worker, the allocator, restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proxy.allocator import (
    APPLIED,
    JEMALLOC_CONF,
    allocator_environment,
    find_jemalloc,
)
from proxy.memory_release import CeilingRelease, resident_bytes
from tests.conftest import signed
from tests.images import decode, encode, gradient
from tests.ports import free_port
from tests.servers import Origin, wait_until_serving
from tests.test_cli import PIXELPIPE, clean_env, serve_env


def worker_pids(parent: int) -> list[int]:
    text = Path(f"/proc/{parent}/task/{parent}/children").read_text()
    # uvicorn's multiprocessing also starts a resource tracker: workers have a socket.
    return [int(pid) for pid in text.split() if socket_fd_inodes(int(pid))]


def socket_fd_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def socket_inodes(port: int, state: str) -> set[str]:
    """Inodes of TCP sockets on local `port` in `state` (01: ESTABLISHED, 0A: LISTEN)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state:
                found.add(fields[9])
    return found


@pytest.fixture()
def two_workers(origin: Origin) -> Iterator[tuple[str, subprocess.Popen[bytes], int]]:
    port = free_port()
    env = serve_env(
        PIXELPIPE_PORT=str(port),
        PIXELPIPE_LOG_LEVEL="warning",
    )
    process = subprocess.Popen([PIXELPIPE, "serve", "--workers", "2"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, "/ready")
        deadline = time.monotonic() + 30
        while len(worker_pids(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        yield base, process, port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_few_long_lived_connections_reach_both_workers(two_workers, origin: Origin) -> None:  # type: ignore[no-untyped-def]
    base, process, port = two_workers
    url = origin.add("/workers/photo.jpg", encode(gradient(800, 600), "jpg"))
    path = signed(f"/rs:fit:200:0/plain/{url}")
    # Sixteen keep-alive connections, as a CDN or an ingress keeps them open.
    clients = [httpx.Client(base_url=base, timeout=30) for _ in range(16)]
    try:
        for _ in range(3):
            for client in clients:
                response = client.get(path)
                assert response.status_code == 200
                assert decode(response.content).width == 200
        workers = worker_pids(process.pid)
        assert len(workers) == 2
        # A listening socket of its own in each worker (uvicorn alone shares one).
        listening = socket_inodes(port, "0A")
        assert len(listening) == 2
        assert all(len(socket_fd_inodes(pid) & listening) == 1 for pid in workers)
        # The supervisor keeps no copy: a socket lives exactly as long as its worker.
        assert not socket_fd_inodes(process.pid) & listening
        connections = socket_inodes(port, "01")
        per_worker = Counter({pid: len(socket_fd_inodes(pid) & connections) for pid in workers})
        assert sum(per_worker.values()) == 16, per_worker
        # The kernel hashes each connection to one worker's socket: with one
        # shared socket the first worker to wake took all sixteen. (All on one
        # worker by chance: 2 in 65,536.)
        assert min(per_worker.values()) >= 1, per_worker
        print(f"\nconnections per worker: {dict(per_worker)}")
    finally:
        for client in clients:
            client.close()


def test_a_killed_worker_is_replaced_on_its_socket(two_workers, origin: Origin) -> None:  # type: ignore[no-untyped-def]
    base, process, port = two_workers
    url = origin.add("/workers/again.jpg", encode(gradient(400, 300), "jpg"))
    path = signed(f"/rs:fit:100:0/plain/{url}")
    before = worker_pids(process.pid)
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = worker_pids(process.pid)
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.2)
    assert len(now) == 2 and before[0] not in now
    # The dead worker's socket left the port; the replacement bound its own.
    deadline = time.monotonic() + 30
    while len(socket_inodes(port, "0A")) != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(socket_inodes(port, "0A")) == 2
    # Every new connection is answered, whichever socket the kernel picks.
    for _ in range(20):
        with httpx.Client(timeout=30) as client:
            assert client.get(base + path).status_code == 200


def test_allocator_environment_prefers_jemalloc_and_keeps_operator_choices() -> None:
    name, env = allocator_environment("auto", {"LD_PRELOAD": "/x/other.so"}, "/lib/je.so")
    assert name == "jemalloc"
    assert env["LD_PRELOAD"] == "/lib/je.so /x/other.so"
    assert env["MALLOC_CONF"] == JEMALLOC_CONF and env[APPLIED] == "1"
    name, env = allocator_environment("auto", {"MALLOC_CONF": "narenas:1"}, "/lib/je.so")
    assert env["MALLOC_CONF"] == "narenas:1"
    name, env = allocator_environment("auto", {}, None)
    assert name.startswith("glibc") and env["MALLOC_ARENA_MAX"] == "2"
    name, env = allocator_environment("glibc", {"MALLOC_ARENA_MAX": "4"}, "/lib/je.so")
    assert "LD_PRELOAD" not in env and env["MALLOC_ARENA_MAX"] == "4"


def _serve_and_read_worker(extra: dict[str, str]) -> tuple[str, dict[str, str]]:
    port = free_port()
    env = clean_env(PIXELPIPE_PORT=str(port), PIXELPIPE_LOG_LEVEL="warning", **extra)
    env.pop("LD_PRELOAD", None)
    env.pop(APPLIED, None)
    process = subprocess.Popen([PIXELPIPE, "serve", "--workers", "2"], env=env)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", process, "/ready")
        worker = worker_pids(process.pid)[0]
        maps = Path(f"/proc/{worker}/maps").read_text()
        environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
        variables = dict(item.decode().partition("=")[::2] for item in environ if b"=" in item)
        return maps, variables
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.skipif(
    find_jemalloc() is None, reason="libjemalloc2 not installed (make test installs it)"
)
def test_workers_run_on_jemalloc_when_installed() -> None:
    maps, variables = _serve_and_read_worker({})
    assert "libjemalloc" in maps
    assert variables["MALLOC_CONF"] == JEMALLOC_CONF


def test_glibc_allocator_gets_two_arenas() -> None:
    maps, variables = _serve_and_read_worker({"PIXELPIPE_ALLOCATOR": "glibc"})
    assert "libjemalloc" not in maps
    assert variables["MALLOC_ARENA_MAX"] == "2"


def _rss_mb(pid: int) -> float:
    fields = Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()
    return int(fields[0]) / 1024


@pytest.mark.parametrize("allocator", ["jemalloc", "glibc"])
def test_workers_give_memory_back_once_quiet(allocator: str, origin: Origin) -> None:
    """Freed pages stay while a worker works and go back after a second without jobs.

    jemalloc runs without its decay timer (purging under load cost ~2 ms of
    page faults per cold request, BENCHMARKS.md); so the drop after a large
    image is the release on going quiet, counted in pixelpipe_memory_releases.
    """
    if allocator == "jemalloc" and find_jemalloc() is None:
        pytest.skip("libjemalloc2 not installed (make test installs it)")
    url = origin.add(f"/big-{allocator}.jpg", encode(gradient(4000, 3000), "jpg", Q=90))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = serve_env(
        PIXELPIPE_PORT=str(port), PIXELPIPE_LOG_LEVEL="warning", PIXELPIPE_ALLOCATOR=allocator
    )
    env.pop("LD_PRELOAD", None)
    env.pop(APPLIED, None)
    process = subprocess.Popen([PIXELPIPE, "serve", "--workers", "1"], env=env)
    try:
        wait_until_serving(base, process, "/ready")
        worker = process.pid  # one worker: the server process itself serves
        before = _rss_mb(worker)
        # Nothing about it is cached: every request decodes 12 MP at full size.
        for n in range(3):
            path = signed(f"/rs:fit:3900:3900/cb:{n}/plain/{url}@png")
            answer = httpx.get(base + path, timeout=120)
            assert answer.status_code == 200 and decode(answer.content).width == 3900
        after_work = _rss_mb(worker)
        if allocator == "jemalloc":
            assert after_work > before + 40, (before, after_work)  # kept while working
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _rss_mb(worker) > before + 25:
            time.sleep(0.25)
        assert _rss_mb(worker) <= before + 25, (before, after_work, _rss_mb(worker))
        metrics = httpx.get(base + "/metrics").text
        assert any(
            line.startswith("pixelpipe_memory_releases_total") and float(line.split()[-1]) >= 1
            for line in metrics.splitlines()
        ), metrics
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_a_busy_worker_over_its_ceiling_gives_free_memory_back() -> None:
    """A worker that never rests never reaches the release on going quiet: a
    job that ends with the worker over its ceiling (what it held at start,
    its caches and the memory budget) releases then, at most once a second."""
    resident = [100]
    released: list[int] = []

    async def jobs() -> None:
        ceiling = CeilingRelease(lambda: released.append(resident[0]), 150, lambda: resident[0])
        ceiling.job_ended()  # under the ceiling: pages stay for the next job
        resident[0] = 400
        ceiling.job_ended()
        ceiling.job_ended()  # within the second: once is enough
        await asyncio.sleep(0.05)  # the release runs in a thread
        assert (released, ceiling.releases) == ([400], 1)

    asyncio.run(jobs())
    assert resident_bytes() > 0  # this process's, read from /proc
