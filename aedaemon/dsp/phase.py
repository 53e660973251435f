"""Phase for magnitude-only frames: RTPGHI (default), white noise, CANNe time-only integration.

All three share one interface: ``spectrum = method.next(magnitude, changed)`` returns the
complex half-spectrum (phase referred to the window centre, so it can go straight into an
irfft + synthesis window). ``changed`` is False when the magnitude frame is bit-identical to
the previous one; methods use it to skip work.

RTPGHI (Prusa & Holighaus 2017) estimates the phase gradient from the log-magnitude of a
Gaussian-like window (Hann: gamma = 0.25645 L^2):

    time direction (per hop):  a*M/gamma * d/dm log s  +  2*pi*a*m/M
    frequency direction:       -gamma/(a*M) * d/dn log s   (causal 2nd-order difference)

and integrates it from the strongest coefficients outwards with a max-heap. A literal heap in
Python costs milliseconds per frame, so this module computes the same propagation order
without one: on a line of bins, the level at which the heap reaches bin v is a bottleneck
(max-min) path value, computable by two scans; the scans are evaluated with a doubling
(Hillis-Steele) composition of clamp functions in log2(n_bins) vector steps. While the
magnitude frame stays the same, the propagation tree does too, and the update collapses to a
gather and an add.
"""

from __future__ import annotations

import numpy as np

from .stft import HANN_GAMMA

PHASE_METHODS = ("rtpghi", "noise", "canne")
_NEG = -np.inf


