"""Load with faults injected: shared by tests/test_soak.py (short) and bench/soak.py (long).

A real `pixelpipe serve` with its workers, a real origin that can fail
(tests.servers.Origin's FAULTS), a real redis-server, and an asyncio client
that sends a mix of requests and judges every answer:

- ok: 200 and the body is a complete image of the declared type (decoded to
  the last pixel by libvips, failing on truncation);
- not-modified: 304 to a conditional request;
- refused: a 4xx, for the bad inputs a mix contains on purpose;
- fault: 502, 503 or 504, what an injected origin fault, an overload or a
  killed worker may cause;
- dropped: no answer, the connection lost (what requests in flight on a
  killed worker see; the caller checks each was in flight at a kill);
- BROKEN: a 200 whose body is not a whole image of its type, a 500, or any
  other status.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyvips

from tests.servers import wait_until_serving

# Content-Type -> the libvips loader a complete body of that type decodes with.
LOADERS = {
    "image/jpeg": "jpegload",
    "image/png": "pngload",
    "image/webp": "webpload",
    "image/avif": "heifload",
    "image/gif": "gifload",
}


@dataclass(frozen=True, slots=True)
class Request:
    path: str  # signed, ready to GET
    kind: str  # "good", "large" or "bad:<what>": what the answer should be


@dataclass(frozen=True, slots=True)
class Outcome:
    started: float  # seconds since the load began
    latency: float
    status: int  # 0: no HTTP answer (connection error)
    verdict: str  # ok | not-modified | refused | fault | dropped | BROKEN
    reason: str  # the body's one line for errors, or what was wrong
    kind: str


def judge(status: int, content_type: str, body: bytes, kind: str) -> tuple[str, str]:
    """The verdict on one answer, and its reason."""
    if status == 200:
        problem = image_problem(content_type, body)
        return ("BROKEN", problem) if problem else ("ok", "")
    if status == 304:
        return "not-modified", ""
    reason = body[:120].decode("utf-8", "replace").strip()
    if 400 <= status < 500 and status != 408:
        return "refused", f"{status} {reason}"
    if status in (502, 503, 504):
        return "fault", f"{status} {reason}"
    return "BROKEN", f"{status} {reason}"


def image_problem(content_type: str, body: bytes) -> str:
    """'' when `body` is a complete image of `content_type`, else what is wrong."""
    loader = LOADERS.get(content_type.split(";")[0].strip())
    if loader is None:
        return f"200 with Content-Type {content_type!r}"
    try:
        image = pyvips.Image.new_from_buffer(body, "", fail_on="truncated")
        found = image.get("vips-loader")
        image.avg()  # decode every pixel: a truncated body fails here
    except pyvips.Error as error:
        return f"200 {content_type} that does not decode: {str(error).splitlines()[0]}"
    if not found.startswith(loader):
        return f"200 {content_type} holding {found}"
    return ""


def zipf_weights(count: int) -> list[float]:
    """Weights for `count` items by rank: the k-th is asked 1/k as often as the first."""
    return [1 / (rank + 1) for rank in range(count)]


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)

    def verdicts(self) -> Counter[str]:
        return Counter(o.verdict for o in self.outcomes)

    def broken(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.verdict == "BROKEN"]

    def dropped_outside(self, kills: list[float], slack: float = 0.5) -> list[Outcome]:
        """Dropped requests that were not in flight at any kill (seconds since the start)."""
        return [
            o
            for o in self.outcomes
            if o.verdict == "dropped"
            and not any(o.started - slack <= k <= o.started + o.latency + slack for k in kills)
        ]


async def run_load(
    base: str,
    pick: Callable[[random.Random], Request],
    seconds: float,
    connections: int,
    rate: float = 0.0,
    conditional: float = 0.1,
    seed: int = 1,
) -> LoadResult:
    """`connections` keep-alive clients for `seconds`; `rate` > 0 paces the whole at that many
    requests per second (open loop, bounded by the connections).

    A `conditional` share of requests for a path already answered 200 carry
    its ETag in If-None-Match.
    """
    rng = random.Random(seed)
    etags: dict[str, str] = {}
    result = LoadResult()
    began = time.monotonic()
    next_slot = [began]
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def one(session: httpx.AsyncClient) -> None:
        request = pick(rng)
        headers = {}
        if request.path in etags and rng.random() < conditional:
            headers["If-None-Match"] = etags[request.path]
        started = time.monotonic()
        try:
            response = await session.get(base + request.path, headers=headers)
        except httpx.TransportError as error:
            latency = time.monotonic() - started
            failure = f"{type(error).__name__}: {error}"
            outcome = Outcome(started - began, latency, 0, "dropped", failure, request.kind)
            result.outcomes.append(outcome)
            return
        body = response.content
        latency = time.monotonic() - started
        content_type = response.headers.get("content-type", "")
        verdict, reason = await asyncio.to_thread(
            judge, response.status_code, content_type, body, request.kind
        )
        if response.status_code == 200 and "etag" in response.headers:
            etags[request.path] = response.headers["etag"]
        result.outcomes.append(
            Outcome(started - began, latency, response.status_code, verdict, reason, request.kind)
        )

    async def client() -> None:
        async with httpx.AsyncClient(timeout=60, limits=limits) as session:
            while time.monotonic() - began < seconds:
                if rate:
                    slot = max(time.monotonic(), next_slot[0])
                    next_slot[0] = slot + 1 / rate
                    await asyncio.sleep(max(0.0, slot - time.monotonic()))
                await one(session)

    await asyncio.gather(*(client() for _ in range(connections)))
    return result


# --- the server under test -------------------------------------------------------


def worker_pids(parent: int) -> list[int]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    try:
        pids = [int(p) for p in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    except OSError:
        return []
    workers = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            workers.append(pid)
    return workers or [parent]


def kill_a_worker(parent: int, rng: random.Random) -> int:
    """SIGKILL one worker, as the OOM killer would; its pid."""
    victim = rng.choice(worker_pids(parent))
    os.kill(victim, signal.SIGKILL)
    return victim


def open_fds(pid: int) -> tuple[int, int]:
    """(open file descriptors, of which sockets) of a process; (0, 0) once it is gone."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return 0, 0
    return len(links), sum(link.startswith("socket:") for link in links)


@contextmanager
def pixelpipe_process(
    executable: str, env: dict[str, str], port: int, workers: int
) -> Iterator[subprocess.Popen[bytes]]:
    """`pixelpipe serve --workers N` until the block ends (SIGTERM, then SIGKILL)."""
    process = subprocess.Popen(
        [executable, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", process, "/ready", timeout=60)
        deadline = time.monotonic() + 30
        while len(worker_pids(process.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
