"""Readiness: whether this process should be sent new requests.

Kubernetes stops routing to a pod only after its readiness probe fails (or
the endpoint update spreads), so for SHUTDOWN_DELAY seconds after SIGTERM the
server keeps serving but answers `/ready` with 503; then uvicorn's own
graceful shutdown runs (stop accepting, finish in-flight requests).
"""

from __future__ import annotations

import signal
import threading


class Readiness:
    """Ready once started; not ready from SIGTERM on, while in-flight work drains."""

    def __init__(self, shutdown_delay: float) -> None:
        self.shutdown_delay = shutdown_delay
        self.started = False
        self.draining = False

    @property
    def ready(self) -> bool:
        return self.started and not self.draining

    def hook_sigterm(self) -> None:
        """Wrap the server's SIGTERM handler (uvicorn's) so draining starts first."""
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set there (tests run servers in threads)
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return

        def on_sigterm(signum: int, frame: object) -> None:
            self.draining = True
            if self.shutdown_delay <= 0:
                previous(signum, frame)
                return
            # uvicorn's handler only sets a flag, so calling it from a timer thread is safe.
            timer = threading.Timer(self.shutdown_delay, previous, (signum, frame))
            timer.daemon = True
            timer.start()

        signal.signal(signal.SIGTERM, on_sigterm)
