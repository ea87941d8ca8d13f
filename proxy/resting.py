"""A cache tier that failed rests for a while before it is asked again.

Shared tiers (Redis, the result store) are optimisations, never
dependencies: when one is slow or absent, resting after a failure costs one
timeout per rest period instead of one per request.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("pixelpipe")


class Resting:
    def __init__(self, tier: str, rest_seconds: float) -> None:
        self._tier = tier
        self._rest = rest_seconds
        self._until = 0.0
        self.errors = 0

    @property
    def resting(self) -> bool:
        return time.monotonic() < self._until

    def failed(self, action: str, error: BaseException) -> None:
        self.errors += 1
        self._until = time.monotonic() + self._rest
        log.warning(
            "%s %s failed (%s); serving without it for %.0f s",
            self._tier,
            action,
            type(error).__name__,
            self._rest,
        )
