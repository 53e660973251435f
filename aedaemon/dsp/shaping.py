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

Cost. While the latent moves, `apply` runs every hop on a new frame, so it is written for the
number of numpy calls (~1–1.5 µs each on ~100 elements), not for array sizes: everything runs on
the live bins or the peaks. Per frame: the maximum by argmax (faster than max, same NaN), the
neighbours of the live bins by one gather through a precomputed index table, the parabola's
sum and difference by one 2×2 product, regions by two `searchsorted` on integer keys (2·bin
against the sums of neighbouring peaks), per-region sums by `np.bincount`, all per-region
quantities onto the bins by one `take` of a stacked table; what only depends on the frame (2R,
its difference to the bin below, each bin's peak position, the regions' energies) is kept for
transpose-only calls. Per transpose: the noise-like part is axis-scaled only over the output
bins its input bins reach (an exact span of the grid, by np.interp on unit spacing: the same
arithmetic), upward targets are distinct (regions move apart) and are written directly,
downward ones add by np.bincount; a new frame is told from the last by one probe bin before the
bytes are compared. The output equals the first implementation's (kept as
benchmarks/shaping_reference.py) up to rounding: within 5e-14 of the frame maximum, with the
same exact zeros (tests/test_shaping_equivalence.py). A frame with all three neutral is passed
through untouched; the tilt curve is cached.
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
# [2(l0 + l1), l0 - l1] of the neighbours' log magnitudes in one product (exact: ×2, ×±1)
_PARABOLA = np.array([[2.0, 2.0], [1.0, -1.0]])

# what the analysis found (transpose-independent)
_PASS, _SILENT, _AXIS, _PEAKS = range(4)


