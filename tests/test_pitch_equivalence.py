"""The compiled PitchEstimator against the frozen NumPy one (benchmarks/pitch_reference.py).

Frames: decoded frames of models/default over latents × pitch classes, the same frames shaped
(transposed) as the engine plays them, synthetic harmonic tones, noise and degenerate frames;
every pitch class and None. The estimates agree within 1e-9 relative (the compiled loops sum
in another order than NumPy's pairwise sums and BLAS products, and libm's cos/sin/log differ
from NumPy's SIMD ones by an ulp: ~1e-15 measured), and None where the reference gives None.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from aedaemon.dsp.pitch import PitchEstimator
from aedaemon.synthetic import harmonic_frame

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from pitch_reference import RefPitchEstimator  # noqa: E402

MODEL = ROOT / "models" / "default"
SR, N_FFT = 44100, 4096
N_BINS = N_FFT // 2 + 1
BOUND = 1e-9


def _one_hot(c: int) -> np.ndarray:
    v = np.zeros(12, np.float32)
    v[c % 12] = 1.0
    return v


def frames() -> list[np.ndarray]:
    from aedaemon.dsp.shaping import SpectralShaper
    from aedaemon.model import load_bundle

    b = load_bundle(MODEL)
    rng = np.random.default_rng(4)
    lo, hi = b.meta.control_range
    out = [b.decode(rng.uniform(lo, hi, b.meta.latent_size).astype(np.float32), _one_hot(c)).astype(np.float64)
           for c in range(12) for _ in range(5)]
    shaper = SpectralShaper(N_FFT, SR)
    out += [shaper.apply(f, transpose=float(rng.uniform(-12, 12))).copy() for f in out[::3]]
    out += [np.asarray(harmonic_frame(f0, SR, N_FFT), np.float64) for f0 in (41.0, 55.0, 110.0, 261.63, 440.0, 1000.0, 3000.0)]
    out += [np.abs(rng.normal(size=N_BINS)), np.zeros(N_BINS), np.full(N_BINS, 0.5), 1e-300 * out[0]]
    one = np.zeros(N_BINS)
    one[300] = 1.0
    out.append(one)
    many = np.zeros(N_BINS)
    many[5:-5:7] = rng.random(len(many[5:-5:7]))  # more than MAX_PEAKS peaks
    out.append(many)
    return out


@pytest.mark.parametrize("pitch_class", [None] + list(range(12)))
def test_estimates_match_reference(pitch_class) -> None:
    new, ref = PitchEstimator(N_FFT, SR), RefPitchEstimator(N_FFT, SR)
    for k, f in enumerate(frames()):
        a, b = new.estimate(f, pitch_class), ref.estimate(f, pitch_class)
        if b is None:
            assert a is None, (k, a)
        else:
            assert a is not None and abs(a - b) <= BOUND * b, (k, a, b)


def test_peaks_match_reference() -> None:
    new, ref = PitchEstimator(N_FFT, SR), RefPitchEstimator(N_FFT, SR)
    for f in frames():
        (fa, pa), (fb, pb) = new.peaks(f), ref.peaks(f)
        order = np.argsort(fb)
        np.testing.assert_allclose(fa, fb[order], rtol=1e-12)
        np.testing.assert_allclose(pa, pb[order], rtol=1e-12)


def test_float32_and_strided_frames() -> None:
    new = PitchEstimator(N_FFT, SR)
    f = np.asarray(harmonic_frame(220.0, SR, N_FFT), np.float64)
    want = new.estimate(f, 9)
    assert new.estimate(f.astype(np.float32).astype(np.float64), 9) == new.estimate(f.astype(np.float32), 9)
    wide = np.zeros(2 * N_BINS)
    wide[::2] = f
    assert new.estimate(wide[::2], 9) == want
