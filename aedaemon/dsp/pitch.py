"""Fundamental frequency of one magnitude frame: which pitch does this frame sound?

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
   That result is taken only when it scores below `OFF_GAIN` times the class's best octave
   (a noisy frame otherwise wanders off its class: halton3's F# frame played +31 semitones).
5. Refine: f0 from a weighted least-squares fit of h·f0 to the peaks within `TOLERANCE_CENTS`
   of the chosen candidate's harmonics (h ≤ 16).
6. Weak and noise-like frames, pitch class known (issue 9: breathy timbres): the estimate
   never leaves the class. A class octave scoring above `NOISY` (noise-like: the peaks would
   pull a refit anywhere) is returned as it is, up to `NO_CLASS` (white noise scores ~0.87:
   None), and of the octaves within `NOISY_MARGIN` of the best it is the one nearest to the
   peaks' power-weighted median frequency / `NOISY_DIV` (the breath's energy at harmonics 2-4;
   the lowest octaves fit noise best only because they have the most harmonics). A weak
   series (d > `WEAK`) whose octave lies below `REACH_LO` (C7 four octaves down: the shaper's
   reach) moves up an octave when that scores within `NOISY_MARGIN`, its d raised to
   `FORCE_D`. The shaper's harmonic emphasis (shaping.py) then builds the played pitch's
   partials from the frame's own envelope, so the octave chosen is the octave heard. A class
   octave whose octave below fits better still (octave-ambiguous: the odd partials weak, not
   gone) reports d ≥ `AMBIG_D`: some emphasis settles it (halton2's G, 4 octaves down, was
   heard an octave low in some YIN frames).

`estimate` returns None when the frame has no peaks or no candidate explains its power
(silence, noise; with a known class only above NO_CLASS); the caller decides the fallback.
`estimate_periodicity` returns (f0, d): the engine keeps both with the decoded frame and hands
them to the shaper (`SpectralShaper.apply(tracked=...)`), which is how it learns which frames to
emphasise. The steps are compiled
(aedaemon/dsp/_native.c: one pass over the frame for the peaks, then loops over the peak list,
≤ `MAX_PEAKS`; the candidates scored from the highest down, so the search stops at the first
periodic one); as ~25 NumPy calls they cost ~140 µs a frame, compiled ~15-30 (most decoded
frames of a random latent need the full subharmonic search: ~2 300 sin/cos). The NumPy version
is frozen in benchmarks/pitch_reference.py: the same estimates up to rounding
(tests/test_pitch_equivalence.py).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import _native

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
WEAK = 0.1  # a class octave scoring above this (the shaper's emphasis starts there) ...
REACH_LO = 2093.0 / 16.0  # ... below C7 four octaves down (the shaper's reach) ...
FORCE_D = 0.35  # ... moves up an octave (within NOISY_MARGIN), its d at least this (full emphasis)
AMBIG_D = 0.2  # an octave whose octave below fits better still: d at least this (some emphasis)
SUBHARMONIC_PEAKS = 8
SUBHARMONICS = 6
GRID_CENTS = 20.0  # candidate spacing of `candidates(None)` (kept for callers; not used by estimate)
FIT_HARMONICS = 16

_RANGE = 10.0 ** (-RANGE_DB / 20.0)
_TOL = 2.0 ** (TOLERANCE_CENTS / 1200.0) - 1.0


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
        n_bins = n_fft // 2 + 1
        self._peak_tmp = np.zeros(2 * n_bins, dtype=np.int64)  # the compiled step's peak list
        self._in = np.zeros(n_bins)  # a frame that is not float64 is copied here
        self._params = np.array(
            [
                self.bin_hz, self.fmin, self.fmax, _RANGE, MAX_PEAKS, _TOL, PERIODIC, APERIODIC, OFF_CLASS,
                SUBHARMONIC_PEAKS, SUBHARMONICS, FIT_HARMONICS, OFF_GAIN, NOISY, NO_CLASS, NOISY_MARGIN, NOISY_DIV,
                WEAK, REACH_LO, FORCE_D, AMBIG_D,
            ],
            dtype=np.float64,
        )

    def _octaves_of(self, pitch_class: int) -> np.ndarray:
        base = pitch_class_hz(pitch_class)
        k = np.arange(np.ceil(np.log2(self.fmin / base)), np.floor(np.log2(self.fmax / base)) + 1)
        return base * 2.0**k

    def candidates(self, pitch_class: Optional[int]) -> np.ndarray:
        """Ascending candidate f0s: the octaves of the pitch class, or a fine grid."""
        return self._grid if pitch_class is None else self._octaves[pitch_class % 12]

    def _frame(self, mag: np.ndarray) -> np.ndarray:
        mag = np.asarray(mag)
        if mag.dtype == np.float64 and mag.flags.c_contiguous:
            return mag
        if mag.shape == self._in.shape:
            np.copyto(self._in, mag)
            return self._in
        return np.ascontiguousarray(mag, dtype=np.float64)

    def peaks(self, mag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interpolated frequencies (Hz) and lobe powers of the frame's strongest peaks (step 1;
        new arrays, in bin order)."""
        mag = self._frame(mag)
        tmp = self._peak_tmp if len(self._peak_tmp) == 2 * len(mag) else np.zeros(2 * len(mag), np.int64)
        freqs, power = np.zeros(MAX_PEAKS), np.zeros(MAX_PEAKS)
        k = _native.pitch_peaks(mag, tmp, self._params, freqs, power)
        return freqs[:k], power[:k]

    def estimate(self, mag: np.ndarray, pitch_class: Optional[int] = None) -> Optional[float]:
        """f0 in Hz of this frame (A4 = 440 Hz as the model was trained), or None. The engine
        uses estimate_periodicity: its d tells the shaper's harmonic emphasis how noise-like
        the frame is."""
        found = self.estimate_periodicity(mag, pitch_class)
        return None if found is None else found[0]

    def estimate_periodicity(self, mag: np.ndarray, pitch_class: Optional[int] = None) -> Optional[tuple[float, float]]:
        """(f0 in Hz, d) of this frame, d the normalised difference of the chosen candidate
        (0: every peak on its harmonic grid; above ~0.3 noise-like), or None."""
        mag = self._frame(mag)
        tmp = self._peak_tmp if len(self._peak_tmp) == 2 * len(mag) else np.zeros(2 * len(mag), np.int64)
        octaves = None if pitch_class is None else self._octaves[pitch_class % 12]
        return _native.pitch_estimate(mag, octaves, tmp, self._params)


