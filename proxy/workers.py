"""Worker processes with a listening socket each (SO_REUSEPORT), so every worker gets connections.

uvicorn's `--workers` hands one listening socket to all workers. Each worker's
event loop accepts in a loop of up to `backlog` connections per wake-up
(asyncio's `_accept_connection`), so the first worker to wake takes a whole
burst of new connections: with keep-alive clients (CDNs, ingress controllers)
one worker then serves nearly everything while its siblings idle, and
answers 503 when its own queue fills (measured in BENCHMARKS.md, "Balance").

With SO_REUSEPORT every worker slot has a socket of its own on the same
port, and the kernel assigns each new connection to one of them by a hash
of its addresses: connections spread evenly whatever the workers are doing.
The supervisor binds all the sockets before starting any worker and keeps
them, so a restarted worker takes over its predecessor's socket and the
connections queued on it.
"""

from __future__ import annotations

import logging
import socket

from uvicorn import Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("pixelpipe")


def reuse_port_sockets(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """`count` listening sockets on one address; port 0 picks a free port for all of them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        port = sock.getsockname()[1]
        sock.listen(backlog)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


class ReusePortWorkers(Multiprocess):
    """uvicorn's supervisor (health checks, restarts, signals), one socket per worker slot."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets=[])
        self.slot_sockets = sockets
        self.processes_num = len(sockets)

    def init_processes(self) -> None:
        for sock in self.slot_sockets:
            process = Process(self.config, [sock])
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        # uvicorn's own loop restarts a dead worker with `self.sockets`; here
        # each replacement gets the socket of the slot it fills.
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if self.should_exit.is_set():
                return
            log.info(
                "worker %s died (exit code %s); starting another", process.pid, process.exitcode
            )
            replacement = Process(self.config, [self.slot_sockets[index]])
            replacement.start()
            self.processes[index] = replacement

    def restart_all(self) -> None:
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = Process(self.config, [self.slot_sockets[index]])
            new.start()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def handle_ttin(self) -> None:
        log.warning("SIGTTIN ignored: the number of workers is fixed with SO_REUSEPORT sockets")

    def handle_ttou(self) -> None:
        log.warning("SIGTTOU ignored: the number of workers is fixed with SO_REUSEPORT sockets")


def serve_workers(config: Config, workers: int, reuse_port: bool) -> None:
    """Run `config`'s app in `workers` processes (in this one when `workers` is 1)."""
    import uvicorn

    if workers == 1:
        uvicorn.Server(config).run()
        return
    if reuse_port:
        sockets = reuse_port_sockets(config.host, config.port, workers, config.backlog)
        log.info(
            "listening on %s:%d with %d SO_REUSEPORT sockets",
            config.host,
            sockets[0].getsockname()[1],
            workers,
        )
        ReusePortWorkers(config, sockets).run()
    else:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
