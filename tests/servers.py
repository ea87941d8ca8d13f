"""Real servers on 127.0.0.1 for end-to-end tests: an origin and pixelpipe."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import uvicorn

from proxy.app import create_app
from proxy.cli import server_options
from proxy.settings import Settings


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/octet-stream"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the body is sent
    send_length: bool = True  # False: no Content-Length, the body runs to the close
    fault: str = ""  # one of FAULTS: how this route misbehaves
    hang_up: bool = False  # close the connection after answering, without saying so


# How an origin can fail mid-answer (the soak injects them at random):
# "5xx" answers 503; "reset" closes the connection with a TCP RST before any
# answer; "truncated" declares the full Content-Length and closes after half
# the body; "truncated-eof" sends no length and closes after half the body, so
# HTTP cannot tell (only the image decoder can); "drip" sends the body 512
# bytes every 0.5 s, slower than any download timeout allows.
FAULTS = ("5xx", "reset", "truncated", "truncated-eof", "drip")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up mid-request (a killed worker's connection) is
        # part of the faults under test, not a traceback for the log.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class Origin:
    """A real HTTP/1.1 origin on loopback, serving what tests put in `routes`.

    `fault_rate` (0..1) makes that share of all answers fail with a fault
    chosen at random from FAULTS; `slow` delays every answer by that many
    seconds. Both can change while it serves (the soak's schedule). With `tls`
    it speaks HTTPS; `connections` counts the connections each answer came on.
    """

    def __init__(self, seed: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.connections: Counter[tuple[str, int]] = Counter()
        self.faults: Counter[str] = Counter()
        self.last_headers: dict[str, dict[str, str]] = {}
        self.fault_rate = 0.0
        self.slow = 0.0
        self._random = random.Random(seed)
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                origin.hits[self.path] += 1
                origin.connections[self.client_address] += 1
                origin.last_headers[self.path] = dict(self.headers.items())
                # A query (a cachebuster) names the same route.
                route = origin.routes.get(self.path) or origin.routes.get(
                    self.path.split("?", 1)[0]
                )
                if route is None:
                    route = Route(b"not found", "text/plain", 404)
                fault = route.fault or origin.pick_fault()
                if fault:
                    origin.faults[fault] += 1
                if route.delay or origin.slow:
                    time.sleep(route.delay or origin.slow)
                if fault == "reset":
                    # SO_LINGER 0: close() sends RST instead of FIN.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                if fault == "5xx":
                    route = Route(b"origin is down", "text/plain", 503)
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                if route.send_length and fault != "truncated-eof":
                    self.send_header("Content-Length", str(len(route.body)))
                else:
                    self.close_connection = True  # the body ends when the connection does
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                body = route.body
                with suppress(BrokenPipeError, ConnectionResetError):
                    if fault in ("truncated", "truncated-eof"):
                        self.wfile.write(body[: len(body) // 2])
                        self.close_connection = True
                    elif fault == "drip":
                        for start in range(0, len(body), 512):
                            self.wfile.write(body[start : start + 512])
                            self.wfile.flush()
                            time.sleep(0.5)
                    else:
                        self.wfile.write(body)
                        self.close_connection = self.close_connection or route.hang_up

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def pick_fault(self) -> str:
        if self.fault_rate and self._random.random() < self.fault_rate:
            return self._random.choice(FAULTS)
        return ""

    def add(self, path: str, body: bytes, content_type: str = "image/jpeg", **kw: object) -> str:
        self.routes[path] = Route(body, content_type, **kw)  # type: ignore[arg-type]
        return self.base + path

    def start(self) -> Origin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class RedisServer:
    """A real redis-server on a loopback port that can be stopped and started again.

    No persistence: a restart comes back empty, as a cache node replaced by
    Kubernetes would.
    """

    def __init__(self, executable: str, port: int, workdir: str) -> None:
        self.executable, self.port, self.workdir = executable, port, workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        import redis  # the test extra has it; the origin above does not need it

        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.workdir, "--enable-debug-command", "local"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# base URL -> the app serving it, so tests can read its counters.
running_apps: dict[str, object] = {}


async def loopback_only_resolver(host: str, port: int) -> list[str]:
    """Tests never ask a real DNS server: only `localhost` resolves, to loopback."""
    if host == "localhost":
        return ["127.0.0.1", "::1"]
    raise OSError(f"test resolver: {host} does not resolve")


@contextmanager
def serve_pixelpipe(settings: Settings, **app_kwargs: object) -> Iterator[str]:
    """The real app, served by uvicorn on a free loopback port, in a thread."""
    app_kwargs.setdefault("resolver", loopback_only_resolver)
    app = create_app(settings, **app_kwargs)  # type: ignore[arg-type]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # The test process keeps pytest's logging: no log_config of our own here.
    options = server_options(settings) | {"log_level": "warning", "log_config": None}
    config = uvicorn.Config(app, lifespan="on", **options)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("pixelpipe did not start")
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    running_apps[base] = app
    try:
        yield base
    finally:
        running_apps.pop(base, None)
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def wait_until_serving(
    base: str, process: subprocess.Popen, path: str = "/health", timeout: float = 30
) -> None:  # type: ignore[type-arg]
    """Poll a server started as its own process until `path` answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + path, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{base} did not come up (exit code {process.poll()})")
        time.sleep(0.1)


def json_log_problems(log: str) -> tuple[int, list[dict[str, object]]]:
    """How many JSON records a server's log holds (other lines are skipped),
    and those at level error or critical."""
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return len(records), [r for r in records if r["level"] in ("error", "critical")]
