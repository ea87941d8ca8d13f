"""Stopping a pipeline run that nobody waits for any more.

A run executes in a processing thread, where asyncio's cancellation cannot
reach. When its request is abandoned (the client hung up, or the request's
deadline passed) the service sets the run's stop event; libvips calls an
`eval` callback as it computes the image being encoded, and the callback
kills that computation, so the thread ends within a tile or two instead of
finishing work whose result would be thrown away, and the run's memory
reservation is released.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pyvips

from proxy.errors import ProxyError

_current = threading.local()


class Interrupted(ProxyError):
    """The run was stopped because nobody waits for it (never reaches a client)."""

    status = 503
    default_reason = "processing was stopped"


@contextmanager
def stoppable(stop: threading.Event) -> Iterator[None]:
    """Runs on this thread until the block ends can be stopped by setting `stop`."""
    _current.stop = stop
    try:
        yield
    finally:
        _current.stop = None


def watch(image: pyvips.Image) -> pyvips.Image:
    """`image`, set to stop computing once this thread's run is stopped."""
    stop: threading.Event | None = getattr(_current, "stop", None)
    if stop is None:
        return image

    def on_eval(computing: pyvips.Image, _progress: object) -> None:
        if stop.is_set():
            computing.set_kill(True)

    image.set_progress(True)
    image.signal_connect("eval", on_eval)
    return image


def check() -> None:
    """Between steps: raise Interrupted if this thread's run was stopped."""
    stop: threading.Event | None = getattr(_current, "stop", None)
    if stop is not None and stop.is_set():
        raise Interrupted()
