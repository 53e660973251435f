"""Output stage: per-sample gain ramps, a soft limiter and level metering."""

from __future__ import annotations

import math

import numpy as np

LIMIT_KNEE = 0.8  # below this the limiter is transparent
LIMIT_CEILING = 0.99  # never reached: tanh(inf) = 1 lands exactly here, below full scale
_HEADROOM = LIMIT_CEILING - LIMIT_KNEE


def soft_limit(x: np.ndarray) -> None:
    """In place: identity below the knee, then a tanh curve towards the ceiling (-0.09 dBFS)."""
    over = np.abs(x) > LIMIT_KNEE
    if over.any():
        v = x[over]
        mag = LIMIT_KNEE + _HEADROOM * np.tanh((np.abs(v) - LIMIT_KNEE) / _HEADROOM)
        x[over] = np.copysign(mag, v)


def to_dbfs(value: float) -> float:
    return 20.0 * math.log10(value) if value > 1e-10 else -200.0


def rms_peak_dbfs(x: np.ndarray) -> tuple[float, float]:
    if not len(x):
        return -200.0, -200.0
    rms = math.sqrt(float(np.dot(x, x)) / len(x))
    peak = float(np.max(np.abs(x)))
    return to_dbfs(rms), to_dbfs(peak)
