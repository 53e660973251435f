"""Perceptual level of a magnitude frame: ITU-R BS.1770 K-weighting evaluated at the bins.

The engine scales every shaped frame so that it plays at the same K-weighted loudness, whatever
the timbre, pitch class, note or transpose: `KWeighting.gain(mag)` is the factor that brings a
frame to `TARGET_LUFS` at the engine's default level, for a steady tone (the power of the
overlap-added output of a frame whose normalised magnitudes are `mag` is Σ mag² / 3 × level²:
a sinusoid of amplitude a has Σ mag² = 1.5 a² under a Hann window).

The two BS.1770 biquads (high shelf, RLB high-pass) are the standard's 48 kHz coefficients;
their magnitude response is evaluated at the bin frequencies (all below 24 kHz).
"""

from __future__ import annotations

import numpy as np

# BS.1770-4 K-weighting at 48 kHz: stage 1 (head shelf), stage 2 (RLB high-pass)
_STAGES = (
    ((1.53512485958697, -2.69169618940638, 1.19839281085285), (1.0, -1.69065929318241, 0.73248077421585)),
    ((1.0, -2.0, 1.0), (1.0, -1.99004745483398, 0.99007225036621)),
)
_STAGE_RATE = 48000.0
TARGET_LUFS = -18.0  # one voice at gain 1, velocity 127 (leaves the limiter's knee idle)
REFERENCE_LEVEL = 0.25  # the engine's default level, at which TARGET_LUFS is reached
MAX_BOOST_DB = 30.0  # a nearly silent frame is not pulled up into audible noise


def k_weighting_power(freqs: np.ndarray) -> np.ndarray:
    """|H_K(f)|² of the BS.1770 K-weighting filter at these frequencies (Hz)."""
    z1 = np.exp(-2j * np.pi * np.asarray(freqs, dtype=np.float64) / _STAGE_RATE)
    h = np.ones(len(z1), dtype=np.complex128)
    for b, a in _STAGES:
        h *= (b[0] + b[1] * z1 + b[2] * z1 * z1) / (a[0] + a[1] * z1 + a[2] * z1 * z1)
    return np.abs(h) ** 2


class KWeighting:
    """Loudness of magnitude frames of one size and rate, and the gain that evens it out."""

    def __init__(self, n_fft: int, sample_rate: int) -> None:
        freqs = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
        self._w2 = k_weighting_power(freqs) / 3.0  # folds in the Σ mag²/3 → mean square factor
        self._target = 10.0 ** ((TARGET_LUFS + 0.691) / 20.0) / REFERENCE_LEVEL
        self._max_gain = self._target * 10.0 ** (MAX_BOOST_DB / 20.0)
        self._sq = np.zeros(n_fft // 2 + 1)

    def _mean_square(self, mag: np.ndarray) -> float:
        np.multiply(mag, mag, out=self._sq)
        return float(np.dot(self._w2, self._sq))

    def loudness(self, mag: np.ndarray, level: float = REFERENCE_LEVEL) -> float:
        """Estimated K-weighted loudness (LUFS, ungated) of the steady tone of this frame."""
        ms = self._mean_square(mag) * level * level
        return -0.691 + 10.0 * np.log10(ms) if ms > 0.0 else float("-inf")

    def gain(self, mag: np.ndarray) -> float:
        """Factor bringing this frame to TARGET_LUFS at REFERENCE_LEVEL (capped; 0 for silence)."""
        ms = self._mean_square(mag)
        if not ms > 0.0 or not np.isfinite(ms):
            return 0.0
        return min(self._max_gain, self._target / float(np.sqrt(ms)))
