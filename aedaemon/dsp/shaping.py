"""Spectral shaping of a decoded magnitude frame: transpose, frequency shift, tilt.

- transpose: harmonic pitch shift by 2^(semitones/12) with peak-locked shifting (Laroche &
  Dolson 1999): every spectral peak moves, with the bins around it as a unit, so that it lands
  at r times its frequency, and its main lobe keeps its shape (a stationary sinusoid's lobe has
  the analysis window's shape at any frequency). Scaling the frequency axis instead stretches
  lobes upwards (RTPGHI then gives the lobe's bins different frequencies: a partial splits into
  two a frame rate apart) and drops or misplaces the 2–5-bin lobes of a sparse decoded frame
  downwards, and changes the level by 10·log10(r).
- freq_shift: CANNe's circular roll of the frame by whole bins (an inharmonic shift);
- tilt: CANNe's bass boost generalised: dB per octave around 1 kHz (positive = brighter).

Transpose, step by step (passes over the live bins or the peaks; the analysis of
a frame is kept while only the transpose changes, e.g. during a glide):

1. Live bins: above -90 dB of the frame maximum, plus one bin after each run (where a run's
   fractional shift spills over); a decoded frame has ~100 of 2049.
2. Peaks: bins larger than the two bins below and at least as large as the two above (a Hann
   sidelobe does not count); fractional position by a parabola through the log magnitudes of
   the peak and its neighbours (floored 40 dB below the peak, so a lobe next to the decoder's
   exact zeros gets a finite position).
3. Regions of influence: split midway between neighbouring peaks (inside the zero run between
   two lobes of a sparse frame). A region's valleys are the magnitudes where it and the next
   region start (0 after a zero run).
4. Tonal or noise-like: a region is a partial when its peak stands at least 15 dB above both
   valleys and its participation width (Σm)²/Σm² is at most 8 bins (a Hann main lobe is 4 bins
   wide, 2.7 by that measure; decoded lobes 2–5 bins). Otherwise it is part of a broad,
   noise-like run (the decoder's smooth humps with a few dB of ripple): moving each ripple as a
   "partial" would tear the run into a comb upwards, so those bins are scaled along the axis
   instead (out[k] = in[k/r], the old resampling) and divided by √r, which keeps their energy
   (a noise band transposed by r is r times as wide at 1/r of the density). The decision is per
   region, not per frame: decoded frames mix partials with such humps, and a frame-level
   flatness switch would smear the partials of those frames or comb their humps.
5. Shift: each tonal region moves by δ = p̂·(r − 1) bins, p̂ its peak's fractional position.
   The whole part of δ is an index offset; the fractional part is a linear interpolation of the
   region's *log* magnitudes above a floor 30 dB below its peak (bins at or below it stay
   exactly zero). A Hann lobe is close to a Gaussian (the approximation RTPGHI rests on), whose
   log is a parabola, and linearly interpolating a parabola shifts it exactly up to a constant:
   the lobe is shifted, not reshaped (a -30 dB floor also reproduces a Hann lobe's skirts at a
   half-bin shift, where a deeper floor narrows them). Each region is scaled to its original
   energy (a moved partial keeps its energy), regions are scattered to their target bins, and
   where targets overlap (downwards) they combine by power sum (np.bincount of squares):
   partials of different frequencies add incoherently on average. Targets past Nyquist are
   dropped, nothing lands below bin 0.
6. Formants (optional, `SpectralShaper(..., formants=True)`): a spectral envelope interpolated
   through the peaks' log amplitudes; every moved partial (and noise bin) is multiplied by
   envelope(new frequency) / envelope(old), so partials slide under the original envelope.

7. Harmonic emphasis (before the shift; `harmonic_emphasis`): a frame the pitch tracker
   found with a weak or noise-like series (d above EMPHASIS_FROM, passed as `tracked`) gathers a
   share of each harmonic band's energy into a partial at k·f0 (up to 90 %), the rest kept
   as breath: the timbre's envelope stays, the played pitch's partials come up. Breathy
   timbres otherwise have no pitch a listener (or YIN) can hear: halton4 sounded no pitch in
   10 of its 12 classes.
8. High register (after the shift; `high_register`): a note whose fundamental is at
   HIGH_FROM_HZ or above keeps its brightness in band (partials above max(4 kHz, 4·f0) roll
   off at 18 dB per octave) and its fundamental at least at the strongest partial's level.
   Both are compiled (_native.emphasis, _native.high_register; the NumPy functions of this
   module are their reference, run by benchmarks/shaping_reference.py): the emphasis runs once
   per new frame, the high register on every shaped frame (~1 µs each).

Cost. While the latent moves, `apply` runs every hop on a new frame. The analysis (steps 1-4)
and the shift (5-6) are compiled (aedaemon/dsp/_native.c: a pass over the frame for the live
bins, loops over the live bins and the peaks): as ~60 NumPy calls of ~1-1.5 µs each they cost
~100 µs a frame, compiled ~20. What only depends on the frame is kept for transpose-only calls
(a glide); a new frame is told from the last by one probe bin before the bytes are compared
(in place, no copies).
The output equals the first implementation's (kept as benchmarks/shaping_reference.py) up to
rounding: within 1e-9 of the frame maximum, with the same exact zeros
(tests/test_shaping_equivalence.py). A frame with all three neutral is passed through
untouched; the tilt curve is cached.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import _native

ACTIVE_FLOOR_DB = -90.0  # bins further below the frame maximum are treated as zero
PARABOLA_FLOOR_DB = -40.0  # log floor (relative to the peak) for the fractional position
LOBE_FLOOR_DB = -30.0  # log floor (relative to the region's peak) of the fractional shift
TONAL_PROMINENCE_DB = 15.0  # a partial stands this far above both valleys
TONAL_MAX_WIDTH = 8.0  # bins: participation width (Σm)²/Σm² of a partial's region

# harmonic emphasis of frames with a weak harmonic series (see `harmonic_emphasis`)
EMPHASIS_FROM = 0.1  # the frame's periodicity d (pitch.py) from which partials are emphasised
EMPHASIS_FULL = 0.35  # d at which the emphasis is full
EMPHASIS_MAX = 0.9  # the share of each harmonic band's energy gathered into its partial at most
# the high register (see `high_register`): from this played f0 ...
HIGH_FROM_HZ = 600.0
HIGH_CORNER_HZ = 4000.0  # ... partials above max(this, HIGH_CORNER_HARMONICS · f0) roll off
HIGH_CORNER_HARMONICS = 4.0
HIGH_SLOPE_DB = 18.0  # dB per octave

_ACTIVE_FLOOR = 10.0 ** (ACTIVE_FLOOR_DB / 20.0)
_LOBE_FLOOR = 10.0 ** (LOBE_FLOOR_DB / 20.0)
_PROMINENCE = 10.0 ** (-TONAL_PROMINENCE_DB / 20.0)
_PARABOLA_FLOOR = 10.0 ** (PARABOLA_FLOOR_DB / 20.0)
# what the analysis found (transpose-independent): _native's K_PASS, K_SILENT, K_AXIS, K_PEAKS
_PASS, _SILENT, _AXIS, _PEAKS = range(4)
_KIND, _ARGMAX = 0, 10  # slots of the analysis' info array (see _native.c, SI_*)


def emphasis_amount(d: float) -> float:
    """Share of each harmonic band's energy gathered into its partial for a frame whose tracked
    periodicity is d: 0 up to EMPHASIS_FROM, rising linearly to EMPHASIS_MAX at EMPHASIS_FULL."""
    if not d > EMPHASIS_FROM:
        return 0.0
    return EMPHASIS_MAX * min(1.0, (d - EMPHASIS_FROM) / (EMPHASIS_FULL - EMPHASIS_FROM))


def harmonic_emphasis(mag: np.ndarray, f0_bins: float, beta: float) -> np.ndarray:
    """The frame with the partials of f0 brought up inside its own envelope (a new array).

    Band k, the bins within half an f0 of k·f0, keeps its energy E_k (the timbre's envelope at
    the resolution of the harmonic spacing): a share beta of it becomes a partial at exactly
    k·f0 (a Hann main lobe, cos²(π x/4) over |x| < 2 bins: what a steady sinusoid leaves in a
    frame), the rest stays as it was, scaled by √(1 − beta) (the breath), below the first band
    too (noise under f0 blurs the period). Bins above the last band are untouched; powers add.
    """
    m = np.asarray(mag, dtype=np.float64)
    n = len(m)
    if not (beta > 0.0 and f0_bins >= 2.0 and np.isfinite(f0_bins)):
        return m.copy()
    k_max = int((n - 3) / f0_bins - 0.5)
    if k_max < 1:
        return m.copy()
    p = m * m
    edges = np.minimum(np.round((np.arange(k_max + 1) + 0.5) * f0_bins).astype(np.int64), n)
    c = np.concatenate([[0.0], np.cumsum(p)])
    energy = c[edges[1:]] - c[edges[:-1]]
    centres = np.arange(1, k_max + 1) * f0_bins
    bins = np.floor(centres).astype(np.int64)[:, None] + np.arange(-1, 3)
    x = bins - centres[:, None]
    lobe = np.where(np.abs(x) < 2.0, np.cos(0.25 * np.pi * x) ** 2, 0.0) ** 2
    lobe_energy = lobe.sum(axis=1)
    out = p.copy()
    out[: edges[-1]] *= 1.0 - beta  # the breath below the first band too: noise under f0 blurs the period
    ok = (bins >= 0) & (bins < n)
    np.add.at(out, bins[ok], (beta * energy / lobe_energy)[:, None].repeat(4, axis=1)[ok] * lobe[ok])
    return np.sqrt(out)


def high_register(out: np.ndarray, f0_bins: float, bin_hz: float, curve: np.ndarray) -> None:
    """A note whose fundamental is high (f0 ≥ HIGH_FROM_HZ, after the transpose) keeps its
    brightness in band, in place: partials above max(HIGH_CORNER_HZ, 4·f0) roll off at
    HIGH_SLOPE_DB per octave, and the fundamental is brought up to the strongest partial's level
    when it is weaker (a Hann lobe added at f0, powers adding).

    A frame decoded in the bass register with its brightest partials at harmonics 8…16 and
    moved up three or four octaves would otherwise sound with all of its energy between 10 kHz
    and Nyquist and no fundamental: an instrument's formants do not rise with the note, and in
    the top octaves the fundamental carries the pitch (a periodicity tracker, which compares
    the sound with itself a whole number of samples later, hears such a tone an octave or a
    twelfth low). `curve` is scratch of the frame's length.
    """
    n = len(out)
    if not (f0_bins * bin_hz >= HIGH_FROM_HZ and f0_bins < n - 3):
        return
    corner = max(HIGH_CORNER_HZ, HIGH_CORNER_HARMONICS * f0_bins * bin_hz) / bin_hz
    k0 = int(math.ceil(corner))
    if k0 < n:
        np.divide(np.arange(k0, n, dtype=np.float64), corner, out=curve[k0:])
        np.power(curve[k0:], -HIGH_SLOPE_DB / (20.0 * math.log10(2.0)), out=curve[k0:])
        out[k0:] *= curve[k0:]
    top = float(out.max())
    c = int(round(f0_bins))
    if out[c] < top:
        bins = int(math.floor(f0_bins)) + np.arange(-1, 3)
        x = bins - f0_bins
        lobe = np.where(np.abs(x) < 2.0, np.cos(0.25 * np.pi * x) ** 2, 0.0) * top
        want = np.sqrt(np.maximum(lobe**2 - out[bins] ** 2, 0.0))
        out[bins] = np.sqrt(out[bins] ** 2 + want**2)


class SpectralShaper:
    def __init__(self, n_fft: int, sample_rate: int, formants: bool = False, emphasis: bool = True) -> None:
        self.n_bins = n = n_fft // 2 + 1
        self.emphasis = bool(emphasis)
        self._emph_key: tuple | None = None
        self._emph_src = np.zeros(0)
        self._emph_out = np.zeros(0)
        self._curve = np.zeros(n_fft // 2 + 1)
        self.bin_hz = sample_rate / n_fft
        self.formants = bool(formants)
        self._bins = np.arange(n, dtype=np.float64)
        # the output with one slot either side: targets below bin 0 / past Nyquist land there
        self._ext = np.zeros(n + 2)
        self._out = self._ext[1 : n + 1]
        self._tilt_key: float | None = None
        self._tilt = np.ones(n)
        self._roll = np.zeros(n)
        # the frame with two zero bins either side
        self._pad = np.zeros(n + 4)
        self._frame = self._pad[2:-2]  # the frame last analysed (a view)
        self._in = np.zeros(n)  # a frame that is not float64 is copied here
        self._analysed: bool | None = None  # the formants flag of that analysis (None: none)
        self._probe = 0  # the frame's maximum bin: a new frame almost surely differs there
        # the compiled analysis' results and working memory (layout in _native.c)
        self._ws = np.zeros(12 * n + 3 * (n + 2))
        self._wsi = np.zeros(4 * n + 2 * (n + 1), dtype=np.int64)
        self._info = np.zeros(11)
        self._params = np.array(
            [_ACTIVE_FLOOR, _PARABOLA_FLOOR, _LOBE_FLOOR, _PROMINENCE, TONAL_MAX_WIDTH, float(self.formants)]
        )

    def _analyse(self, mag: np.ndarray) -> None:
        self._params[5] = float(self.formants)
        _native.shape_analyse(mag, self._pad, self._ws, self._wsi, self._info, self._params)
        self._analysed = self.formants
        self._probe = min(max(int(self._info[_ARGMAX]) - 2, 0), self.n_bins - 1)

    def _peak_shift(self, mag: np.ndarray, semitones: float, out: np.ndarray) -> np.ndarray:
        m = mag
        if m.dtype != np.float64 or not m.flags.c_contiguous:
            np.copyto(self._in, m)
            m = self._in
        p = self._probe
        frame = self._frame
        if not (
            self._analysed == self.formants
            and m.shape == frame.shape
            and m.item(p) == frame.item(p)
            and _native.same_bytes(m, frame)
        ):
            self._analyse(m)
        _native.shape_shift(semitones, frame, self._ws, self._wsi, self._info, self._params, self._ext)
        return out

    def _tilt_curve(self, db_per_octave: float) -> np.ndarray:
        if self._tilt_key != db_per_octave:
            freqs = np.maximum(self._bins * self.bin_hz, 20.0)
            self._tilt = 10.0 ** (db_per_octave * np.log2(freqs / 1000.0) / 20.0)
            self._tilt_key = db_per_octave
        return self._tilt

    def _emphasised(self, mag: np.ndarray, found: tuple[float, float]) -> np.ndarray:
        """The frame with harmonic emphasis when the pitch tracker found its series weak
        (`tracked`: d above EMPHASIS_FROM), else the frame itself."""
        f0, d = found
        beta = emphasis_amount(d)
        if beta == 0.0:
            return mag
        key = (f0, beta)
        if self._emph_key == key and self._emph_src.shape == mag.shape and _native.same_bytes(
            np.ascontiguousarray(mag, dtype=np.float64), self._emph_src
        ):
            return self._emph_out
        if self._emph_src.shape != np.shape(mag):
            self._emph_src = np.zeros(np.shape(mag))
            self._emph_out = np.zeros(np.shape(mag))
        np.copyto(self._emph_src, mag)
        _native.emphasis(self._emph_src, self._emph_out, f0 / self.bin_hz, beta)  # harmonic_emphasis
        self._emph_key = key
        return self._emph_out

    def apply(self, mag: np.ndarray, transpose: float = 0.0, freq_shift: int = 0, tilt: float = 0.0,
              tracked: Optional[tuple[float, float]] = None) -> np.ndarray:
        """Shaped copy of `mag` in an internal buffer (valid until the next call). `tracked`: the
        (f0, d) PitchEstimator.estimate_periodicity found for this frame — noise-like frames get
        the harmonic emphasis and high notes the high-register stage; None: neither."""
        out = self._out
        found = tracked if self.emphasis else None
        if found is not None:
            mag = self._emphasised(mag, found)
        if transpose != 0.0:
            self._peak_shift(np.asarray(mag), float(transpose), out)
        else:
            out[:] = mag
        if found is not None:  # high_register, compiled
            _native.high_register(
                out, found[0] * 2.0 ** (float(transpose) / 12.0) / self.bin_hz, self.bin_hz, HIGH_FROM_HZ,
                HIGH_CORNER_HZ, HIGH_CORNER_HARMONICS, HIGH_SLOPE_DB,
            )
        if freq_shift:
            # np.roll without its new array
            n = self.n_bins
            k = int(freq_shift) % n
            if k:
                self._roll[:] = out
                out[k:] = self._roll[: n - k]
                out[:k] = self._roll[n - k :]
        if tilt != 0.0:
            out *= self._tilt_curve(tilt)
        return out
