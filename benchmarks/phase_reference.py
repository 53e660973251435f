"""Frozen reference: aedaemon/dsp/phase.py as of commit 4c0fc76 (before the call-count tuning),
classes renamed Ref*. tests/test_phase_equivalence.py and benchmarks/bench_hop_profile.py run
it next to the live module; do not edit, except to follow a deliberate change of the algorithm.
Changed once since (issue 9, RTPGHI on decoded frames): on a held frame (the first repeat of a
magnitude frame) RTPGHI gives noise bands and the other bins at their own bin frequency the
quadrature phase pattern and the noise gain (emitted magnitude), and on every frame isolated
peaks of non-Hann lobes take the parabolic frequency — `_held_stages`, the compiled step's
loops written out in Python.
"""

from __future__ import annotations

import functools
import time

import numpy as np

from aedaemon.dsp.stft import HANN_GAMMA

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


@functools.lru_cache(maxsize=8)
def transition_gains(n_fft: int, hop: int, frames: int = 3) -> tuple[float, ...]:
    """Gains for the first `frames` frames after an abrupt change to incoherent content.

    Overlap-add crossfades the old frames (weight alpha(t), already in the accumulator) into
    the new ones (1 - alpha(t)): amplitude-complementary, so content whose phase has nothing in
    common with the old frames sums in power to alpha^2 + (1 - alpha)^2, -3 dB half-way. Scaling
    the first new frames by these gains makes the crossfade close to power-complementary
    (alpha^2 + beta^2 ~ 1; the power stays within about +-1.5 dB at hop = n_fft/4). Found once
    per (n_fft, hop) by minimising the squared dB deviation plus its worst case.
    """
    from scipy.optimize import minimize

    from aedaemon.dsp.stft import dual_window, hann

    w = hann(n_fft)
    h = w * dual_window(w, hop)  # one frame's weight in the output
    r = n_fft // hop
    n = (frames + 2 * r) * hop
    alpha = np.zeros(n)  # old frames' weight, t from the first new frame's start
    for k in range(1, r):
        alpha[: (r - k) * hop] += h[k * hop :]
    cols = np.zeros((n, frames))
    for j in range(frames):
        cols[j * hop : j * hop + n_fft, j] = h
    rest = np.zeros(n)  # later frames at gain 1
    for j in range(frames, frames + 2 * r):
        lo, hi = j * hop, min(n, j * hop + n_fft)
        if lo < n:
            rest[lo:hi] += h[: hi - lo]
    span = (frames + r) * hop

    def cost(g: np.ndarray) -> float:
        d = 10.0 * np.log10(alpha[:span] ** 2 + (cols[:span] @ g + rest[:span]) ** 2 + 1e-12)
        return float(np.mean(d * d) + 0.5 * np.max(np.abs(d)) ** 2)

    res = minimize(cost, np.ones(frames), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-9, "maxiter": 4000})
    return tuple(float(v) for v in res.x)


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


class RefNoisePhase(_Base):
    """Fresh uniform random phase every frame (Colonel & Keene 2020's real-time choice).

    Random phase spreads each frame's energy evenly over the frame instead of under the
    window, and overlapping frames add in power instead of in amplitude; the expected output
    power is mean(w^2) * mean_t(sum_k ws^2(t - k hop)) of a coherent resynthesis (1/4 at 75 %
    overlap with Hann), so the spectrum is scaled by its inverse square root to play at the
    same level as RTPGHI.
    """

    def __init__(self, n_fft: int, hop: int, seed: int = 0) -> None:
        super().__init__(n_fft, hop, seed)
        from aedaemon.dsp.stft import dual_window, hann

        w = hann(n_fft)
        ws = dual_window(w, hop)
        self.level_gain = float(1.0 / np.sqrt(np.mean(w * w) * np.sum(ws * ws) / hop))

    def next(self, magnitude: np.ndarray, changed: bool = True) -> np.ndarray:
        self.phase = self.rng.uniform(-np.pi, np.pi, self.n_bins)
        spectrum = self._emit(magnitude)
        spectrum *= self.level_gain
        return spectrum


