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

Cost. Each numpy call costs ~1.5-2 µs here even on a few hundred values, so a changed frame
costs about its number of calls. Decoded frames are ~90 % exact zeros, so the changed-frame
step works on the work set only (the live bins and their neighbours, compacted: scans,
cumulative sums, gathers), takes the log only above the floor and the trig only where the
magnitude is not zero, and runs the clamp scan for the known number of doubling steps with
two buffers. Every value is bit-identical to the frozen full-array implementation
(benchmarks/phase_reference.py; tests/test_phase_equivalence.py); benchmarks/bench_hop_profile.py
times both, interleaved.
"""

from __future__ import annotations

import functools

import numpy as np

from .stft import HANN_GAMMA

PHASE_METHODS = ("rtpghi", "noise", "canne")
_NEG = -np.inf


def _clamp_scan(
    a: np.ndarray, b: np.ndarray, tmp: np.ndarray, spare: np.ndarray | None = None, longest: int | None = None
) -> np.ndarray:
    """x[.., v] = max(a[v], min(x[v-1], b[v])) with x[-1] = -inf, in O(n log n) vector steps.

    Each step f_v(x) = max(a, min(x, b)) is a clamp; compositions of clamps are clamps:
    (g o f) = (max(a_g, min(a_f, b_g)), min(b_f, b_g)). Scanning that composition and
    applying it to -inf leaves x[v] = the composed a. Works along the last axis (rows are
    independent scans); `a` and `b` (and `spare`) are overwritten.

    spare: a second buffer like b; the composed b then alternates between the two instead of
    being updated in place (numpy copies an overlapping in-place operand first). Positions
    below the step distance are left stale, which is safe: after the step at distance d the
    stale ones are below 2d - 1, and the next step reads b only at 2d and above.
    longest: an upper bound of the longest run of finite b values (-inf breaks every path);
    the steps stop at it instead of testing for it after each step. Both give the same a.
    """
    n = a.shape[-1]
    d = 1
    src, dst = b, spare
    while d < n:
        # new a[v] = max(a[v], min(a[v-d], b[v])); new b[v] = min(b[v-d], b[v])
        np.minimum(a[..., :-d], src[..., d:], out=tmp[..., : n - d])
        np.maximum(a[..., d:], tmp[..., : n - d], out=a[..., d:])
        d2 = 2 * d
        if longest is not None and (d2 > longest or d2 >= n):
            break  # the composed b would not be read again
        if dst is None:
            # in place on overlapping views: numpy reads them as if copied first (one call, not two)
            np.minimum(src[..., :-d], src[..., d:], out=src[..., d:])
        else:
            np.minimum(src[..., :-d], src[..., d:], out=dst[..., d:])
            src, dst = dst, src
        d = d2
        # b[v] is now the min of the original b over a window of 2d; once every window holds a
        # -inf (a dead bin: paths never cross one), the remaining steps change nothing. A
        # decoded frame is mostly dead bins, so this ends after log2(longest live run) steps.
        if longest is None and d < n and src[..., d:].max() == _NEG:
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

    from .stft import dual_window, hann

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
        self._part = np.zeros(self.n_bins, dtype=np.complex64)
        self._nonzero = np.zeros(self.n_bins, dtype=bool)
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
        mag = self._mag
        np.multiply(magnitude, self._centre_to_start, out=mag)
        # the trig only where the (float32) magnitude is not zero: elsewhere the product is 0
        # (float32 cos/sin cost ~8 µs each over all bins, and decoded frames are ~90 % zeros)
        nz = np.not_equal(mag, 0.0, out=self._nonzero).nonzero()[0]  # bool nonzero: 3x faster
        k = len(nz)
        if 2 * k > self.n_bins:  # a dense frame: all bins (the same values, the zeros signed)
            self._phase32[:] = self.phase
            np.cos(self._phase32, out=self._trig)
            self._spectrum.real = self._trig
            np.sin(self._phase32, out=self._trig)
            self._spectrum.imag = self._trig
            self._spectrum *= mag
            return self._spectrum
        ph = self._phase32[:k]
        ph[:] = self.phase[nz]
        # float32 trig is SIMD-vectorised in numpy and ~10x faster than float64
        trig = self._trig[:k]
        part = self._part[:k]
        np.cos(ph, out=trig)
        part.real = trig
        np.sin(ph, out=trig)
        part.imag = trig
        part *= mag[nz]
        self._spectrum.fill(0.0)
        self._spectrum[nz] = part
        return self._spectrum

    def next(self, magnitude: np.ndarray, changed: bool = True) -> np.ndarray:
        raise NotImplementedError


class NoisePhase(_Base):
    """Fresh uniform random phase every frame (Colonel & Keene 2020's real-time choice).

    Random phase spreads each frame's energy evenly over the frame instead of under the
    window, and overlapping frames add in power instead of in amplitude; the expected output
    power is mean(w^2) * mean_t(sum_k ws^2(t - k hop)) of a coherent resynthesis (1/4 at 75 %
    overlap with Hann), so the spectrum is scaled by its inverse square root to play at the
    same level as RTPGHI.
    """

    def __init__(self, n_fft: int, hop: int, seed: int = 0) -> None:
        super().__init__(n_fft, hop, seed)
        from .stft import dual_window, hann

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
        self._live = np.zeros(self.n_bins, dtype=bool)
        self._floor_arr = np.zeros(1)
        self._lr_offsets = np.array([[-1], [1]])
        self._lcr_offsets = np.array([[-1], [0], [1]])
        self._curv_pm = np.array([[-self._curv], [self._curv]])

    def _log_and_tgrad(self, magnitude: np.ndarray) -> None:
        top = float(magnitude.max()) if magnitude.size else 0.0
        self._top = top
        floor = max(top * self._floor, 1e-30)
        sl = self._slog
        t = self._tgrad
        # log s = log(max(s, floor)): the log only of the bins above the floor (a decoded frame
        # is ~90 % exact zeros, and float64 log is the costliest call here); the rest is log(floor)
        live = np.greater(magnitude, floor, out=self._live)
        nl = live.nonzero()[0]
        fa = self._floor_arr if magnitude.dtype == self._floor_arr.dtype else np.empty(1, magnitude.dtype)
        fa[0] = floor  # in the frame's precision, as np.maximum(magnitude, floor) would be
        np.log(fa, out=fa)
        sl.fill(fa[0])
        sl[nl] = np.log(magnitude[nl])
        np.subtract(sl[2:], sl[:-2], out=t[1:-1])
        if self._one_sided and len(nl):
            # next to a bin at the floor the centred difference reads the floor as part of the
            # lobe; use the one-sided difference corrected by the Gaussian's known curvature
            # (log s = c - k/2 (m - m0)^2: forward difference + k/2, backward - k/2; times 2
            # here, as the centred difference is not halved). A live bin with both neighbours
            # low has no slope. Found on the live bins only: their neighbours' state by one
            # gather (mode clip: the end bins read themselves, so they are never edges).
            low_lr = live.take(nl + self._lr_offsets, mode="clip")
            np.logical_not(low_lr, out=low_lr)
            edge = np.logical_or(low_lr[0], low_lr[1]).nonzero()[0]
            if len(edge):
                ev = nl[edge]
                lr = low_lr[:, edge]
                s3 = sl.take(ev + self._lcr_offsets, mode="clip")  # s[v-1], s[v], s[v+1]
                d = s3[1:] - s3[:-1]  # backward, forward difference
                d *= 2.0
                d += self._curv_pm  # backward - k, forward + k
                d[0][lr[0]] = 0.0  # low on both sides: no slope
                t[ev] = np.where(lr[1], d[0], d[1])
        t[0] = t[-1] = 0.0
        t *= self._tgrad_mul
        t += self._tgrad_plus


class CannePhase(_Base, _GradientMixin):
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


class RTPGHI(_Base, _GradientMixin):
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
        # log s at n-2, n-1 and n in one buffer: the work set gathers all three in one call
        self._slog3 = np.zeros((3, n))
        self._slog_hist = self._slog3[:2]
        self._slog = self._slog3[2]
        self._top_hist = [0.0, 0.0]  # their peaks
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
        self._prev_top = 0.0  # max of _prev_mag
        self._alive = np.zeros(n, dtype=bool)
        self._dead = np.zeros(n, dtype=bool)
        self._pair_or = np.zeros(n - 1, dtype=bool)
        self._ext = np.zeros(n, dtype=bool)
        self._seed_buf = np.empty(n, dtype=np.float32)
        self._scan_spare = np.empty(2 * n + 1, dtype=np.float32)
        self._inc_buf = np.zeros(n)
        self._dec_buf = np.zeros(n)
        self._pad8 = np.zeros(n + 2, dtype=np.int8)
        # the broad-run rule's threshold for each distance, evaluated as the rule writes it
        d = np.arange(n + 1, dtype=np.float64)
        self._lobe_table = np.minimum(self._lobe * 0.5 * self._curv * d * (d - 1.0), self._lobe_cap)
        self._expand_buf = np.empty(n, dtype=np.float32)

    def reset(self) -> None:
        super().reset()
        self._sched = ()
        self._prev_power = 0.0
        self._prev_mag[:] = 0.0
        self._prev_top = 0.0
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
            root = self._root
            self.phase = self.phase.take(root)
            self.phase += self._tgrad.take(root)
            return self._scheduled(self._emit(magnitude))
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
                    self._sched = tuple([1.0 + u * (g - 1.0) for g in self._tgains])
                    self._sched_at = 0
            # the previous gradient is kept by swapping buffers: _log_and_tgrad rewrites all of it
            self._prev_tgrad, self._tgrad = self._tgrad, self._prev_tgrad
            self._log_and_tgrad(magnitude)
            top = self._top
        else:
            self._prev_tgrad[:] = self._tgrad
            top = float(magnitude.max()) if magnitude.size else 0.0
        s_log = self._slog
        # Causal 2nd-order backward difference in time, (3 s[n] - 4 s[n-1] + s[n-2]) / 2, on
        # logs floored at one level for all three frames: a bin that was below the floor of a
        # quiet frame must not read as a huge jump when the level rises (in _integrate, on the
        # bins that use it).
        log_floor = np.log(max(self._top, *self._top_hist, 1e-30) * self._floor)
        if abrupt:
            # a jump between two timbres is a crossfade of two steady sounds, not an onset: the
            # time difference of log s would place each partial's energy at the frame edge
            # (phase slopes of several rad/bin), where the synthesis window silences it
            self._slog_hist[0] = s_log
            self._slog_hist[1] = s_log
        self._integrate(magnitude, top, log_floor)
        self._slog_hist[0] = self._slog_hist[1]
        self._slog_hist[1] = s_log
        self._top_hist = [self._top_hist[1], self._top]
        self._prev_top = top
        self._prev_mag[:] = magnitude
        return self._scheduled(self._emit(magnitude))

    def _integrate(self, s: np.ndarray, s_top: float, log_floor: float) -> None:
        """The propagation on the work set only: the live bins (s >= tol) and their neighbours.

        Every other bin is dead with dead neighbours: seed and expand are -inf around it, so it
        is a root of itself that takes a random phase, and no path crosses it. The work set is
        a union of runs, each starting and ending on a dead bin (expand -inf), so the scans on
        the compacted runs, barriers included, are the full scans restricted to them; the
        cumulative sums skip only exact zeros, so every value is bit-identical to integrating
        all bins (benchmarks/phase_reference.py, tests/test_phase_equivalence.py).
        """
        n = self.n_bins
        top = max(s_top, self._prev_top, 1e-30)
        tol = top * self._tol
        alive = np.greater_equal(s, tol, out=self._alive)
        p = np.logical_or(alive[:-1], alive[1:], out=self._pair_or)
        ext = self._ext
        np.logical_or(p[:-1], p[1:], out=ext[1:-1])
        ext[0] = p[0]
        ext[-1] = p[-1]
        E = ext.nonzero()[0]
        m = len(E)
        new = np.empty(n)
        root = self._idx.copy()
        if m:
            sE = s[E]
            pE = self._prev_mag[E]
            aE = alive[E]
            dE = ~aE
            # heap priorities: a bin can be seeded from the previous frame (priority = its old
            # magnitude); bins with no usable predecessor get a tiny priority ordered by their
            # own magnitude, so the loudest of them roots its neighbourhood (the heap's restart
            # rule). float32 throughout the ordering: only comparisons matter, and one
            # precision for every comparison keeps the propagation tree free of cycles.
            seed = self._seed_buf[:m]
            seed[:] = np.where(pE >= tol, pE, sE * (1e-3 * tol / top))
            seed[dE] = _NEG
            expand = self._expand_buf[:m]
            expand[:] = sE
            expand[dE] = _NEG
            w = 2 * m + 1
            scan = self._scan
            a, b, tmp = scan[0][:w], scan[1][:w], scan[2][:w]
            # left-to-right: L[v] = max(seed[v], min(L[v-1], expand[v-1])); mirrored after the barrier
            a[:m] = seed
            a[m] = _NEG
            a[m + 1 :] = seed[::-1]
            b[0] = _NEG
            b[1:m] = expand[:-1]
            b[m] = _NEG
            b[m + 1] = _NEG
            b[m + 2 :] = expand[::-1][:-1]
            # the longest run of live bins bounds the runs of finite b: the steps needed
            pad = self._pad8[: m + 2]
            pad[1:-1] = aE
            pad[-1] = 0
            ch = np.not_equal(pad[1:], pad[:-1]).nonzero()[0]
            runs = ch[1::2] - ch[::2]
            longest = int(runs.max()) if len(ch) else 1
            reach = _clamp_scan(a, b, tmp, self._scan_spare[:w], longest)
            from_left, from_right = self._from_left[:m], self._from_right[:m]
            from_left[0] = _NEG
            np.minimum(reach[: m - 1], expand[:-1], out=from_left[1:])
            from_right[-1] = _NEG
            np.minimum(reach[m + 1 :][::-1][1:], expand[1:], out=from_right[:-1])
            # root: seed >= both neighbours' offers; else the larger offer, the left one on a tie
            # (bool a > b is a & ~b)
            best = np.maximum(from_left, from_right)
            is_root = seed >= best
            left_first = from_left >= from_right
            is_left = left_first > is_root
            is_right = np.logical_or(is_root, left_first)
            np.logical_not(is_right, out=is_right)
            jdx = self._idx[:m]
            # roots: trapezoidal time integration from the previous frame
            phase_prev = self.phase[E]
            prev_tgrad = self._prev_tgrad[E]
            phase = prev_tgrad + self._tgrad[E]
            phase *= 0.5
            phase += phase_prev
            # frequency-direction gradient (see next): causal 2nd-order difference in time, on
            # log s at n-2, n-1, n gathered and floored together
            g3 = self._slog3.take(E, axis=1)
            h = np.maximum(g3, log_floor)
            fgrad = h[2]
            fgrad *= 3.0
            fgrad -= 4.0 * h[1]
            fgrad += h[0]
            fgrad *= self._fgrad_mul
            if self._fclip > 0.0:
                np.maximum(fgrad, -self._fclip, out=fgrad)  # np.clip, in two plain ufunc calls
                np.minimum(fgrad, self._fclip, out=fgrad)
            self._fgrad[E] = fgrad
            # chains going up in frequency: phi[v] = phi[v-1] + (fgrad[v-1] + fgrad[v]) / 2
            pair = fgrad[:-1] + fgrad[1:]
            pair *= 0.5  # the trapezoid between neighbouring bins, used by both directions
            inc = self._inc_buf[:m]  # inc[0] stays 0
            np.multiply(pair, is_left[1:], out=inc[1:])
            up = inc.cumsum()
            anchor = np.maximum.accumulate(np.where(is_left, 0, jdx))
            phase_up = phase[anchor] + up - up[anchor]
            # chains going down: phi[v] = phi[v+1] - (fgrad[v] + fgrad[v+1]) / 2
            dec = self._dec_buf[:m]
            dec[-1] = 0.0
            np.multiply(pair, is_right[:-1], out=dec[:-1])
            down = dec[::-1].cumsum()[::-1]  # down[v] = sum_{k>=v} dec[k]
            anchor_r = np.minimum.accumulate(np.where(is_right, m - 1, jdx)[::-1])[::-1]
            # at a root anchor_r is the bin itself and phase - (down - down) is phase exactly
            phase_down = phase[anchor_r] - (down - down[anchor_r])
            new[E] = np.where(is_left, phase_up, phase_down)
            root_c = np.where(is_left, anchor, anchor_r)  # compact positions; a root's own
            # A sinusoid's main lobe is a few bins wide; further out a chain is a broad run
            # (noisy or merged partials), and one phase for all of it renders a pulse train (a
            # 4-bin comb under the run). Those bins become their own roots at their bin
            # frequency, unless the magnitude falls from the root as steeply as a Gaussian lobe
            # does (an exact partial and its side lobes: cutting those cost a sawtooth 13 dB of
            # SC). A chain is contiguous in bins and in the work set: compact distance = bins.
            dist = root_c - jdx
            np.abs(dist, out=dist)
            far_m = dist > self._max_reach
            if self._lobe > 0.0:
                sl = g3[2]  # log s, unfloored
                drop = sl.take(root_c)
                drop -= sl
                far_m &= drop < self._lobe_table.take(dist)
            far_j = far_m.nonzero()[0]
            if len(far_j):
                root_c[far_j] = far_j
                far = E[far_j]
                plus = self._tgrad_plus[far]
                self._tgrad[far] = plus
                plus += prev_tgrad[far_j]
                plus *= 0.5
                plus += phase_prev[far_j]
            root[E] = E[root_c]
            n_dead = n - int(runs.sum())  # every live bin is in one run
        else:
            n_dead = n
            far_j = ()
        if n_dead:
            start = self._random_at
            if start + n_dead > len(self._random):
                start = 0
            new[np.logical_not(alive, out=self._dead)] = self._random[start : start + n_dead]
            self._random_at = (start + n_dead + 7919) % (len(self._random) - n)
        if len(far_j):
            new[far] = plus
        self.phase = new
        self._root = root


def make_phase(method: str, n_fft: int, hop: int, seed: int = 0) -> _Base:
    if method == "rtpghi":
        return RTPGHI(n_fft, hop, seed)
    if method == "noise":
        return NoisePhase(n_fft, hop, seed)
    if method == "canne":
        return CannePhase(n_fft, hop, seed)
    raise ValueError(f"unknown phase method '{method}' (choose from {', '.join(PHASE_METHODS)})")