class SpectralShaper:
    def __init__(self, n_fft: int, sample_rate: int, formants: bool = False) -> None:
        self.n_bins = n = n_fft // 2 + 1
        self.bin_hz = sample_rate / n_fft
        self.formants = bool(formants)
        self._bins = np.arange(n, dtype=np.float64)
        # the output with one slot either side: targets below bin 0 / past Nyquist land there
        self._ext = np.zeros(n + 2)
        self._out = self._ext[1 : n + 1]
        self._tilt_key: float | None = None
        self._tilt = np.ones(n)
        # the frame with two zero bins either side; pad[_i5[j]] = m[j-2 … j+2] for frame bin j
        self._pad = np.zeros(n + 4)
        self._i5 = np.arange(n)[:, None] + np.arange(5)
        self._frame = self._pad[2:-2]  # the frame last analysed (a view)
        self._analysed: bool | None = None  # the formants flag of that analysis (None: none)
        self._probe = 0  # the frame's maximum bin: a new frame almost surely differs there
        self._bytes: bytes | None = None
        self._gt = np.zeros(n + 1, dtype=bool)
        self._live = np.zeros(n, dtype=bool)
        # noise-like bins (frame bins, two zeros past Nyquist)
        self._noise = np.zeros(n + 2)
        self._kind = _SILENT
        self._has_noise = False
        self._j0 = self._j1 = 0  # lowest and highest noise-like bin

    # ---- analysis (everything that does not depend on the transpose) -------------------

    def _analyse(self, mag: np.ndarray) -> None:
        n = self.n_bins
        pad = self._pad
        pad[2:-2] = mag
        self._analysed = self.formants
        self._bytes = None  # the frame's bytes, taken when a later call may reuse the analysis
        i = int(pad.argmax())  # the first NaN if any (as max() would give NaN); faster
        top = float(pad[i])
        self._probe = min(max(i - 2, 0), n - 1)
        if not math.isfinite(top):
            self._kind = _PASS  # NaN/inf: passed on for the engine's guard to see
            return
        if not top > 0.0:
            self._kind = _SILENT
            return
        # live bins: above the floor, or right after such a bin (where a run's fractional
        # shift spills over); frame bins 0 … n-1
        gt = np.greater(pad[1 : n + 2], top * _ACTIVE_FLOOR, out=self._gt)
        act = np.logical_or(gt[1:], gt[:-1], out=self._live).nonzero()[0]
        nb = pad.take(self._i5.take(act, axis=0))  # (live bins, 5): m[k-2] … m[k+2]
        # peaks: larger than the two bins below, at least as large as the two above (argmax
        # returns the first maximum: exactly that rule)
        pkc = (nb.argmax(axis=1) == 2).nonzero()[0]  # peaks as indices into the live bins
        npk = len(pkc)
        if not npk:
            self._set_noise(self._frame, 0, n - 1)
            self._kind = _AXIS
            return
        # fractional positions: parabola through the log magnitudes relative to the peak,
        # the neighbours floored PARABOLA_FLOOR_DB below it (a lobe next to an exact zero)
        q = nb[pkc]
        pv = q[:, 2]
        rel = np.divide(q[:, 1:4:2].T, pv)  # (2, peaks): m[k-1] / m[k], m[k+1] / m[k]
        np.maximum(rel, _PARABOLA_FLOOR, out=rel)
        np.log(rel, out=rel)
        dn = np.dot(_PARABOLA, rel)  # [2(l0 + l1), l0 - l1]
        den = dn[0]
        np.minimum(den, -2e-12, out=den)
        pk = act[pkc]
        # per region: [peak · lobe floor, peak position, noise-like]
        tab = np.empty((npk, 3))
        pos = tab[:, 1]
        np.divide(dn[1], den, out=pos)
        pos += pk
        # regions of influence, split midway between neighbouring peaks: bin k belongs to
        # region #{j: pk[j-1] + pk[j] <= 2k} (integer keys, no halves); sf = [-1, those
        # sums, beyond the last bin], so st = [0, first live bin of regions 1 …, L]
        nl = len(act)
        sf = np.empty(npk + 1, dtype=np.intp)
        sf[0] = -1
        sf[npk] = 2 * n
        np.add(pk[:-1], pk[1:], out=sf[1:npk])
        act2 = act + act
        rid = sf[1:npk].searchsorted(act2, "right")
        st = act2.searchsorted(sf)
        st1 = st[1:npk]
        ma = nb[:, 2]
        # valleys: the magnitude where a region starts, 0 right after a zero run (or where
        # live bins are not neighbours) and past the last region; the higher of the two
        adj = act[1:] - act[:-1] == 1
        cost = np.empty(nl + 1)
        cost[0] = float(ma[0]) if act[0] == 0 else 0.0
        cost[nl] = 0.0
        np.multiply(ma[1:], adj, out=cost[1:nl])
        sv = cost[st]
        # tonal: narrow (participation width (Σm)²/Σm² ≤ 8 bins) and prominent (valleys at
        # least 15 dB down)
        e_in = np.bincount(rid, weights=ma * ma, minlength=npk)
        s_in = np.bincount(rid, weights=ma, minlength=npk)
        s_in *= s_in
        tonal = s_in <= TONAL_MAX_WIDTH * e_in
        valley = np.maximum(sv[:-1], sv[1:])
        tonal &= valley <= pv * _PROMINENCE
        ntonal = int(np.count_nonzero(tonal))
        np.multiply(pv, _LOBE_FLOOR, out=tab[:, 0])
        if ntonal < npk:
            np.logical_not(tonal, out=tab[:, 2])
        per_bin = tab.take(rid, axis=0)  # (live bins, 3)
        # 2R: twice the log magnitude above the region's floor (LOBE_FLOOR_DB below its peak),
        # >= 0; a bin at or below the floor is exactly 0 (x / x is exactly 1)
        R2 = np.divide(ma, per_bin[:, 0])
        np.maximum(R2, 1.0, out=R2)
        np.log(R2, out=R2)
        R2 *= 2.0
        # D = 2R of the bin below (same region, neighbour bin; else 0) − 2R: the fractional
        # shift f interpolates 2R + f·D
        D = np.empty(nl)
        D[0] = 0.0
        np.multiply(R2[:-1], adj, out=D[1:])
        D[st1] = 0.0
        D -= R2
        self._act1, self._rid, self._R2, self._D, self._posb = act + 1, rid, R2, D, per_bin[:, 1]
        self._npk = npk
        self._ntonal = ntonal
        self._pos_last = float(pos[-1])
        self._act_first, self._act_last = int(act[0]), int(act[-1])
        self._pos = pos
        self._lpv = np.log(pv) if self.formants else None
        self._kind = _PEAKS
        if ntonal < npk:
            self._e_in = e_in * tonal  # noise-like regions are not moved: gain 0
            nm = np.multiply(ma, per_bin[:, 2])
            iz = nm.nonzero()[0]
            self._noise.fill(0.0)
            self._noise[act] = nm
            self._set_noise(None, int(act[iz[0]]), int(act[iz[-1]]))
        else:
            self._e_in = e_in
            self._has_noise = False

    def _set_noise(self, values, j0: int, j1: int) -> None:
        """Noise-like bins j0 … j1 (values: all of them; None: already in _noise)."""
        noise = self._noise
        if values is not None:
            noise[: self.n_bins] = values
        self._j0, self._j1 = j0, j1
        self._has_noise = True

    # ---- axis scaling of the noise-like bins -------------------------------------------

    def _noise_span(self, semitones: float, r: float):
        """out[k] = noise[k / r] / √r (linear interpolation: the band keeps its energy) over
        the output bins k whose source interval touches a noise-like bin (elsewhere 0):
        (k0, values) or None."""
        n = self.n_bins
        c = 2.0 ** (-semitones / 12.0)
        lo_min = max(self._j0 - 1, 0)
        lo_max = min(self._j1, n - 2)  # a source at or past the top bin gives 0
        if lo_max < lo_min:
            return None
        # k0: the first k with int(k·c) >= lo_min; k1: the first with int(k·c) > lo_max
        k0 = min(int(math.ceil(lo_min / c)), n)
        while k0 > 0 and int((k0 - 1) * c) >= lo_min:
            k0 -= 1
        while k0 < n and int(k0 * c) < lo_min:
            k0 += 1
        k1 = min(int((lo_max + 1) / c), n)
        while k1 > k0 and int((k1 - 1) * c) > lo_max:
            k1 -= 1
        while k1 < n and int(k1 * c) <= lo_max:
            k1 += 1
        if k1 <= k0:
            return None
        # np.interp on unit spacing: noise[lo] + (noise[lo + 1] − noise[lo])·(src − lo)
        val = np.interp(np.multiply(self._bins[k0:k1], c), self._bins[: lo_max + 2], self._noise[: lo_max + 2])
        val *= 2.0 ** (-semitones / 24.0)
        if self._lpv is not None and self._kind == _PEAKS:
            k = self._bins[k0:k1]
            pos, env = self._pos, self._lpv
            val *= np.exp(np.interp(k, pos, env) - np.interp(k / r, pos, env))
        return k0, val

    # ---- peak-locked shift -------------------------------------------------------------

    def _peak_shift(self, mag: np.ndarray, semitones: float, out: np.ndarray) -> np.ndarray:
        m = np.asarray(mag, dtype=np.float64)
        p = self._probe
        frame = self._frame
        if not (self._analysed == self.formants and m.shape == frame.shape and m.item(p) == frame.item(p)):
            self._analyse(m)
        else:
            if self._bytes is None:
                self._bytes = frame.tobytes()
            if m.tobytes() != self._bytes:
                self._analyse(m)
        kind = self._kind
        if kind == _PASS:
            out[:] = self._frame
            return out
        if kind == _SILENT:
            out.fill(0.0)
            return out
        r = 2.0 ** (semitones / 12.0)
        if kind == _AXIS or not self._ntonal:  # no partial: the old axis scaling
            out.fill(0.0)
            span = self._noise_span(semitones, r)
            if span is not None:
                out[span[0] : span[0] + len(span[1])] = span[1]
            return out
        n = self.n_bins
        rid = self._rid
        # each region moves by delta = pos · (r − 1) bins: the whole part is an index offset,
        # the fractional part f a linear interpolation of the log magnitudes:
        # 2R at bin j + shift = 2R[j] + f·(2R[j − 1] − 2R[j])
        rm1 = r - 1.0
        delta = np.multiply(self._posb, rm1)
        if rm1 > 0.0:
            f, shift = np.modf(delta)  # delta >= 0: modf is floor and remainder, exactly
        else:
            shift = np.floor(delta)
            f = np.subtract(delta, shift, out=delta)
        # targets, one up (index 0 collects what falls below bin 0, n + 1 what passes Nyquist)
        tgt = shift.astype(np.intp)
        tgt += self._act1
        low_shift = math.floor(self._pos_last * rm1)  # the last region's: the lowest (r < 1)
        if rm1 < 0.0:
            if self._act_first + low_shift < 0:
                np.maximum(tgt, 0, out=tgt)
        elif self._act_last + low_shift >= n:
            np.minimum(tgt, n + 1, out=tgt)
        f *= self._D
        f += self._R2
        # squared magnitude above the floor: expm1 keeps a floor value at exactly 0
        w = np.expm1(f, out=f)
        # each moved region keeps its energy (noise-like regions: gain 0)
        e = np.bincount(rid, weights=w, minlength=self._npk)
        np.maximum(e, 1e-300, out=e)
        g = np.divide(self._e_in, e, out=e)
        if self._lpv is not None:
            pos, lpv = self._pos, self._lpv
            g *= np.exp(2.0 * (np.interp(pos * r, pos, lpv) - lpv))
        w *= g[rid]
        ext = self._ext
        ext.fill(0.0)
        span = self._noise_span(semitones, r) if self._has_noise else None
        if span is not None:
            ext[span[0] + 1 : span[0] + 1 + len(span[1])] = span[1]
        if rm1 >= 0.0:
            # upwards the regions move apart: every target is hit once (but the cut-off slot)
            if span is not None:
                v = ext[tgt]
                v *= v
                w += v
            ext[tgt] = np.sqrt(w, out=w)
            return out
        # downwards regions can overlap: they add by power
        power = np.bincount(tgt, weights=w, minlength=n + 2)
        if span is not None:
            k0, val = span
            seg = power[k0 + 1 : k0 + 1 + len(val)]
            val *= val
            seg += val
            np.sqrt(seg, out=ext[k0 + 1 : k0 + 1 + len(val)])
        v = power[tgt]
        ext[tgt] = np.sqrt(v, out=v)
        return out

    def _tilt_curve(self, db_per_octave: float) -> np.ndarray:
        if self._tilt_key != db_per_octave:
            freqs = np.maximum(self._bins * self.bin_hz, 20.0)
            self._tilt = 10.0 ** (db_per_octave * np.log2(freqs / 1000.0) / 20.0)
            self._tilt_key = db_per_octave
        return self._tilt

    def apply(self, mag: np.ndarray, transpose: float = 0.0, freq_shift: int = 0, tilt: float = 0.0) -> np.ndarray:
        """Shaped copy of `mag` in an internal buffer (valid until the next call)."""
        out = self._out
        if transpose != 0.0:
            self._peak_shift(mag, float(transpose), out)
        else:
            out[:] = mag
        if freq_shift:
            out[:] = np.roll(out, int(freq_shift))
        if tilt != 0.0:
            out *= self._tilt_curve(tilt)
        return out