class _GradientMixin:
    """Log-magnitude and the time-direction phase gradient shared by CANNe and RTPGHI."""

    n_fft: int
    hop: int
    n_bins: int

    def _init_gradients(self, log_floor_db: float, gamma: float = HANN_GAMMA, one_sided: bool = False) -> None:
        M, a = self.n_fft, self.hop
        g = gamma * M * M
        self._tgrad_mul = a * M / g / 2.0  # times a centred difference over bins
        self._fgrad_mul = -g / (a * M) / 2.0  # times the 2nd-order backward difference
        self._tgrad_plus = 2.0 * np.pi * a * np.arange(self.n_bins) / M
        self._floor = 10.0 ** (log_floor_db / 20.0)
        # curvature of log s over bins for a Gaussian window: log s = c - pi*gamma*(m - m0)^2 / M^2
        self._curv = 2.0 * np.pi * gamma
        self._one_sided = one_sided
        self._slog = np.zeros(self.n_bins)
        self._top = 0.0
        self._tgrad = self._tgrad_plus.copy()

    def _log_and_tgrad(self, magnitude: np.ndarray) -> None:
        top = float(magnitude.max()) if magnitude.size else 0.0
        self._top = top
        floor = max(top * self._floor, 1e-30)
        np.log(np.maximum(magnitude, floor), out=self._slog)
        sl = self._slog
        t = self._tgrad
        t[1:-1] = sl[2:] - sl[:-2]
        t[0] = t[-1] = 0.0
        if self._one_sided:
            # next to a bin at the floor the centred difference reads the floor as part of the
            # lobe; use the one-sided difference corrected by the Gaussian's known curvature
            # (log s = c - k/2 (m - m0)^2: forward difference + k/2, backward - k/2; times 2
            # here, as the centred difference is not halved)
            low = magnitude <= floor
            e_l = np.flatnonzero(low[:-2] > low[1:-1]) + 1  # live bins whose left neighbour is low
            e_r = np.flatnonzero(low[2:] > low[1:-1]) + 1
            k = self._curv
            t[e_l] = 2.0 * (sl[e_l + 1] - sl[e_l]) + k
            t[e_r] = 2.0 * (sl[e_r] - sl[e_r - 1]) - k
            t[e_l[low[e_l + 1]]] = 0.0  # a single live bin between two low ones: no slope
        t *= self._tgrad_mul
        t += self._tgrad_plus


class RefCannePhase(_Base, _GradientMixin):
    """Time-direction integration only (the CANNe loop): each bin advances on its own."""

    def __init__(
        self,
        n_fft: int,
        hop: int,
        seed: int = 0,
        log_floor_db: float = -100.0,
        one_sided: bool = False,
        lock: bool = True,
    ) -> None:
        """lock: every bin advances at the frequency of the peak whose lobe it is on (the
        nearest local maximum uphill; Laroche & Dolson's phase locking), so the lobe's bins
        keep the relative phase they started with (zero: coherent). Unlocked, each bin runs
        at its own estimate; on decoded lobes (not Gaussian) the estimates differ, the bins
        drift apart and a partial plays at the power sum of its bins, 2-5 dB low."""
        super().__init__(n_fft, hop, seed)
        self._init_gradients(log_floor_db, one_sided=one_sided)
        self._prev_tgrad = self._tgrad.copy()
        self._lock = lock
        self._idx = np.arange(self.n_bins)
        self._steady_step = self._tgrad
        self.phase[:] = 0.0  # as the CANNe loop starts: every main lobe coherent

    def reset(self) -> None:
        self.phase[:] = 0.0

    def _peak_of(self, s: np.ndarray) -> np.ndarray:
        idx = self._idx
        left = np.empty_like(s)
        right = np.empty_like(s)
        left[0] = right[-1] = -1.0
        left[1:] = s[:-1]
        right[:-1] = s[1:]
        peak = (s >= left) & (s > right)
        lp = np.maximum.accumulate(np.where(peak, idx, 0))
        rp = np.minimum.accumulate(np.where(peak, idx, idx[-1])[::-1])[::-1]
        return np.where(peak, idx, np.where(left >= right, lp, rp))

    def next(self, magnitude: np.ndarray, changed: bool = True) -> np.ndarray:
        if changed:
            self._prev_tgrad[:] = self._tgrad
            self._log_and_tgrad(magnitude)
            step = self._prev_tgrad + self._tgrad
            step *= 0.5
            if self._lock:
                peak = self._peak_of(magnitude)
                step = step[peak]
                self._steady_step = self._tgrad[peak]
            else:
                self._steady_step = self._tgrad
            self.phase += step
        else:
            self.phase += self._steady_step
        return self._emit(magnitude)


