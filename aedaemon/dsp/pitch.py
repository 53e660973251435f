"""Fundamental frequency of one magnitude frame (pure numpy): which pitch does this frame sound?

The engine tracks the pitch of each distinct decoded frame and transposes so that the sound
has the pitch that was played. The estimate has to agree with what a listener (or a
time-domain tracker such as YIN) hears, so the octave is chosen the way periodicity decides it:

1. Peaks: local maxima of the frame within `range_db` of its strongest bin, their frequency
   refined by parabolic interpolation on the log magnitude, their power summed over the lobe.
2. Candidates: for a chroma-conditioned model the pitch class is known, so only the octaves
   pc_freq × 2^k over the audible range; otherwise a grid of `grid_cents` over the range.
3. Score: a cosine-comb harmonic sum of the peaks' power — the autocorrelation of the frame
   at the candidate's period, normalised as YIN's cumulative-mean difference:
   d(f) = Σ P·(1 − cos 2πf_p/f) / Σ P·(1 − sinc 2πf_p/f). It is 0 when every partial sits on
   the candidate's harmonic grid. The sound repeats with the period of the *highest* candidate
   with d < `PERIODIC` (√f-scaled above `PERIODIC_FROM_HZ`; one octave too high leaves the odd partials off its grid; one too low
   fits as well but is not the shortest period), as a listener or a time-domain tracker
   decides; if none qualifies, the candidate with the lowest d, unless even that is above
   `APERIODIC` (no fundamental: noise).
4. Refine: f0 from a weighted least-squares fit of h·f0 to the peaks within `TOLERANCE_CENTS`
   of the chosen candidate's harmonics (h ≤ 16).

`estimate` returns None when the frame has no peaks or no candidate explains its power
(silence, noise); the caller decides the fallback.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

A4_HZ = 440.0
FMIN_HZ = 40.0
FMAX_HZ = 4200.0
RANGE_DB = 60.0
MAX_PEAKS = 48
TOLERANCE_CENTS = 40.0
PERIODIC = 0.1  # normalised difference below which a candidate's period counts as the period,
PERIODIC_FROM_HZ = 270.0  # ... rising as √f above this (calibrated against YIN on decoded frames)
APERIODIC = 0.6  # above this for every candidate: no fundamental
GRID_CENTS = 20.0  # candidate spacing for a full (unconditioned) search
FIT_HARMONICS = 16


def pitch_class_hz(pitch_class: int, a4: float = A4_HZ) -> float:
    """Frequency of pitch class 0..11 (C..B) in the octave of A4."""
    return a4 * 2.0 ** ((pitch_class - 9) / 12.0)


def hz_to_midi(hz: float, a4: float = A4_HZ) -> float:
    return 69.0 + 12.0 * float(np.log2(hz / a4))


def midi_to_hz(note: float, a4: float = A4_HZ) -> float:
    return a4 * 2.0 ** ((note - 69.0) / 12.0)


class PitchEstimator:
    """f0 of magnitude frames of one size and rate; `estimate(mag, pitch_class)` → Hz or None."""

    def __init__(self, n_fft: int, sample_rate: int, fmin: float = FMIN_HZ, fmax: float = FMAX_HZ) -> None:
        self.bin_hz = sample_rate / n_fft
        self.fmin = fmin
        self.fmax = min(fmax, sample_rate / 4.0)
        steps = int(np.floor(1200.0 * np.log2(self.fmax / fmin) / GRID_CENTS)) + 1
        self._grid = fmin * 2.0 ** (np.arange(steps) * GRID_CENTS / 1200.0)
        self._octaves = [self._octaves_of(pc) for pc in range(12)]

    def _octaves_of(self, pitch_class: int) -> np.ndarray:
        base = pitch_class_hz(pitch_class)
        k = np.arange(np.ceil(np.log2(self.fmin / base)), np.floor(np.log2(self.fmax / base)) + 1)
        return base * 2.0**k

    def candidates(self, pitch_class: Optional[int]) -> np.ndarray:
        """Ascending candidate f0s: the octaves of the pitch class, or the full grid."""
        return self._grid if pitch_class is None else self._octaves[pitch_class % 12]

    def peaks(self, mag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interpolated frequencies (Hz) and lobe powers of the frame's strongest peaks."""
        mag = np.asarray(mag, dtype=np.float64)
        top = float(mag.max()) if len(mag) else 0.0
        if not np.isfinite(top) or top <= 0.0:
            return np.zeros(0), np.zeros(0)
        floor = top * 10.0 ** (-RANGE_DB / 20.0)
        c = mag[1:-1]
        idx = np.nonzero((c > mag[:-2]) & (c >= mag[2:]) & (c > floor))[0] + 1
        if len(idx) > MAX_PEAKS:
            idx = idx[np.argsort(mag[idx])[-MAX_PEAKS:]]
        lo = floor * 1e-2  # floored log magnitude: a ReLU zero next to a peak is not -inf
        a, b, g = (np.log(np.maximum(mag[i], lo)) for i in (idx - 1, idx, idx + 1))
        den = a - 2.0 * b + g
        delta = np.where(den < 0.0, 0.5 * (a - g) / np.where(den < 0.0, den, -1.0), 0.0)
        power = mag[idx - 1] ** 2 + mag[idx] ** 2 + mag[idx + 1] ** 2
        return (idx + np.clip(delta, -0.5, 0.5)) * self.bin_hz, power

    @staticmethod
    def periodicity(freqs: np.ndarray, power: np.ndarray, cands: np.ndarray) -> np.ndarray:
        """Normalised difference d per candidate (0: every peak on its harmonic grid)."""
        x = (2.0 * np.pi) * freqs[None, :] / cands[:, None]
        num = (1.0 - np.cos(x)) @ power
        den = (1.0 - np.sin(x) / x) @ power
        return num / np.maximum(den, 1e-300)

    def _harmonics(self, freqs: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
        """Harmonic number of each peak for candidate f, and whether it lies on that harmonic."""
        h = np.maximum(1.0, np.round(freqs / f))
        tol = np.maximum(h * f * (2.0 ** (TOLERANCE_CENTS / 1200.0) - 1.0), 0.5 * self.bin_hz)
        return h, np.abs(freqs - h * f) <= tol

    def estimate(self, mag: np.ndarray, pitch_class: Optional[int] = None) -> Optional[float]:
        """f0 in Hz of this frame (A4 = 440 Hz as the model was trained), or None."""
        freqs, power = self.peaks(mag)
        if not len(freqs) or float(power.sum()) <= 0.0:
            return None
        cands = self.candidates(pitch_class)
        d = self.periodicity(freqs, power, cands)
        periodic = np.nonzero(d < PERIODIC * np.sqrt(np.maximum(1.0, cands / PERIODIC_FROM_HZ)))[0]
        best = int(periodic[-1]) if len(periodic) else int(np.argmin(d))
        if not d[best] <= APERIODIC:
            return None
        if pitch_class is None:  # a grid: the best fit within the periodic band found
            while best > 0 and PERIODIC > d[best - 1] < d[best]:
                best -= 1
        h, on = self._harmonics(freqs, float(cands[best]))
        return self._refine(freqs, power, h, on)

    @staticmethod
    def _refine(freqs: np.ndarray, power: np.ndarray, h: np.ndarray, on: np.ndarray) -> Optional[float]:
        """Weighted least squares of f ≈ h·f0 over the matched peaks with h ≤ FIT_HARMONICS."""
        w = power * (on & (h <= FIT_HARMONICS))
        den = float(np.sum(w * h * h))
        if den <= 0.0:
            return None
        f0 = float(np.sum(w * h * freqs)) / den
        return f0 if np.isfinite(f0) and f0 > 0.0 else None
