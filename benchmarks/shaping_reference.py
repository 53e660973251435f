"""Frozen reference: aedaemon/dsp/shaping.py as of commit 62083cf/66ac9b3 (the first
peak-locked SpectralShaper, ~180 µs per new frame), kept verbatim as `ReferenceShaper` so that
the optimised shaper can be checked against it (tests/test_shaping_equivalence.py) and timed
beside it (benchmarks/bench_transpose.py). Do not optimise this file. One addition since, to
follow a deliberate change of the algorithm (issue 9, pitch on every timbre): the harmonic
emphasis of frames the pitch tracker found noise-like runs first and the high-register stage
after the shift, as in the live shaper (both are NumPy, aedaemon.dsp.shaping.harmonic_emphasis
and high_register, shared).

Original module docstring follows.

Spectral shaping of a decoded magnitude frame: transpose, frequency shift, tilt.

- transpose: harmonic pitch shift by 2^(semitones/12) with peak-locked shifting (Laroche &
  Dolson 1999): every spectral peak moves, with the bins around it as a unit, so that it lands
  at r times its frequency, and its main lobe keeps its shape (a stationary sinusoid's lobe has
  the analysis window's shape at any frequency). Scaling the frequency axis instead stretches
  lobes upwards (RTPGHI then gives the lobe's bins different frequencies: a partial splits into
  two a frame rate apart) and drops or misplaces the 2–5-bin lobes of a sparse decoded frame
  downwards, and changes the level by 10·log10(r).
- freq_shift: CANNe's circular roll of the frame by whole bins (an inharmonic shift);
- tilt: CANNe's bass boost generalised: dB per octave around 1 kHz (positive = brighter).

Transpose, step by step (vector steps over the live bins or the peaks, no loop; the analysis of
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

The axis grid and the tilt curve only change when their parameters do, so they are cached; a
frame with all three neutral is passed through untouched.
"""

from __future__ import annotations

import math

import numpy as np

ACTIVE_FLOOR_DB = -90.0  # bins further below the frame maximum are treated as zero
PARABOLA_FLOOR_DB = -40.0  # log floor (relative to the peak) for the fractional position
LOBE_FLOOR_DB = -30.0  # log floor (relative to the region's peak) of the fractional shift
TONAL_PROMINENCE_DB = 15.0  # a partial stands this far above both valleys
TONAL_MAX_WIDTH = 8.0  # bins: participation width (Σm)²/Σm² of a partial's region

_ACTIVE_FLOOR = 10.0 ** (ACTIVE_FLOOR_DB / 20.0)
_LOBE_FLOOR = 10.0 ** (LOBE_FLOOR_DB / 20.0)
_PROMINENCE = 10.0 ** (-TONAL_PROMINENCE_DB / 20.0)
_PARABOLA_FLOOR = 10.0 ** (PARABOLA_FLOOR_DB / 20.0)
_NEIGHBOURS = np.arange(-2, 3)