class RefRTPGHI(_Base, _GradientMixin):
    """Real-time phase gradient heap integration, vectorised (see module docstring)."""

    def __init__(
        self,
        n_fft: int,
        hop: int,
        seed: int = 0,
        tol_db: float = -100.0,
        log_floor_db: float = -60.0,
        gamma: float = HANN_GAMMA,
        one_sided: bool = True,
        max_reach: int = 1,
        lobe: float = 0.9,
        fgrad_clip: float = 0.8,
        lobe_cap_db: float = 20.0,
        jump: float = 0.1,
        compensate: bool = True,
        noise_prom_db: float = 25.0,
        noise_gain: float = float(np.sqrt(1.5)),
        noise_held: bool = True,
        peak_freq: bool = True,
        noise_run: int = 14,
        peak_floor_db: float = -60.0,
        pattern_all: bool = True,
        peak_min: float = 0.05,
        hann_curvature: tuple[float, float] = (1.38, 1.52),
        noise_seg: int = 8,
    ) -> None:
        """tol_db: bins below tol x max get random phase. log_floor_db: the log-magnitude is
        floored this far below the frame maximum for the gradients (a ReLU-zero bin must not
        read as -100 dB next to a peak). one_sided: next to a floored bin, the time gradient
        uses the one-sided difference plus the Gaussian's curvature. max_reach: a bin further
        than this many bins from the bin whose phase it takes in frequency is its own root at
        its bin frequency (a broad run is not one sinusoid's main lobe), unless it sits on a peaked
        lobe: log s fell from the root by at least min(lobe * k/2 * d(d-1), lobe_cap_db) (a
        Gaussian lobe falls by at least k/2 * d(d-1) at d bins from its peak bin; decoded lobes
        are flatter, exact partials and their side lobes are not). fgrad_clip: the frequency
        direction gradient (rad/bin, -2 pi t/M for energy at t from the frame centre) is
        clipped, so a partial appearing from the floor is not placed outside the window. jump: a frame whose
        magnitude cosine distance to the previous one exceeds this is an abrupt change:
        integrated as stationary (no onset read into the time difference of log s), and
        with `compensate` the first frames after it are scaled towards a power-complementary
        crossfade (transition_gains) in proportion to how incoherent the change is.
        """
        super().__init__(n_fft, hop, seed)
        self._init_gradients(log_floor_db, gamma, one_sided)
        n = self.n_bins
        self._max_reach = max_reach
        self._lobe = lobe
        self._fclip = fgrad_clip
        self._lobe_cap = lobe_cap_db / 20.0 * np.log(10.0)
        self._jump = jump
        self._tgains = np.array(transition_gains(n_fft, hop)) if compensate else None
        self._sched: tuple[float, ...] = ()
        self._sched_at = 0
        self._prev_power = 0.0
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
        self._noise_prom = 10.0 ** (-noise_prom_db / 20.0) if noise_prom_db > 0.0 else 0.0
        self._noise_gain = float(noise_gain)
        self._noise_held = bool(noise_held)
        self._peak_freq = bool(peak_freq)
        self._noise_run = int(noise_run)
        self._peak_floor = 10.0 ** (peak_floor_db / 20.0)
        self._pattern_all = bool(pattern_all)
        self._peak_min = float(peak_min)
        self._hann_curv = (float(hann_curvature[0]), float(hann_curvature[1]))
        self._noise_seg = int(noise_seg)
        self._quad = 4 * hop == n_fft
        self._emit_mag = np.zeros(n)

    def reset(self) -> None:
        super().reset()
        self._sched = ()
        self._prev_power = 0.0
        self._prev_mag[:] = 0.0
        self._top_hist = [0.0, 0.0]
        self._steady = 0

    def _scheduled(self, spectrum: np.ndarray) -> np.ndarray:
        if self._sched_at < len(self._sched):
            spectrum *= self._sched[self._sched_at]
            self._sched_at += 1
        return spectrum

    def next(self, magnitude: np.ndarray, changed: bool = True) -> np.ndarray:
        self._steady = 0 if changed else self._steady + 1
        if self._steady >= 2:
            # Same frame three times: fgrad is 0, tgrad and the tree are unchanged, so every
            # bin takes its root's time-integrated phase.
            self.phase = self.phase[self._root] + self._tgrad[self._root]
            return self._scheduled(self._emit(self._emit_mag))
        abrupt = False
        if changed:
            pa = self._prev_power
            pb = float(magnitude @ magnitude)
            self._prev_power = pb
            if pa > 0.0 and pb > 0.0:
                u = 1.0 - float(self._prev_mag @ magnitude) / np.sqrt(pa * pb)
                abrupt = u > self._jump
                if abrupt and self._tgains is not None:
                    # magnitude similarity overstates coherence (overlapping lobes of different
                    # partials): twice the distance, measured on the dips benchmark
                    u = min(1.0, 2.0 * u)
                    self._sched = tuple(1.0 + u * (g - 1.0) for g in self._tgains)
                    self._sched_at = 0
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
        if abrupt:
            # a jump between two timbres is a crossfade of two steady sounds, not an onset: the
            # time difference of log s would place each partial's energy at the frame edge
            # (phase slopes of several rad/bin), where the synthesis window silences it
            self._slog_hist[0] = s_log
            self._slog_hist[1] = s_log
        hist = np.maximum(self._slog_hist, log_floor, out=self._hist_tmp)
        np.maximum(s_log, log_floor, out=self._fgrad)
        self._fgrad *= 3.0
        self._fgrad -= 4.0 * hist[1]
        self._fgrad += hist[0]
        self._fgrad *= self._fgrad_mul
        if self._fclip > 0.0:
            np.clip(self._fgrad, -self._fclip, self._fclip, out=self._fgrad)
        self._integrate(magnitude)
        self._slog_hist[0] = self._slog_hist[1]
        self._slog_hist[1] = s_log
        self._top_hist = [self._top_hist[1], self._top]
        self._prev_mag[:] = magnitude
        return self._scheduled(self._emit(self._emit_mag))

    def _held_stages(self, s: np.ndarray, alive: np.ndarray, root: np.ndarray, new: np.ndarray) -> None:
        """Noise bands, the other bins at their bin frequency, isolated peaks' frequency (see
        aedaemon/dsp/_native.c, rtpghi_integrate): on the work set E, in bin order."""
        n = self.n_bins
        self._emit_mag[:] = s
        held = self._steady >= 1 or not self._noise_held
        near = alive.copy()
        near[1:] |= alive[:-1]
        near[:-1] |= alive[1:]
        E = np.flatnonzero(near)
        tg, plus, ptg = self._tgrad, self._tgrad_plus, self._prev_tgrad
        noise = np.zeros(n, dtype=bool)
        q4 = 0.5 * np.pi

        seg = self._noise_seg

        quad = self._quad

        def pattern_step(v: int, ph: float, state: list) -> float:
            last, delta, count = state
            if quad and last == v - 1:
                want = new[v - 1] + (0.75 * np.pi if (v - 1) & 1 else -0.25 * np.pi)
                if delta < 0.0:
                    q = float(np.rint((ph - want) / q4))
                    delta = float(np.fmod(q, 4.0))
                    if delta < 0.0:
                        delta += 4.0
                    count = 0
                else:
                    count += 1
                    if seg > 0 and count % seg == 0:
                        delta = float(np.fmod(delta + 1.0, 4.0))
                ph = want + delta * q4
            else:
                delta = -1.0
            state[0], state[1], state[2] = v, delta, count
            return ph

        if self._noise_prom > 0.0 and held:
            lobe = np.zeros(n, dtype=bool)
            for v in E:
                if not alive[v] or v == 0 or v == n - 1 or not (s[v] > s[v - 1] and s[v] >= s[v + 1]):
                    continue
                low = float(s[max(v - 4, 0) : min(v + 4, n - 1) + 1].min())
                if not low <= s[v] * self._noise_prom:
                    continue
                lobe[max(v - 2, 0) : min(v + 2, n - 1) + 1] = True
            # runs of live bins shorter than noise_run are partials
            i, m = 0, len(E)
            while i < m:
                j = i
                while j < m and alive[E[j]] and (j == i or E[j] == E[j - 1] + 1):
                    j += 1
                if j == i:
                    i += 1
                    continue
                if j - i < self._noise_run:
                    lobe[E[i:j]] = True
                i = j
            state = [-2, -1.0, 0]
            for v in E:
                if not alive[v] or lobe[v]:
                    continue
                root[v] = v
                tg[v] = plus[v]
                ph = self.phase[v] + 0.5 * (ptg[v] + tg[v])
                new[v] = pattern_step(v, ph, state)
                self._emit_mag[v] = s[v] * self._noise_gain
                noise[v] = True
        if held and self._pattern_all:
            state = [-2, -1.0, 0]
            for v in E:
                if root[v] != v or tg[v] != plus[v] or not alive[v] or noise[v]:
                    continue
                if 0 < v < n - 1 and s[v] > s[v - 1] and s[v] >= s[v + 1]:
                    continue
                new[v] = pattern_step(v, new[v], state)
                self._emit_mag[v] = s[v] * self._noise_gain
                noise[v] = True
        if self._peak_freq:
            step = plus[1] - plus[0]
            for v in E:
                if v == 0 or v == n - 1 or root[v] != v or not alive[v] or noise[v]:
                    continue
                a, c, g = s[v - 1], s[v], s[v + 1]
                if not (c > a and c >= g):
                    continue
                if (v >= 2 and root[v - 2] == v - 2 and s[v - 2] > s[max(v - 3, 0)] and s[v - 2] >= a) or (
                    v + 2 < n and root[v + 2] == v + 2 and s[v + 2] > g and (v + 3 >= n or s[v + 2] >= s[v + 3])
                ):
                    continue
                fl = c * self._peak_floor
                la, lc, lg = np.log(a if a > fl else fl), np.log(c), np.log(g if g > fl else fl)
                den = (la - 2.0 * lc) + lg
                if not den < 0.0:
                    continue
                if -self._hann_curv[1] <= den <= -self._hann_curv[0]:
                    continue
                t = plus[v] + step * (0.5 * (la - lg) / den)
                if abs(t - tg[v]) > step * self._peak_min:
                    tg[v] = t

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
        root = np.where(is_left, anchor, np.where(is_right, anchor_r, idx))
        # A sinusoid's main lobe is a few bins wide; further out a chain is a broad run (noisy
        # or merged partials), and one phase for all of it renders a pulse train (a 4-bin comb
        # under the run). Those bins become their own roots at their bin frequency, unless the
        # magnitude falls from the root as steeply as a Gaussian lobe does (an exact partial and
        # its side lobes: cutting those cost a sawtooth 13 dB of SC).
        dist = root - idx
        np.abs(dist, out=dist)
        far = np.flatnonzero(dist > self._max_reach)
        if len(far) and self._lobe > 0.0:
            d = dist[far].astype(np.float64)
            drop = self._slog[root[far]] - self._slog[far]
            far = far[drop < np.minimum(self._lobe * 0.5 * self._curv * d * (d - 1.0), self._lobe_cap)]
        if len(far):
            root[far] = far
            self._tgrad[far] = self._tgrad_plus[far]
            new[far] = self.phase[far] + 0.5 * (self._prev_tgrad[far] + self._tgrad[far])
        self._held_stages(s, alive, root, new)
        self.phase = new
        self._root = root


