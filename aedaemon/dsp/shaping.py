"""Spectral shaping of a decoded magnitude frame: transpose, frequency shift, tilt.

- transpose: harmonic pitch shift by scaling the frequency axis, out[k] = in[k / r] with
  r = 2^(semitones/12) (linear interpolation), so every partial moves by the same ratio;
- freq_shift: CANNe's circular roll of the frame by whole bins (an inharmonic shift);
- tilt: CANNe's bass boost generalised: dB per octave around 1 kHz (positive = brighter).

The interpolation grid and the tilt curve only change when their parameters do, so they are
cached; a frame with all three neutral is passed through untouched.
"""

from __future__ import annotations

import numpy as np


class SpectralShaper:
    def __init__(self, n_fft: int, sample_rate: int) -> None:
        self.n_bins = n_fft // 2 + 1
        self.bin_hz = sample_rate / n_fft
        self._bins = np.arange(self.n_bins, dtype=np.float64)
        self._out = np.zeros(self.n_bins)
        self._tmp = np.zeros(self.n_bins)
        self._grid_key: float | None = None
        self._lo = np.zeros(self.n_bins, dtype=np.intp)
        self._hi = np.ones(self.n_bins, dtype=np.intp)
        self._src = np.zeros(self.n_bins)
        self._frac = np.zeros(self.n_bins)
        self._valid = np.ones(self.n_bins, dtype=bool)
        self._tilt_key: float | None = None
        self._tilt = np.ones(self.n_bins)

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
            self._grid(transpose)
            np.take(mag, self._lo, out=out)
            np.take(mag, self._hi, out=self._tmp)
            self._tmp -= out
            self._tmp *= self._frac
            out += self._tmp
            out *= self._valid
            # upward shifts stretch each partial's lobe; downward shifts squeeze it and can
            # drop partials between grid points, which is what a frequency-axis scale does.
        else:
            out[:] = mag
        if freq_shift:
            out[:] = np.roll(out, int(freq_shift))
        if tilt != 0.0:
            out *= self._tilt_curve(tilt)
        return out
