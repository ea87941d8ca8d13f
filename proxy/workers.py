"""Worker processes with a listening socket each (SO_REUSEPORT), so every worker gets connections.

uvicorn's `--workers` hands one listening socket to all workers. Each worker's
event loop accepts in a loop of up to `backlog` connections per wake-up
(asyncio's `_accept_connection`), so whichever worker is free when a burst
arrives takes all of it: with keep-alive clients (CDNs, ingress controllers)
one worker can end up serving nearly everything while its siblings idle.

With SO_REUSEPORT every worker has a socket of its own on the same port, and
the kernel assigns each new connection to one of them by a hash of its
addresses, whatever the workers are doing. The supervisor binds a worker's
socket, hands it over when it spawns the worker, and closes its own copy: a
socket lives exactly as long as its worker, so a worker that dies or stops
accepting leaves the port at once and new connections go to the others. (A
copy kept open by the supervisor would queue connections nobody accepts.)
"""

from __future__ import annotations

import logging
import socket

from uvicorn import Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("pixelpipe")


def reuse_port_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket that shares `port` with the others bound this way (0: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class ReusePortWorkers(Multiprocess):
    """uvicorn's supervisor (health checks, restarts, signals); each worker with its own socket."""

    def __init__(self, config: Config) -> None:
        super().__init__(config, sockets=[])
        self.port = config.port

    def spawn(self) -> Process:
        sock = reuse_port_socket(self.config.host, self.port, self.config.backlog)
        self.port = sock.getsockname()[1]
        process = Process(self.config, [sock])
        # start() has pickled the socket for the child (a duplicate is held
        # until the child takes it), so this copy can go now.
        process.start()
        sock.close()
        return process

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self.spawn())
        log.info(
            "listening on %s:%d, one SO_REUSEPORT socket per worker", self.config.host, self.port
        )

    def keep_subprocess_alive(self) -> None:
        # uvicorn's own loop would give a replacement the shared `self.sockets`.
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
            self.processes[index] = self.spawn()

    def restart_all(self) -> None:
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self.spawn()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def handle_ttin(self) -> None:
        self.processes_num += 1
        self.processes.append(self.spawn())


def serve_workers(config: Config, workers: int, reuse_port: bool) -> None:
    """Run `config`'s app in `workers` processes (in this one when `workers` is 1)."""
    import uvicorn

    if workers == 1:
        uvicorn.Server(config).run()
        return
    if reuse_port:
        ReusePortWorkers(config).run()
    else:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
