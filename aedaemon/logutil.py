"""Logging helpers shared by the network side and the engine."""

from __future__ import annotations

import logging
import time
from typing import Any


class RateLimitedLog:
    """At most `burst` log lines per `interval` seconds; the lines held back are counted in the
    next one that is written."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0, burst: int = 1) -> None:
        self.logger = logger
        self.interval = interval
        self.burst = burst
        self._window = -1e18
        self._written = 0
        self._held = 0

    def __call__(self, level: int, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._window >= self.interval:
            self._window, self._written = now, 0
        if self._written >= self.burst:
            self._held += 1
            return
        self._written += 1
        if self._held:
            msg += " (%d more like this in the last %.0f s)"
            args = (*args, self._held, self.interval)
            self._held = 0
        self.logger.log(level, msg, *args)
