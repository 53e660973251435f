"""Measurements shared by the renderer tests."""

from __future__ import annotations

import numpy as np


def peak_frequency(x: np.ndarray, sr: int, lo: float = 30.0, hi: float = 8000.0) -> float:
    """Frequency of the strongest spectral peak in [lo, hi] Hz, parabolic-interpolated."""
    w = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x * w, n=4 * len(x)))
    freqs = np.fft.rfftfreq(4 * len(x), 1.0 / sr)
    band = (freqs >= lo) & (freqs <= hi)
    k = int(np.flatnonzero(band)[np.argmax(spec[band])])
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-12)
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return float((k + offset) * sr / (4 * len(x)))


def max_step(x: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(x)))) if len(x) > 1 else 0.0


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12))