def make_phase(method: str, n_fft: int, hop: int, seed: int = 0) -> _Base:
    if method == "rtpghi":
        return RefRTPGHI(n_fft, hop, seed)
    if method == "noise":
        return RefNoisePhase(n_fft, hop, seed)
    if method == "canne":
        return RefCannePhase(n_fft, hop, seed)
    raise ValueError(f"unknown phase method '{method}' (choose from {', '.join(PHASE_METHODS)})")


# ---- the engine's bookkeeping before the same tuning (aedaemon/engine.py at the commit above:
# Glide.step, update, _follow_targets, render_hop), running the phase above: the "before" of
# tests/test_phase_equivalence.py's engine test and of benchmarks/bench_hop_profile.py

import dataclasses  # noqa: E402

from aedaemon import engine as engine_mod  # noqa: E402
from aedaemon.dsp.dynamics import rms_peak_dbfs, soft_limit  # noqa: E402


class RefGlide(engine_mod.Glide):
    def step(self) -> bool:
        if self.remaining <= 0:
            return False
        self.value = self.value + (self.target - self.value) / self.remaining
        self.remaining -= 1
        if self.remaining == 0:
            self.value = self.target.copy()
        return True


class RefEngine(engine_mod.Engine):
    def _build_dsp(self) -> None:
        super()._build_dsp()
        self._phase = make_phase(self.phase_method, self.n_fft, self.hop, self.seed)

    def _reset_render_state(self) -> None:
        super()._reset_render_state()
        for g in (self._latent, self._chroma, self._transpose, self._gain, self._pitch):
            g.__class__ = RefGlide

    def update(self, **changes):
        changes.setdefault("transition", None)
        with self.control_lock:
            self.targets = dataclasses.replace(self.targets, **changes)
            return self.targets

    def _follow_targets(self, t) -> None:
        seen = self._seen.targets
        if seen is t:
            return
        frames = self._glide_frames(t.glide if t.transition is None else t.transition)
        if seen is None or (t.latent, t.scale, t.mute) != (seen.latent, seen.scale, seen.mute):
            self._latent.set(t.effective_latent(), frames)
        if seen is None or t.chroma != seen.chroma:
            self._chroma.set(t.chroma, frames)
        if seen is None or t.transpose != seen.transpose:
            self._transpose.set(t.transpose, frames)
        if seen is None or t.gain != seen.gain:
            self._gain.set(t.gain, frames)
        if seen is None or self.played_pitch(t) != self.played_pitch(seen):
            self._pitch.set(self.played_pitch(t), frames)
        self._seen.targets = t

    def render_hop(self) -> np.ndarray:
        started = time.perf_counter()
        self._drain_queue()
        if self._pending_model is not None:
            self._apply_pending_model()
        t = self.targets
        self._follow_targets(t)
        for g in (self._latent, self._chroma, self._transpose, self._gain, self._pitch):
            g.step()
        starting = self._silent() and t.playing and self._pending_model is None
        amp_start, amp_end = self._envelope(t, starting)
        out = self._out
        if amp_start == 0.0 and amp_end == 0.0:
            out[:] = 0.0
            self._ola.reset()
        else:
            changed = self._shape(self._decode(), t)
            if starting:
                self._prefill(changed)
                changed = False
            hop_out = self._push(changed)
            np.multiply(self._ramp, amp_end - amp_start, out=out)
            out += amp_start
            out *= hop_out
            if self._attack_from is not None:
                self._apply_attack(out)
            if not np.all(np.isfinite(out)):
                self.stats.nonfinite_frames += 1
                out[:] = 0.0
                self._ola.reset()
                self._phase.reset()
            soft_limit(out)
        self._amp = amp_end
        self.sample_time += self.hop
        st = self.stats
        st.frames += 1
        st.meter_rms_db, st.meter_peak_db = rms_peak_dbfs(out)
        spent = time.perf_counter() - started
        st.render_seconds += spent
        st.cpu_load = 0.95 * st.cpu_load + 0.05 * (spent * self.sample_rate / self.hop)
        return out


