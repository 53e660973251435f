"""The optimised phase methods against the frozen implementation (benchmarks/phase_reference.py).

Each method (rtpghi, canne, noise; same seed, so the same random streams) runs side by side with
its reference over sequences of magnitude frames: decoded frames of models/default over a
deterministic set of latents × chroma, the same frames shaped (transposed) as the engine plays
them, a latent walk where every frame changes, abrupt jumps, synthetic sawtooth frames, all-zero
and tiny frames, each frame sometimes held (changed=False: the steady paths).

Bounds. The state carried between frames is compared every frame: the float64 phase within
1e-9 rad (relative to its size: it is wrapped only every 256 frames), the same exact zeros,
the same propagation tree. The compiled step (aedaemon/dsp/_native.c) evaluates every
expression of the reference in the same order; only libm's log differs from NumPy's SIMD log
(by an ulp, ~1e-16), and the state agrees to ~1e-13. The complex64 spectrum is compared within
3e-7 of the frame's largest |value| (was 1e-9 while both used NumPy's float32 cos/sin): the
output trig is now libm's cosf/sinf of the same float32 phase, and the two implementations
differ by up to 2 ulp of float32 (1.2e-7 relative, -138 dB: far below the float32 audio path's
own rounding and inaudible). Measured worst case: see the assertion message.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from aedaemon.dsp import phase as live
from aedaemon.synthetic import harmonic_frame

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import phase_reference as ref  # noqa: E402

MODEL = ROOT / "models" / "default"
N_FFT, HOP, SR = 4096, 1024, 44100
N_BINS = N_FFT // 2 + 1
BOUND = 3e-7  # of the frame maximum, complex64 spectrum (see the docstring)
PHASE_BOUND = 1e-9  # rad, relative to 1 + |phase|


def _one_hot(c: int) -> np.ndarray:
    v = np.zeros(12, np.float32)
    v[c % 12] = 1.0
    return v


def _decoded_sequences() -> list[list[np.ndarray]]:
    if not (MODEL / "model.json").exists():
        return []
    from aedaemon.dsp.shaping import SpectralShaper
    from aedaemon.model import load_bundle

    b = load_bundle(MODEL)
    n = b.meta.latent_size
    lo, hi = b.meta.control_range
    rng = np.random.default_rng(11)

    def dec(lat, c) -> np.ndarray:
        return b.decode(np.asarray(lat, np.float32), _one_hot(c)).astype(np.float64).copy()

    grid = [dec(rng.uniform(0.0, 1.0, n), c) for _ in range(6) for c in (0, 3, 7, 10)]
    walk, lat = [], np.asarray(b.meta.default_latent, np.float64)
    for k in range(60):
        lat = np.clip(lat + rng.normal(0.0, 0.03, n), lo, hi)
        walk.append(dec(lat, k // 15))
    jumps = [dec(rng.uniform(lo, hi, n), int(rng.integers(12))) for _ in range(30)]
    shaper = SpectralShaper(N_FFT, SR)
    shaped = [
        shaper.apply(f, transpose=float(rng.uniform(-12, 12)), freq_shift=0, tilt=float(rng.uniform(-6, 6))).copy()
        for f in walk[::2] + jumps[:10]
    ]
    return [grid, walk, jumps, shaped]


def _synthetic_sequence() -> list[np.ndarray]:
    frames = [harmonic_frame(f0, SR, N_FFT) for f0 in (110.0, 261.63, 440.0, 1000.0, 55.0)]
    frames += [np.zeros(N_BINS), 1e-300 * frames[0], np.full(N_BINS, 1e-12), frames[1] * 1e-7]
    one = np.zeros(N_BINS)
    one[100] = 1.0
    frames += [one, np.zeros(N_BINS), frames[2], 0.5 * frames[2] + 0.5 * frames[0]]
    rng = np.random.default_rng(3)
    frames += [np.abs(rng.normal(size=N_BINS)) * (rng.random(N_BINS) < 0.1) for _ in range(5)]
    edge = np.zeros(N_BINS)
    edge[:3] = 1.0
    edge[-3:] = 0.5
    frames += [edge, np.ones(N_BINS)]
    return frames


# float64 frames, as the engine plays them: the reference evaluates a float32 frame's logs and
# comparisons in float32, the compiled step widens every frame to float64 first (a float32
# frame gives exactly what its float64 copy gives: test_float32_frames_are_widened)
SEQUENCES = _decoded_sequences() + [[np.asarray(f, np.float64) for f in _synthetic_sequence()]]


def _play(a, b, frames: list[np.ndarray], holds: list[int]) -> float:
    worst = 0.0
    for k, f in enumerate(frames):
        for rep in range(1 + holds[k]):
            changed = rep == 0
            x = a.next(f, changed).copy()
            y = b.next(f, changed).copy()
            scale = max(float(np.abs(y).max()), 1e-300)
            err = float(np.abs(x - y).max()) / scale
            assert err <= BOUND, f"frame {k} rep {rep}: {err:.3g}"
            pa, pb = np.asarray(a.phase), np.asarray(b.phase)
            perr = float(np.abs(pa - pb).max()) / (1.0 + float(np.abs(pb).max()))
            assert perr <= PHASE_BOUND, f"frame {k} rep {rep}: phase differs by {perr:.3g}"
            assert np.array_equal(pa == 0, pb == 0)
            if hasattr(b, "_root"):
                assert np.array_equal(a._root, b._root), f"frame {k}: propagation tree differs"
            worst = max(worst, err)
    return worst


@pytest.mark.parametrize("method", ["rtpghi", "canne", "noise"])
def test_phase_methods_match_reference(method: str) -> None:
    rng = np.random.default_rng(1)
    for seq in SEQUENCES:
        a = live.make_phase(method, N_FFT, HOP, seed=7)
        b = ref.make_phase(method, N_FFT, HOP, seed=7)
        holds = [int(h) for h in rng.choice([0, 0, 0, 1, 3], size=len(seq))]
        _play(a, b, seq, holds)
        np.testing.assert_allclose(a.phase, b.phase, rtol=0, atol=1e-9 * (1 + float(np.abs(b.phase).max())))
        # a reset, then the sequence again (the random streams continue)
        a.reset()
        b.reset()
        _play(a, b, seq[::-1], [0] * len(seq))


@pytest.mark.parametrize("method", ["rtpghi", "canne", "noise"])
def test_float32_frames_are_widened(method: str) -> None:
    a = live.make_phase(method, N_FFT, HOP, seed=7)
    b = live.make_phase(method, N_FFT, HOP, seed=7)
    for f in _synthetic_sequence():
        x = a.next(np.asarray(f, np.float32), True).copy()
        y = b.next(np.asarray(f, np.float32).astype(np.float64), True)
        assert x.tobytes() == y.tobytes()


def test_rtpghi_variants_match_reference() -> None:
    """The non-default options (centred gradient, no broad-run rule, no jump handling, no
    held-frame stages, the held-frame stages on every frame), held frames included."""
    seq = SEQUENCES[0][:20] + SEQUENCES[-1]
    for kw in (
        dict(log_floor_db=-100.0, one_sided=False, max_reach=1 << 30, jump=2.0, compensate=False),
        dict(lobe=0.0, fgrad_clip=0.0),
        dict(noise_prom_db=0.0, peak_freq=False, pattern_all=False),
        dict(noise_held=False, noise_run=4, noise_prom_db=15.0),
    ):
        a = live.RTPGHI(N_FFT, HOP, seed=2, **kw)
        b = ref.RefRTPGHI(N_FFT, HOP, seed=2, **kw)
        _play(a, b, seq, [k % 3 for k in range(len(seq))])


# ---- engine level: the engine with the optimised phase and bookkeeping against the engine as
# it was (frozen in benchmarks/phase_reference.py: Glide.step, update, _follow_targets and
# render_hop before the tuning) running the frozen phase; 2 s, every parameter moving, then a
# glide, a stop, a restart and a level into the limiter.

from aedaemon import engine as engine_mod  # noqa: E402

_RefEngine = ref.RefEngine


def _render_2s(cls, bundle, method: str, level: float) -> tuple[np.ndarray, list]:
    e = cls(bundle, phase=method, hop=HOP, seed=3, level=level)
    rng = np.random.default_rng(42)
    n = bundle.meta.latent_size
    lo, hi = bundle.meta.control_range
    e.update(playing=True)
    chunks, meters = [], []
    for k in range(int(2.0 * SR / HOP)):
        if k < 40:
            e.update(
                latent=tuple(rng.uniform(lo, hi, n)),
                chroma=tuple(float(v) for v in _one_hot(int(rng.integers(12)))),
                transpose=float(rng.uniform(-5, 5)),
                gain=float(rng.uniform(0.5, 1.0)),
                tilt=float(rng.uniform(-3, 3)),
            )
        elif k == 40:
            e.update(glide=0.1, latent=tuple(rng.uniform(lo, hi, n)), pitch=64.0)
        elif k == 55:
            e.update(playing=False)
        elif k == 62:
            e.update(playing=True, glide=0.0, transpose=2.0)
        elif k == 70:
            e.update(gain=2.0)  # into the limiter
        chunks.append(e.render_hop().copy())
        meters.append(e.meter)
    return np.concatenate(chunks), meters


@pytest.mark.parametrize("method", ["rtpghi", "canne", "noise"])
@pytest.mark.parametrize("level", [engine_mod.DEFAULT_LEVEL, 4.0])
def test_engine_renders_as_before(method: str, level: float) -> None:
    """Was bit for bit while both ran NumPy; the compiled phase's output trig (libm cosf/sinf,
    up to 2 float32 ulp from NumPy's) moves samples by ~1e-7 of full scale: bound 1e-5 here
    (the limiter at level 4 included), the meters within 1e-3 dB."""
    from aedaemon.model import load_bundle

    b = load_bundle(MODEL)
    got, got_m = _render_2s(engine_mod.Engine, b, method, level)
    want, want_m = _render_2s(_RefEngine, b, method, level)
    diff = float(np.abs(got.astype(np.float64) - want).max())
    assert diff < 1e-5, diff
    np.testing.assert_allclose(np.asarray(got_m, float), np.asarray(want_m, float), rtol=0, atol=1e-3)