class ReferenceShaper:
    def __init__(self, n_fft: int, sample_rate: int, formants: bool = False) -> None:
        self.n_bins = n = n_fft // 2 + 1
        self.bin_hz = sample_rate / n_fft
        self.formants = bool(formants)
        self._bins = np.arange(n, dtype=np.float64)
        self._out = np.zeros(n)
        self._tmp = np.zeros(n)
        self._grid_key: float | None = None
        self._lo = np.zeros(n, dtype=np.intp)
        self._hi = np.ones(n, dtype=np.intp)
        self._src = np.zeros(n)
        self._frac = np.zeros(n)
        self._valid = np.ones(n, dtype=bool)
        self._tilt_key: float | None = None
        self._tilt = np.ones(n)
        # peak-locked shift: frame with 2 zero bins either side, masks, noise-like part
        self._pad = np.zeros(n + 4)
        self._live = np.zeros(n + 4, dtype=bool)
        self._frame = np.zeros(n)  # the frame last analysed
        self._have_frame = False
        self._an: dict = {}
        self._pad_noise = np.zeros(n + 4)  # noise-like bins of the frame, padded like _pad
        self._noise = self._pad_noise[2:-2]
        self._noise_out = np.zeros(n)

    # ---- axis scaling (noise-like regions) ---------------------------------------------

    def _grid(self, semitones: float) -> None:
        # recomputed every frame while a transpose glides: few, in-place vector steps
        if self._grid_key == semitones:
            return
        src = np.multiply(self._bins, 2.0 ** (-semitones / 12.0), out=self._src)
        lo = self._lo
        lo[:] = src  # truncation = floor: src >= 0
        np.less(lo, self.n_bins - 1, out=self._valid)
        np.minimum(lo, self.n_bins - 2, out=lo)
        np.subtract(src, lo, out=self._frac)
        self._frac *= self._valid  # 0 past the top bin (out[k] there is zeroed anyway)
        np.add(lo, 1, out=self._hi)
        self._grid_key = semitones

    def _scale_axis(self, src: np.ndarray, semitones: float, out: np.ndarray) -> np.ndarray:
        """out[k] = src[k / r] / √r (linear interpolation): the band keeps its energy."""
        self._grid(semitones)
        np.take(src, self._lo, out=out)
        np.take(src, self._hi, out=self._tmp)
        self._tmp -= out
        self._tmp *= self._frac
        out += self._tmp
        out *= self._valid
        out *= 2.0 ** (-semitones / 24.0)
        return out

    # ---- peak-locked shift -------------------------------------------------------------

    def _analyse(self, mag: np.ndarray) -> None:
        """Peaks, regions, tonal/noise, log magnitudes of the frame: everything that does not
        depend on the transpose (kept while the frame stays the same, e.g. during a glide)."""
        n = self.n_bins
        pad = self._pad  # the frame with two zero bins either side (float64)
        pad[2:-2] = mag
        self._frame[:] = pad[2:-2]
        self._have_frame = True
        top = float(pad.max())
        an = self._an
        an.clear()
        if not math.isfinite(top):
            an["kind"] = "pass"  # NaN/inf: passed on for the engine's guard to see
            return
        if not top > 0.0:
            an["kind"] = "silent"
            return
        # live bins: above the floor, plus one bin to the right of each run (where a run's
        # fractional shift spills over); indices are into pad (frame bin + 2) from here on
        live = self._live
        np.greater(pad, top * _ACTIVE_FLOOR, out=live)
        np.logical_or(live[1:], live[:-1], out=live[1:])
        live[n + 2 :] = False
        act = live.nonzero()[0]
        nb = pad[act[:, None] + _NEIGHBOURS]  # (live bins, 5): m[k-2] … m[k+2]
        ma = nb[:, 2].copy()
        # peaks: larger than the two bins below, at least as large as the two above (argmax
        # returns the first maximum: exactly that rule)
        pkc = (nb.argmax(axis=1) == 2).nonzero()[0]  # peaks as indices into the live bins
        npk = len(pkc)
        if not npk:
            an["kind"] = "axis"
            return
        # fractional positions: parabola through the log magnitudes relative to the peak,
        # the neighbours floored PARABOLA_FLOOR_DB below it (a lobe next to an exact zero);
        # a strict maximum keeps the vertex within ±0.5 bin
        q = nb[pkc]
        pv = q[:, 2]
        rel = q[:, 1:4:2] / pv[:, None]
        np.maximum(rel, _PARABOLA_FLOOR, out=rel)
        np.log(rel, out=rel)
        den = rel.sum(axis=1)
        np.minimum(den, -1e-12, out=den)
        den *= 2.0
        frac = rel[:, 0] - rel[:, 1]
        frac /= den
        pk = act[pkc]
        pos = pk + frac  # pad coordinates
        # regions of influence: split midway between neighbouring peaks (in a sparse frame
        # that is inside the zero run between them)
        bounds = np.empty(npk)
        bounds[0] = -1.0
        np.add(pk[:-1], pk[1:], out=bounds[1:])
        bounds[1:] *= 0.5
        st = np.searchsorted(act, bounds)  # first live bin of each region
        rid = np.searchsorted(bounds[1:], act, side="right")  # region of each live bin
        # adjacency: live bin i+1 is the next bin and in the same region as live bin i
        adj = act[1:] - act[:-1] == 1
        # valleys: the magnitude where a region starts, 0 right after a zero run
        cost = np.empty(len(act) + 1)
        cost[0] = ma[0] if act[0] == 2 else 0.0
        np.multiply(ma[1:], adj, out=cost[1:-1])
        cost[-1] = 0.0
        cs = cost[np.append(st, len(act))]
        valley = np.maximum(cs[:-1], cs[1:])  # the higher of each peak's two valleys
        adj &= rid[1:] == rid[:-1]
        # tonal: prominent (valleys ≥ 15 dB down) and narrow (participation width ≤ 8 bins)
        e_in = np.bincount(rid, weights=ma * ma, minlength=npk)
        s_in = np.bincount(rid, weights=ma, minlength=npk)
        s_in *= s_in
        tonal = s_in <= TONAL_MAX_WIDTH * e_in
        tonal &= valley <= pv * _PROMINENCE
        # R: log magnitude above the region's floor (LOBE_FLOOR_DB below its peak), >= 0
        R = ma / (pv * _LOBE_FLOOR)[rid]
        np.maximum(R, 1.0, out=R)  # x / x is exactly 1: a bin at or below the floor gets R = 0
        np.log(R, out=R)
        Rp = R[:-1] * adj  # the bin below, in the same region (0 elsewhere)
        pos -= 2.0  # frame bins
        an.update(kind="peaks", act=act, pos=pos, rid=rid, R=R, Rp=Rp, e_in=e_in, npk=npk, lpv=None)
        if self.formants:
            an["lpv"] = np.log(pv)
        if tonal.all():
            an["tonal"] = None
        else:
            an["tonal"] = tonal
            noisy = ~tonal[rid]
            noise = self._pad_noise
            noise[:] = 0.0
            noise[act[noisy]] = ma[noisy]
            if not tonal.any():
                an["kind"] = "axis-noise"

    def _peak_shift(self, mag: np.ndarray, semitones: float, out: np.ndarray) -> np.ndarray:
        n = self.n_bins
        if not (self._have_frame and self._an.get("formants") == self.formants and np.array_equal(mag, self._frame)):
            self._analyse(mag)
            self._an["formants"] = self.formants
        an = self._an
        kind = an["kind"]
        if kind == "pass":
            out[:] = self._frame
            return out
        if kind == "silent":
            out[:] = 0.0
            return out
        r = 2.0 ** (semitones / 12.0)
        if kind == "axis":
            return self._scale_axis(self._frame, semitones, out)
        pos, lpv = an["pos"], an["lpv"]
        if kind == "axis-noise":
            self._scale_axis(self._noise, semitones, out)
            if lpv is not None:
                out *= self._formant_gain_bins(pos, lpv, r)
            return out
        act, rid, R, tonal = an["act"], an["rid"], an["R"], an["tonal"]
        # each tonal region moves by delta = pos * (r - 1) bins: the whole part is an index
        # offset, the fractional part f a linear interpolation of the log magnitudes R:
        # value at bin j + shift = (1 - f) R[j] + f R[j - 1]
        delta = pos * (r - 1.0)
        shift = np.floor(delta)
        f = delta - shift
        shift = shift.astype(np.intp)
        fb = f[rid]
        val = R * fb
        np.subtract(R, val, out=val)
        fb = fb[1:]
        fb *= an["Rp"]
        val[1:] += fb
        # squared magnitude above the floor: expm1 keeps a floor value at exactly 0
        val *= 2.0
        w = np.expm1(val, out=val)
        # each moved region keeps its energy (noise-like regions are not moved: gain 0)
        e = np.bincount(rid, weights=w, minlength=an["npk"])
        np.maximum(e, 1e-300, out=e)
        g = np.divide(an["e_in"], e, out=e)
        if tonal is not None:
            g *= tonal
        if lpv is not None:
            g *= np.exp(2.0 * (np.interp(pos * r, pos, lpv) - lpv))
        w *= g[rid]
        tgt = shift[rid]
        tgt += act  # pad coordinates: frame bin + 2
        lift = max(-2 - int(shift[0]), -2 - int(shift[-1]), 0)  # shift is monotonic in the peaks
        if lift:
            tgt += lift  # bincount needs indices >= 0; the bins below 0 are cut off below
        lo = 2 + lift
        power = np.bincount(tgt, weights=w, minlength=n + lo)
        # overlapping regions add by power; nothing below bin 0, targets past Nyquist fall off
        np.sqrt(power[lo : n + lo], out=out)
        if tonal is not None:
            nz = self._scale_axis(self._noise, semitones, self._noise_out)
            if lpv is not None:
                nz *= self._formant_gain_bins(pos, lpv, r)
            nz *= nz
            out *= out
            out += nz
            np.sqrt(out, out=out)
        return out

    def _formant_gain_bins(self, pos: np.ndarray, env_log: np.ndarray, r: float) -> np.ndarray:
        """Per output bin k: envelope(k) / envelope(k / r)."""
        k = self._bins
        return np.exp(np.interp(k, pos, env_log) - np.interp(k / r, pos, env_log))

    def _tilt_curve(self, db_per_octave: float) -> np.ndarray:
        if self._tilt_key != db_per_octave:
            freqs = np.maximum(self._bins * self.bin_hz, 20.0)
            self._tilt = 10.0 ** (db_per_octave * np.log2(freqs / 1000.0) / 20.0)
            self._tilt_key = db_per_octave
        return self._tilt

    def apply(self, mag: np.ndarray, transpose: float = 0.0, freq_shift: int = 0, tilt: float = 0.0,
              tracked=None) -> np.ndarray:
        """Shaped copy of `mag` in an internal buffer (valid until the next call)."""
        from aedaemon.dsp import shaping

        found = tracked
        if found is not None and shaping.emphasis_amount(found[1]) > 0.0:
            mag = shaping.harmonic_emphasis(mag, found[0] / self.bin_hz, shaping.emphasis_amount(found[1]))
        out = self._out
        if transpose != 0.0:
            self._peak_shift(mag, float(transpose), out)
        else:
            out[:] = mag
        if found is not None:
            f0_bins = found[0] * 2.0 ** (float(transpose) / 12.0) / self.bin_hz
            shaping.high_register(out, f0_bins, self.bin_hz, np.zeros(len(out)))
        if freq_shift:
            out[:] = np.roll(out, int(freq_shift))
        if tilt != 0.0:
            out *= self._tilt_curve(tilt)
        return out

