"""Phase for magnitude-only frames: RTPGHI (default), white noise, CANNe time-only integration.

All three share one interface: ``spectrum = method.next(magnitude, changed)`` returns the
complex half-spectrum (phase referred to the window centre, so it can go straight into an
irfft + synthesis window). ``changed`` is False when the magnitude frame is bit-identical to
the previous one; methods use it to skip work.

RTPGHI (Prusa & Holighaus 2017) estimates the phase gradient from the log-magnitude of a
Gaussian-like window (Hann: gamma = 0.25645 L^2):

    time direction (per hop):  a*M/gamma * d/dm log s  +  2*pi*a*m/M
    frequency direction:       -gamma/(a*M) * d/dn log s   (causal 2nd-order difference)

and integrates it from the strongest coefficients outwards with a max-heap. On a line of bins
the level at which the heap reaches bin v is a bottleneck (max-min) path value, computable by
two scans (left-to-right, right-to-left): each bin then takes its phase from its root along
running sums of the frequency-direction trapezoids. While the magnitude frame stays the same,
the propagation tree does too, and the update collapses to a gather and an add.

Held frames (the first repeat of a magnitude frame: a steady note) get two more stages, and
every frame a third, for
what the decoder emits (benchmarks/bench_phase.py: 30 decoded frames held as tones, mean
spectral convergence -16.5 -> -17.9 dB, every frame within 4 dB of 300 iterations of fast
Griffin-Lim, was 22 of 30):

- noise bands: a live bin off every peaked lobe (a local maximum standing `noise_prom_db`
  above the lowest bin within 4 of it; its lobe: 2 bins either side) in a run of live bins at
  least `noise_run` long is a sinusoid at its own bin frequency, and along a run of such bins
  the phases follow a quadrature pattern (neighbours differ by -pi/4 after an even bin, 3pi/4
  after an odd one, plus one multiple of pi/2 per run, nearest to the phases they had). With
  hop = n_fft/4 the phase of neighbouring bin-centred sinusoids turns by pi/2 a hop, and each
  leaks half its amplitude into its neighbours (the Hann kernel): with random phases the
  magnitude beats from frame to frame (noise phase), with the pattern the leakage adds to the
  same magnitude in every frame. A bin-centred sinusoid keeps 2/3 of its amplitude at its own
  bin, so these bins are emitted `noise_gain` (sqrt 1.5) louder: a flat band comes back at its
  level. A constant magnitude over time in a band is what a pulse train two per frame apart
  gives (Hann: w(t) + w(t + n_fft/2) = 1), and the pattern is one: the run's offset turns by
  pi/2 every `noise_seg` bins, which moves the pulse of each stretch of the band by a quarter
  frame, so that the band stays noise-like (peak of the breathiest tones 0.99 -> 0.50, as the
  others) at 0.2 dB of spectral convergence. Broad noisy frames: -9.7 -> about -15 dB, at
  fast Griffin-Lim's level.
- the other bins at their own bin frequency (the broad-run rule's, not a peak;
  `pattern_all`): the same pattern and gain.
- partial frequencies (on every frame, not only held ones: a partial whose frequency changed
  between the first frames of a note and the later ones beats against itself across the
  overlap, a level dip after every change): a peak that roots its lobe, with no other within
  2 bins, runs on at
  the vertex of the parabola through its log magnitudes (floored `peak_floor_db` below it),
  unless its lobe is as curved as a Hann main lobe (an exact sinusoid's, where the Gaussian
  slope estimate is good: `hann_curvature`) or the two differ by less than `peak_min` bins.
  Decoded lobes are flatter or sharper than a Gaussian and bias the slope estimate by tenths
  of a bin: a partial then plays beside its lobe.

A frame that changes every hop (a glide, a latent walk) keeps the plain integration: snapping
phases to a pattern on every frame breaks their continuity (a walk: -18.3 -> -14.3 dB).

Cost. The per-frame work is a few passes over the 2049 bins, which NumPy could only express as
~60 calls of ~1.5-2 µs each (the floor of the vectorised version). The passes are compiled
(aedaemon/dsp/_native.c: log and time gradient, scans, sums, tree, random phase, broad-run
rule, the held-frame stages, the trig of the output) and run on the work set (the live bins and
their neighbours, ~15-30 % of a decoded frame): a changed RTPGHI frame costs ~30 µs instead of
~140 (the first repeat of a frame ~4 µs more, for the held-frame stages). They
compute the frozen full-array NumPy implementation (benchmarks/phase_reference.py) in the same
order of operations; only libm's log/cos/sin differ from NumPy's SIMD ones, by an ulp
(tests/test_phase_equivalence.py; benchmarks/bench_hop_profile.py times both, interleaved).
This module keeps the state (every buffer allocated here, once) and the decisions taken once
per frame.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _native
from .stft import HANN_GAMMA

PHASE_METHODS = ("rtpghi", "noise", "canne")
_NEG = -np.inf
_F64 = np.dtype(np.float64)


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
        # the phase is updated in place (the compiled step writes into this array)
        self.phase = self.rng.uniform(-np.pi, np.pi, self.n_bins)
        self._spectrum = np.zeros(self.n_bins, dtype=np.complex64)
        self._in = np.zeros(self.n_bins)  # a frame that is not float64 is copied here
        self._frames_since_wrap = 0

    def reset(self) -> None:
        self.phase[:] = self.rng.uniform(-np.pi, np.pi, self.n_bins)

    def _frame(self, magnitude: np.ndarray) -> np.ndarray:
        """The frame as float64 (the compiled steps read float64 only)."""
        if magnitude.dtype == _F64 and magnitude.flags.c_contiguous:
            return magnitude
        np.copyto(self._in, magnitude)
        return self._in

    def _emit(self, magnitude: np.ndarray, gain: float = 1.0) -> np.ndarray:
        # Phase accumulates in float64; wrapping it costs as much as the trig, so it is done
        # every 256 frames (float64 keeps ~1e-10 rad of precision long before that matters).
        self._frames_since_wrap += 1
        if self._frames_since_wrap >= 256:
            np.remainder(self.phase, 2 * np.pi, out=self.phase)
            self._frames_since_wrap = 0
        # complex64 magnitude * (-1)^m * exp(i float32(phase)), times float32(gain): the trig
        # only where the magnitude is not zero (decoded frames are ~90 % exact zeros)
        _native.emit(magnitude, self.phase, self._centre_to_start, self._spectrum, gain)
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
        # Generator.uniform(-pi, pi) is -pi + 2 pi * Generator.random(): the same stream, in place
        self.rng.random(out=self.phase)
        _native.affine(self.phase, 2.0 * np.pi, -np.pi)
        return self._emit(self._frame(magnitude), self.level_gain)


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
        # next to a bin at the floor the centred difference reads the floor as part of the lobe;
        # one_sided uses the one-sided difference corrected by the Gaussian's known curvature
        # (log s = c - k/2 (m - m0)^2: forward difference + k/2, backward - k/2; times 2, as the
        # centred difference is not halved); a live bin with both neighbours low has no slope
        self._one_sided = one_sided
        self._slog = np.zeros(self.n_bins)  # log(max(s, floor)), floor = log_floor_db below the top
        self._top = 0.0
        self._tgrad = self._tgrad_plus.copy()
        self._prev_tgrad = self._tgrad.copy()


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
        self._lock = lock
        self._steady_step = self._tgrad.copy()
        self._peak_tmp = np.zeros(self.n_bins, dtype=np.int64)
        self._params = np.array([self._tgrad_mul, self._floor, self._curv, float(one_sided), float(lock)])
        self.phase[:] = 0.0  # as the CANNe loop starts: every main lobe coherent

    def reset(self) -> None:
        self.phase[:] = 0.0

    def next(self, magnitude: np.ndarray, changed: bool = True) -> np.ndarray:
        # changed: the gradient of the new frame; every bin advances by the trapezoid of the old
        # and new gradient at its peak (lock: the nearest local maximum uphill, s >= left and
        # s > right; else its own), and later unchanged frames by the new gradient there
        m = self._frame(magnitude)
        _native.canne_next(
            m, self.phase, self._tgrad, self._prev_tgrad, self._tgrad_plus, self._slog, self._steady_step,
            self._peak_tmp, self._params, changed,
        )
        return self._emit(m)


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
        noise_prom_db (0: off), noise_run, noise_gain, pattern_all, peak_freq, peak_floor_db,
        peak_min, hann_curvature: the held-frame stages (module docstring); noise_held=False
        runs them on every frame.
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
        self._tol = 10.0 ** (tol_db / 20.0)
        # log s at n-2, n-1 and n in one buffer
        self._slog3 = np.zeros((3, n))
        self._slog_hist = self._slog3[:2]
        self._slog = self._slog3[2]
        self._prev_mag = np.zeros(n)
        self._fgrad = np.zeros(n)
        self._root = np.arange(n, dtype=np.int64)  # for each bin, the bin its phase came from in time
        # precomputed random phases for bins below the tolerance (as phaseret does)
        self._random = self.rng.uniform(-np.pi, np.pi, 8 * n)
        # the broad-run rule's threshold for each distance d: min(lobe * k/2 * d(d-1), cap)
        d = np.arange(n + 1, dtype=np.float64)
        self._lobe_table = np.minimum(self._lobe * 0.5 * self._curv * d * (d - 1.0), self._lobe_cap)
        # the compiled step's working memory: float32 seeds, expands and the left scan (the
        # heap order: only comparisons matter, and one precision for every comparison keeps
        # the propagation tree free of cycles); float64 root phases, ascending and descending
        # sums, the new phase; the work set and the anchors of chains going down; each bin's
        # liveness and direction
        self._scratch32 = np.zeros(3 * n, dtype=np.float32)
        self._scratch64 = np.zeros(4 * n)
        self._scratch_i = np.zeros(2 * n, dtype=np.int64)
        self._flags = np.zeros(n, dtype=np.uint8)
        self._emit_mag = np.zeros(n)  # the magnitude emitted: noise-band bins noise_gain louder
        # carried between frames: previous power, the peaks of the frames at n-2 and n-1, the
        # peak of the last log, the random phases' position, identical frames in a row, the
        # previous frame's peak
        self._state = np.zeros(7)
        self._params = np.array(
            [
                self._tgrad_mul, self._fgrad_mul, self._floor, self._curv, float(one_sided), self._tol,
                float(max_reach), float(lobe), float(fgrad_clip), float(jump),
                10.0 ** (-noise_prom_db / 20.0) if noise_prom_db > 0.0 else 0.0, float(noise_gain),
                float(noise_held), float(peak_freq), float(noise_run), 10.0 ** (peak_floor_db / 20.0),
                float(pattern_all), float(peak_min), float(hann_curvature[0]), float(hann_curvature[1]),
                float(noise_seg), float(4 * hop == n_fft),
            ]
        )

    @property
    def _steady(self) -> int:
        return int(self._state[5])

    def reset(self) -> None:
        super().reset()
        self._sched = ()
        st = self._state
        st[0] = 0.0  # previous power
        self._prev_mag[:] = 0.0
        st[6] = 0.0  # previous peak
        st[1] = st[2] = 0.0  # the peaks of the frames at n-2, n-1
        st[5] = 0.0  # identical frames in a row

    def next(self, magnitude: np.ndarray, changed: bool = True) -> np.ndarray:
        """One frame (see the module docstring; the step itself is _native.rtpghi_next):

        - changed: the time gradient of the new frame; a frame whose magnitude cosine distance
          u to the previous one exceeds `jump` is an abrupt change, integrated as stationary
          (no onset read into the time difference of log s), and with `compensate` the next
          frames are scaled towards a power-complementary crossfade by 1 + min(1, 2u)(g - 1)
          (magnitude similarity overstates coherence: twice the distance, measured on the dips
          benchmark);
        - the frequency gradient, the causal 2nd-order time difference of log s on the logs of
          the last three frames floored at one level, clipped to +-fgrad_clip;
        - the propagation (roots: trapezoidal time integration from the previous frame; chains
          up and down: trapezoids of the frequency gradient), bins below the tolerance take
          random phases, bins more than max_reach from their root off a peaked lobe are roots;
        - the same frame three times: every bin takes its root's time-integrated phase.
        """
        m = self._frame(magnitude)
        u = _native.rtpghi_next(
            m, self.phase, self._tgrad, self._prev_tgrad, self._tgrad_plus, self._slog3, self._prev_mag,
            self._fgrad, self._root, self._random, self._lobe_table, self._scratch32, self._scratch64,
            self._scratch_i, self._flags, self._state, self._params, self._emit_mag, changed,
        )
        if u is not None and self._tgains is not None:
            u = min(1.0, 2.0 * u)
            self._sched = tuple([1.0 + u * (g - 1.0) for g in self._tgains])
            self._sched_at = 0
        gain = 1.0
        if self._sched_at < len(self._sched):
            gain = self._sched[self._sched_at]
            self._sched_at += 1
        return self._emit(self._emit_mag, gain)


def make_phase(method: str, n_fft: int, hop: int, seed: int = 0) -> _Base:
    if method == "rtpghi":
        return RTPGHI(n_fft, hop, seed)
    if method == "noise":
        return NoisePhase(n_fft, hop, seed)
    if method == "canne":
        return CannePhase(n_fft, hop, seed)
    raise ValueError(f"unknown phase method '{method}' (choose from {', '.join(PHASE_METHODS)})")
