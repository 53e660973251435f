"""Logging helpers shared by the network side and the engine."""

from __future__ import annotations

import logging
import time
from typing import Any


class RateLimitedLog:
    """One log line per `interval` seconds at most; the lines held back are counted in the next."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self.logger = logger
        self.interval = interval
        self._next = 0.0
        self._held = 0

    def __call__(self, level: int, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        self._next = now + self.interval
        if self._held:
            msg += " (%d more like this in the last %.0f s)"
            args = (*args, self._held, self.interval)
            self._held = 0
        self.logger.log(level, msg, *args)
