"""Frozen reference: aedaemon/dsp/pitch.py as of commit a3d59f4 (before its loops were compiled),
the NumPy implementation tests/test_pitch_equivalence.py and benchmarks/bench_hop_profile.py run
next to the live module (PitchEstimator renamed RefPitchEstimator); do not edit, except to follow
a deliberate change of the algorithm. Changed once since (issue 9, pitch on every timbre): with a
known pitch class the off-class result of step 4 is taken only when it scores below OFF_GAIN
times the class's best octave, a class octave scoring above NOISY is returned without the refit
(and up to NO_CLASS instead of None: the octave nearest the peaks' median frequency / 3 of
those within NOISY_MARGIN), a weak series (d > WEAK) below REACH_LO takes the octave above, an octave whose octave
below fits better reports d >= AMBIG_D,
`estimate_periodicity` returns (f0, d), and `estimate` remembers both for the frame
(aedaemon.dsp.pitch.remember) as the live module does.

Fundamental frequency of one magnitude frame (pure numpy): which pitch does this frame sound?

The engine tracks the pitch of each distinct decoded frame and transposes so that the sound
has the pitch that was played. The estimate has to agree with what a listener (or a
time-domain tracker such as YIN) hears, so the octave is chosen the way periodicity decides it:

1. Peaks: local maxima of the frame within `range_db` of its strongest bin, their frequency
   refined by parabolic interpolation on the log magnitude, their power summed over the lobe.
   Only bins above that floor are tested (a decoded frame is mostly exact zeros).
2. Candidates: for a chroma-conditioned model the pitch class is known, so first only the
   octaves pc_freq × 2^k over the audible range.
3. Score: a cosine-comb harmonic sum of the peaks' power — the autocorrelation of the frame
   at the candidate's period, normalised as YIN's cumulative-mean difference:
   d(f) = Σ P·(1 − cos 2πf_p/f) / Σ P·(1 − sinc 2πf_p/f). It is 0 when every partial sits on
   the candidate's harmonic grid. The sound repeats with the period of the *highest* candidate
   with d < `PERIODIC` (one octave too high leaves the odd partials off its grid; one too low
   fits as well but is not the shortest period), as a listener or a time-domain tracker
   decides; if none qualifies, the candidate with the lowest d, unless even that is above
   `APERIODIC` (no fundamental: noise). `PERIODIC` is YIN's own threshold, measured against
   YIN on 2 000 renders of decoded frames (33 timbres × 12 classes × shifts −36…+36): a
   threshold rising with frequency (as before) calls octave-ambiguous frames (odd partials
   ~15 dB down, d ≈ 0.11) an octave higher than YIN hears them at any transposition.
4. Off-class fallback: some timbres decode a frame whose periodicity is not the chroma's class
   (the conditioned class is its 3rd harmonic: the sound is a fifth lower, −7/−19 semitones).
   When even the best octave candidate scores d > `OFF_CLASS`, the search is repeated over
   every f0 the strongest peaks imply (each of the `SUBHARMONIC_PEAKS` strongest divided by
   1…`SUBHARMONICS`: a full search, evaluated on the peak list only) and that result is used.
5. Refine: f0 from a weighted least-squares fit of h·f0 to the peaks within `TOLERANCE_CENTS`
   of the chosen candidate's harmonics (h ≤ 16).

`estimate` returns None when the frame has no peaks or no candidate explains its power
(silence, noise); the caller decides the fallback. Everything is vectorised over the peak
list (≤ `MAX_PEAKS`): about 25 numpy calls per frame.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

A4_HZ = 440.0
FMIN_HZ = 40.0
FMAX_HZ = 4200.0
RANGE_DB = 60.0
MAX_PEAKS = 48
TOLERANCE_CENTS = 40.0
PERIODIC = 0.105  # normalised difference below which a candidate's period counts as the period
APERIODIC = 0.6  # above this for every candidate: no fundamental
OFF_CLASS = 0.15  # best octave of the chroma class above this: search every f0 (step 4)
OFF_GAIN = 0.5  # ... and an f0 off the class is taken only when it scores below this times the class's d
NOISY = 0.3  # the class's best octave above this: returned as it is (no refit)...
NO_CLASS = 0.8  # ... up to this d (white noise scores ~0.87: no fundamental, None)
NOISY_MARGIN = 0.3  # a noise-like frame's octave: of those within this d of the best ...
NOISY_DIV = 3.0  # ... the nearest to the peaks' power-weighted median frequency / this
WEAK = 0.1  # a class octave scoring above this ...
REACH_LO = 2093.0 / 16.0  # ... below C7 four octaves down ...
FORCE_D = 0.35  # ... moves up an octave (within NOISY_MARGIN), its d at least this
AMBIG_D = 0.2  # an octave whose octave below fits better still: d at least this
SUBHARMONIC_PEAKS = 8
SUBHARMONICS = 6
GRID_CENTS = 20.0  # candidate spacing of `candidates(None)` (kept for callers; not used by estimate)
FIT_HARMONICS = 16

_RANGE = 10.0 ** (-RANGE_DB / 20.0)
_TOL = 2.0 ** (TOLERANCE_CENTS / 1200.0) - 1.0
_EMPTY = np.zeros(0)
_TWO_PI = 2.0 * np.pi
_TRIPLE = np.arange(3)  # (bin - 1, bin, bin + 1) of bins indexed from 1
_PARABOLA = np.array([[0.5, 1.0], [0.0, -2.0], [-0.5, 1.0]])
_ONES3 = np.ones(3)


def pitch_class_hz(pitch_class: int, a4: float = A4_HZ) -> float:
    """Frequency of pitch class 0..11 (C..B) in the octave of A4."""
    return a4 * 2.0 ** ((pitch_class - 9) / 12.0)


def hz_to_midi(hz: float, a4: float = A4_HZ) -> float:
    return 69.0 + 12.0 * float(np.log2(hz / a4))


def midi_to_hz(note: float, a4: float = A4_HZ) -> float:
    return a4 * 2.0 ** ((note - 69.0) / 12.0)


class RefPitchEstimator:
    """f0 of magnitude frames of one size and rate; `estimate(mag, pitch_class)` → Hz or None."""

    def __init__(self, n_fft: int, sample_rate: int, fmin: float = FMIN_HZ, fmax: float = FMAX_HZ) -> None:
        self.bin_hz = sample_rate / n_fft
        self.fmin = fmin
        self.fmax = min(fmax, sample_rate / 4.0)
        steps = int(np.floor(1200.0 * np.log2(self.fmax / fmin) / GRID_CENTS)) + 1
        self._grid = fmin * 2.0 ** (np.arange(steps) * GRID_CENTS / 1200.0)
        self._octaves = [self._octaves_of(pc) for pc in range(12)]
        self._sub = 1.0 / np.arange(1, SUBHARMONICS + 1, dtype=np.float64)
        self._bin_freq = np.arange(1, n_fft // 2 + 2) * self.bin_hz  # Hz of bin k + 1 (peaks indexed from 1)

    def _octaves_of(self, pitch_class: int) -> np.ndarray:
        base = pitch_class_hz(pitch_class)
        k = np.arange(np.ceil(np.log2(self.fmin / base)), np.floor(np.log2(self.fmax / base)) + 1)
        return base * 2.0**k

    def candidates(self, pitch_class: Optional[int]) -> np.ndarray:
        """Ascending candidate f0s: the octaves of the pitch class, or a fine grid."""
        return self._grid if pitch_class is None else self._octaves[pitch_class % 12]

    def peaks(self, mag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interpolated frequencies (Hz) and lobe powers of the frame's strongest peaks."""
        mag = np.asarray(mag, dtype=np.float64)
        n = len(mag)
        if n < 3:
            return _EMPTY, _EMPTY
        top = float(mag.max())
        if not (top > 0.0 and math.isfinite(top)):
            return _EMPTY, _EMPTY
        floor = top * _RANGE
        # decoded frames are mostly exact zeros: the local-maximum rule only above the floor,
        # on (bin - 1, bin, bin + 1) triples gathered at once (the edge bins never count)
        above = np.flatnonzero(mag[1:-1] > floor)
        tri = mag[above[:, None] + _TRIPLE]
        keep = (tri[:, 1] > tri[:, 0]) & (tri[:, 1] >= tri[:, 2])
        tri = tri[keep]
        idx = above[keep]
        if len(idx) > MAX_PEAKS:
            sel = np.argpartition(tri[:, 1], -MAX_PEAKS)[-MAX_PEAKS:]
            tri, idx = tri[sel], idx[sel]
        power = np.square(tri) @ _ONES3
        # parabola on the floored log magnitude (a ReLU zero next to a peak is not -inf):
        # columns (a - g, a - 2b + g); at a strict maximum (b > a, b >= g) the vertex offset
        # (a - g) / 2(a - 2b + g) lies within ±0.5 bin, no clipping needed
        nd = np.log(np.maximum(tri, floor * 1e-2)) @ _PARABOLA
        delta = nd[:, 0] / nd[:, 1]
        delta *= self.bin_hz
        delta += self._bin_freq[idx]
        return delta, power

    @staticmethod
    def periodicity(freqs: np.ndarray, power: np.ndarray, cands: np.ndarray) -> np.ndarray:
        """Normalised difference d per candidate (0: every peak on its harmonic grid)."""
        x = np.multiply.outer(_TWO_PI / cands, freqs)
        total = power.sum()
        num = total - np.cos(x) @ power
        den = total - (np.sin(x) / x) @ power
        return num / np.maximum(den, 1e-300)

    def _subharmonics(self, freqs: np.ndarray, power: np.ndarray) -> np.ndarray:
        """Ascending f0s the strongest peaks imply (peak / 1…SUBHARMONICS) within fmin..fmax."""
        strong = freqs[np.argsort(power)[-SUBHARMONIC_PEAKS:]] if len(freqs) > SUBHARMONIC_PEAKS else freqs
        c = np.multiply.outer(strong, self._sub).ravel()
        c = c[(c >= self.fmin) & (c <= self.fmax)]
        c.sort()
        return c

    @staticmethod
    def _pick(d: np.ndarray) -> int:
        """The highest candidate whose period is the sound's (d < PERIODIC), else the best fit."""
        periodic = np.flatnonzero(d < PERIODIC)
        return int(periodic[-1]) if len(periodic) else int(np.argmin(d))

    def estimate(self, mag: np.ndarray, pitch_class: Optional[int] = None) -> Optional[float]:
        """f0 in Hz of this frame (A4 = 440 Hz as the model was trained), or None."""
        found = self.estimate_periodicity(mag, pitch_class)
        return None if found is None else found[0]

    def estimate_periodicity(self, mag: np.ndarray, pitch_class: Optional[int] = None) -> Optional[tuple[float, float]]:
        """(f0 in Hz, d of the chosen candidate), or None."""
        freqs, power = self.peaks(mag)
        if not len(freqs):
            return None
        total = float(power.sum())
        if not total > 0.0:
            return None
        f_in = d_in = None
        octaves = d_oct = None
        best_oct = 0
        if pitch_class is not None:
            octaves = self._octaves[pitch_class % 12]
            d_oct = self.periodicity(freqs, power, octaves)
            best_oct = self._pick(d_oct)
            f_in, d_in = float(octaves[best_oct]), float(d_oct[best_oct])
        use_in = f_in is not None
        f, d_best = f_in, d_in
        if not use_in or d_in > OFF_CLASS:  # unconditioned, or off the class: every f0
            cands = self._subharmonics(freqs, power)
            if len(cands):
                d = self.periodicity(freqs, power, cands)
                best = self._pick(d)
                if not use_in or d[best] < OFF_GAIN * d_in:
                    use_in = False
                    f, d_best = float(cands[best]), float(d[best])
            elif not use_in:
                return None
        cls = (freqs, power, octaves, d_oct, f_in, d_in)
        if use_in:
            if not d_best <= NOISY:
                return self._class_octave(*cls)
            if d_best > WEAK and f_in < REACH_LO and best_oct + 1 < len(octaves) and (
                d_oct[best_oct + 1] <= d_in + NOISY_MARGIN
            ):
                return float(octaves[best_oct + 1]), max(float(d_oct[best_oct + 1]), FORCE_D)
        elif not d_best <= APERIODIC:
            return self._class_octave(*cls) if f_in is not None else None
        f0 = self._refine(freqs, power, f)
        if f0 is not None and use_in and best_oct > 0 and AMBIG_D > 0.0:
            d_below = float(self.periodicity(freqs, power, octaves[best_oct - 1 : best_oct])[0])
            if d_below < d_best:
                d_best = max(d_best, AMBIG_D)
        if f0 is not None:
            return f0, d_best
        return self._class_octave(*cls) if f_in is not None else None

    @staticmethod
    def _class_octave(freqs, power, octaves, d_oct, f_in: float, d_in: float) -> Optional[tuple[float, float]]:
        """The pitch class is known and the frame noise-like: of the octaves within NOISY_MARGIN
        of the best, the nearest to the peaks' power-weighted median frequency / NOISY_DIV, as
        it is; None when even the best scores above NO_CLASS."""
        if not (d_in <= NO_CLASS and f_in > 0.0):
            return None
        order = np.argsort(freqs, kind="stable")  # the peak list is not in bin order past MAX_PEAKS
        acc = np.cumsum(power[order])
        med = float(freqs[order][min(int(np.searchsorted(acc, 0.5 * float(acc[-1]))), len(freqs) - 1)])
        goal = np.log2(med / NOISY_DIV)
        ok = np.flatnonzero(d_oct <= d_in + NOISY_MARGIN)
        if not len(ok):
            return f_in, d_in
        k = int(ok[np.argmin(np.abs(np.log2(octaves[ok]) - goal))])
        return float(octaves[k]), float(d_oct[k])

    def _refine(self, freqs: np.ndarray, power: np.ndarray, f: float) -> Optional[float]:
        """Weighted least squares of f ≈ h·f0 over the peaks within TOLERANCE_CENTS of candidate
        f's harmonics h ≤ FIT_HARMONICS."""
        r = freqs * (1.0 / f)
        h = np.rint(r)  # a peak below f/2 has h = 0: no weight
        on = np.abs(r - h) <= np.maximum(h * _TOL, 0.5 * self.bin_hz / f)
        on &= h <= FIT_HARMONICS
        w = power * on
        w *= h
        den = float(w @ h)
        if den <= 0.0:
            return None
        f0 = float(w @ freqs) / den
        return f0 if math.isfinite(f0) and f0 > 0.0 else None
