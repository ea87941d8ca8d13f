"""Loopback ports for the servers the tests start as their own processes.

A port asked of the kernel (bind to port 0, then close) is free only until
someone else asks: the kernel may hand the same one to another xdist worker,
and whichever server binds second dies while the test polls the first one's
answers. That happened once: the playground's development server lost its port
to a server without development mode, and every playground route answered 404.

So each worker takes ports from its own block, below the kernel's ephemeral
range (Linux' default is 32768-60999), which neither the kernel nor another
worker hands out; a port something else listens on is skipped.
"""

from __future__ import annotations

import itertools
import os
import socket

FIRST_PORT, LAST_PORT = 10_000, 32_000


def block(index: int, count: int) -> range:
    """The ports of worker `index` of `count` (xdist's gw0, gw1, ...)."""
    size = (LAST_PORT - FIRST_PORT) // max(count, 1)
    start = FIRST_PORT + index * size
    return range(start, start + size)


# Without xdist one process takes the whole range. Start at a point of the
# block that moves with the process, so a run right after another does not
# reuse ports still in TIME_WAIT.
_BLOCK = block(
    int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0),
    int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")),
)
_NEXT = itertools.cycle(
    itertools.chain(
        _BLOCK[os.getpid() % len(_BLOCK) :],
        _BLOCK[: os.getpid() % len(_BLOCK)],
    )
)


def free_port() -> int:
    """A loopback port no one listens on, never handed to another worker."""
    for _ in range(len(_BLOCK)):
        port = next(_NEXT)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {_BLOCK.start}-{_BLOCK.stop - 1}")