def _clamp_scan(a: np.ndarray, b: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """x[.., v] = max(a[v], min(x[v-1], b[v])) with x[-1] = -inf, in O(n log n) vector steps.

    Each step f_v(x) = max(a, min(x, b)) is a clamp; compositions of clamps are clamps:
    (g o f) = (max(a_g, min(a_f, b_g)), min(b_f, b_g)). Scanning that composition and
    applying it to -inf leaves x[v] = the composed a. Works along the last axis (rows are
    independent scans); `a` and `b` are overwritten.
    """
    n = a.shape[-1]
    d = 1
    while d < n:
        # new a[v] = max(a[v], min(a[v-d], b[v])); new b[v] = min(b[v-d], b[v])
        np.minimum(a[..., :-d], b[..., d:], out=tmp[..., : n - d])
        np.maximum(a[..., d:], tmp[..., : n - d], out=a[..., d:])
        # in place on overlapping views: numpy reads them as if copied first (one call, not two)
        np.minimum(b[..., :-d], b[..., d:], out=b[..., d:])
        d *= 2
        # b[v] is now the min of the original b over a window of 2d; once every window holds a
        # -inf (a dead bin: paths never cross one), the remaining steps change nothing. A
        # decoded frame is mostly dead bins, so this ends after log2(longest live run) steps.
        if d < n and b[..., d:].max() == _NEG:
            break
    return a


class _Base:
    def __init__(self, n_fft: int, hop: int, seed: int = 0) -> None:
        self.n_fft = n_fft
        self.hop = hop
        self.n_bins = n_fft // 2 + 1
        self.rng = np.random.default_rng(seed)
        m = np.arange(self.n_bins)
        # (-1)^m moves the phase reference from the window centre to the frame start
        self._centre_to_start = np.where(m % 2 == 0, 1.0, -1.0)
        self.phase = self.rng.uniform(-np.pi, np.pi, self.n_bins)
        self._spectrum = np.zeros(self.n_bins, dtype=np.complex64)
        self._mag = np.zeros(self.n_bins, dtype=np.float32)
        self._phase32 = np.zeros(self.n_bins, dtype=np.float32)
        self._trig = np.zeros(self.n_bins, dtype=np.float32)
        self._frames_since_wrap = 0

    def reset(self) -> None:
        self.phase = self.rng.uniform(-np.pi, np.pi, self.n_bins)

    def _emit(self, magnitude: np.ndarray) -> np.ndarray:
        # Phase accumulates in float64; wrapping it costs as much as the trig, so it is done
        # every 256 frames (float64 keeps ~1e-10 rad of precision long before that matters).
        self._frames_since_wrap += 1
        if self._frames_since_wrap >= 256:
            np.remainder(self.phase, 2 * np.pi, out=self.phase)
            self._frames_since_wrap = 0
        np.multiply(magnitude, self._centre_to_start, out=self._mag)
        # float32 trig is SIMD-vectorised in numpy and ~10x faster than float64
        self._phase32[:] = self.phase
        np.cos(self._phase32, out=self._trig)
        self._spectrum.real = self._trig
        np.sin(self._phase32, out=self._trig)
        self._spectrum.imag = self._trig
        self._spectrum *= self._mag
        return self._spectrum

    def next(self, magnitude: np.ndarray, changed: bool = True) -> np.ndarray:
        raise NotImplementedError


class NoisePhase(_Base):
    """Fresh uniform random phase every frame (Colonel & Keene 2020's real-time choice)."""

    def next(self, magnitude: np.ndarray, changed: bool = True) -> np.ndarray:
        self.phase = self.rng.uniform(-np.pi, np.pi, self.n_bins)
        return self._emit(magnitude)


class _GradientMixin:
    """Log-magnitude and the time-direction phase gradient shared by CANNe and RTPGHI."""

    n_fft: int
    hop: int
    n_bins: int

    def _init_gradients(self, log_floor_db: float) -> None:
        M, a = self.n_fft, self.hop
        gamma = HANN_GAMMA * M * M
        self._tgrad_mul = a * M / gamma / 2.0  # times a centred difference over bins
        self._fgrad_mul = -gamma / (a * M) / 2.0  # times the 2nd-order backward difference
        self._tgrad_plus = 2.0 * np.pi * a * np.arange(self.n_bins) / M
        self._floor = 10.0 ** (log_floor_db / 20.0)
        self._slog = np.zeros(self.n_bins)
        self._top = 0.0
        self._tgrad = self._tgrad_plus.copy()

    def _log_and_tgrad(self, magnitude: np.ndarray) -> None:
        top = float(magnitude.max()) if magnitude.size else 0.0
        self._top = top
        floor = max(top * self._floor, 1e-30)
        np.log(np.maximum(magnitude, floor), out=self._slog)
        t = self._tgrad
        t[1:-1] = self._slog[2:] - self._slog[:-2]
        t[0] = t[-1] = 0.0
        t *= self._tgrad_mul
        t += self._tgrad_plus


class CannePhase(_Base, _GradientMixin):
    """Time-direction integration only (the CANNe loop): each bin advances on its own."""

    def __init__(self, n_fft: int, hop: int, seed: int = 0, log_floor_db: float = -100.0) -> None:
        super().__init__(n_fft, hop, seed)
        self._init_gradients(log_floor_db)
        self._prev_tgrad = self._tgrad.copy()

    def next(self, magnitude: np.ndarray, changed: bool = True) -> np.ndarray:
        if changed:
            self._prev_tgrad[:] = self._tgrad
            self._log_and_tgrad(magnitude)
        self.phase += 0.5 * (self._prev_tgrad + self._tgrad)
        if changed:
            self._prev_tgrad[:] = self._tgrad
        return self._emit(magnitude)


class RTPGHI(_Base, _GradientMixin):
    """Real-time phase gradient heap integration, vectorised (see module docstring)."""

    def __init__(
        self, n_fft: int, hop: int, seed: int = 0, tol_db: float = -100.0, log_floor_db: float = -100.0
    ) -> None:
        super().__init__(n_fft, hop, seed)
        self._init_gradients(log_floor_db)
        n = self.n_bins
        self._tol = 10.0 ** (tol_db / 20.0)
        self._slog_hist = np.zeros((2, n))  # log s at n-2, n-1
        self._top_hist = [0.0, 0.0]  # their peaks
        self._hist_tmp = np.empty((2, n))
        self._prev_mag = np.zeros(n)
        self._prev_tgrad = self._tgrad.copy()
        self._fgrad = np.zeros(n)
        self._steady = 0  # identical frames in a row
        self._root = np.arange(n)  # for each bin, the bin its phase came from in time
        # One contiguous scan of length 2n+1: bins left-to-right, a barrier (-inf stops every
        # path), then the bins mirrored for the right-to-left pass. float32: only order matters.
        self._scan = [np.empty(2 * n + 1, dtype=np.float32) for _ in range(3)]
        # precomputed random phases for bins below the tolerance (as phaseret does)
        self._random = self.rng.uniform(-np.pi, np.pi, 8 * n)
        self._random_at = 0
        self._from_left = np.empty(n, dtype=np.float32)
        self._from_right = np.empty(n, dtype=np.float32)
        self._idx = np.arange(n)

    def reset(self) -> None:
        super().reset()
        self._prev_mag[:] = 0.0
        self._top_hist = [0.0, 0.0]
        self._steady = 0

    def next(self, magnitude: np.ndarray, changed: bool = True) -> np.ndarray:
        self._steady = 0 if changed else self._steady + 1
        if self._steady >= 2:
            # Same frame three times: fgrad is 0, tgrad and the tree are unchanged, so every
            # bin takes its root's time-integrated phase.
            self.phase = self.phase[self._root] + self._tgrad[self._root]
            return self._emit(magnitude)
        if changed:
            self._prev_tgrad[:] = self._tgrad
            self._log_and_tgrad(magnitude)
        else:
            self._prev_tgrad[:] = self._tgrad
        s_log = self._slog
        # Causal 2nd-order backward difference in time, (3 s[n] - 4 s[n-1] + s[n-2]) / 2, on
        # logs floored at one level for all three frames: a bin that was below the floor of a
        # quiet frame must not read as a huge jump when the level rises.
        log_floor = np.log(max(self._top, *self._top_hist, 1e-30) * self._floor)
        hist = np.maximum(self._slog_hist, log_floor, out=self._hist_tmp)
        np.maximum(s_log, log_floor, out=self._fgrad)
        self._fgrad *= 3.0
        self._fgrad -= 4.0 * hist[1]
        self._fgrad += hist[0]
        self._fgrad *= self._fgrad_mul
        self._integrate(magnitude)
        self._slog_hist[0] = self._slog_hist[1]
        self._slog_hist[1] = s_log
        self._top_hist = [self._top_hist[1], self._top]
        self._prev_mag[:] = magnitude
        return self._emit(magnitude)

    def _integrate(self, s: np.ndarray) -> None:
        n = self.n_bins
        top = max(float(s.max()), float(self._prev_mag.max()), 1e-30)
        tol = top * self._tol
        alive = s >= tol
        # heap priorities: a bin can be seeded from the previous frame (priority = its old
        # magnitude); bins with no usable predecessor get a tiny priority ordered by their own
        # magnitude, so the loudest of them roots its neighbourhood (the heap's restart rule).
        # float32 throughout the ordering: only comparisons matter, and one precision for
        # every comparison keeps the propagation tree free of cycles.
        seed = np.where(self._prev_mag >= tol, self._prev_mag, s * (1e-3 * tol / top)).astype(np.float32)
        seed[~alive] = _NEG
        expand = np.where(alive, s, _NEG).astype(np.float32)
        a, b, tmp = self._scan
        # left-to-right: L[v] = max(seed[v], min(L[v-1], expand[v-1])); mirrored after the barrier
        a[:n] = seed
        a[n] = _NEG
        a[n + 1 :] = seed[::-1]
        b[0] = _NEG
        b[1:n] = expand[:-1]
        b[n] = _NEG
        b[n + 1] = _NEG
        b[n + 2 :] = expand[::-1][:-1]
        reach = _clamp_scan(a, b, tmp)
        from_left, from_right = self._from_left, self._from_right
        from_left[0] = _NEG
        np.minimum(reach[: n - 1], expand[:-1], out=from_left[1:])
        from_right[-1] = _NEG
        np.minimum(reach[n + 1 :][::-1][1:], expand[1:], out=from_right[:-1])
        is_root = (seed >= from_left) & (seed >= from_right)
        is_left = ~is_root & (from_left >= from_right)
        is_right = ~is_root & ~is_left
        idx = self._idx
        # roots: trapezoidal time integration from the previous frame
        phase = self.phase + 0.5 * (self._prev_tgrad + self._tgrad)
        # chains going up in frequency: phi[v] = phi[v-1] + (fgrad[v-1] + fgrad[v]) / 2
        pair = self._fgrad[:-1] + self._fgrad[1:]
        pair *= 0.5  # the trapezoid between neighbouring bins, used by both directions
        inc = np.zeros(n)
        np.multiply(pair, is_left[1:], out=inc[1:])
        up = np.cumsum(inc)
        anchor = np.maximum.accumulate(np.where(is_left, 0, idx))
        phase_up = phase[anchor] + up - up[anchor]
        # chains going down: phi[v] = phi[v+1] - (fgrad[v] + fgrad[v+1]) / 2
        dec = np.zeros(n)
        np.multiply(pair, is_right[:-1], out=dec[:-1])
        down = np.cumsum(dec[::-1])[::-1]  # down[v] = sum_{k>=v} dec[k]
        anchor_r = np.minimum.accumulate(np.where(is_right, n - 1, idx)[::-1])[::-1]
        phase_down = phase[anchor_r] - (down - down[anchor_r])
        new = np.where(is_left, phase_up, np.where(is_right, phase_down, phase))
        dead = ~alive
        n_dead = int(np.count_nonzero(dead))
        if n_dead:
            start = self._random_at
            if start + n_dead > len(self._random):
                start = 0
            new[dead] = self._random[start : start + n_dead]
            self._random_at = (start + n_dead + 7919) % (len(self._random) - n)
        self.phase = new
        self._root = np.where(is_left, anchor, np.where(is_right, anchor_r, idx))


def make_phase(method: str, n_fft: int, hop: int, seed: int = 0) -> _Base:
    if method == "rtpghi":
        return RTPGHI(n_fft, hop, seed)
    if method == "noise":
        return NoisePhase(n_fft, hop, seed)
    if method == "canne":
        return CannePhase(n_fft, hop, seed)
    raise ValueError(f"unknown phase method '{method}' (choose from {', '.join(PHASE_METHODS)})")
