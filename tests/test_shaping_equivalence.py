"""The optimised SpectralShaper against the frozen first implementation of peak-locked shifting
(benchmarks/shaping_reference.py, `ReferenceShaper`): same output up to rounding on decoded
frames of the shipped model and on synthetic frames, for every transpose -24…+24 in half
semitones, ±36, ±48 and tiny ones, with and without formants, on the cached path (one frame,
transpose after transpose: a glide) and the fresh path (another frame every call: a moving
latent). Bound: max |new − reference| ≤ 1e-9 of the frame maximum, and the same exact zeros.
The compiled shift (aedaemon/dsp/_native.c) sums per region in the same order as np.bincount;
libm's log/expm1/exp differ from NumPy's by an ulp: measured worst case 1.8e-13 of the frame
maximum, so the bound is unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from aedaemon.dsp.shaping import SpectralShaper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from shaping_reference import ReferenceShaper  # noqa: E402

import test_shaping_transpose as tt  # noqa: E402

SR = 44100
N_FFT = 4096
N_BINS = N_FFT // 2 + 1
MODEL = ROOT / "models" / "default"
BOUND = 1e-9
STEPS = [float(s) for s in np.arange(-24.0, 24.25, 0.5)] + [-48.0, 48.0, -36.0, 36.0, 1e-3, -1e-3, 0.01, -13.37]


def synthetic_frames() -> dict[str, np.ndarray]:
    j = np.arange(N_BINS)
    rng = np.random.default_rng(5)
    frames = {"hann": tt.hann_tone()[0], "sparse": tt.sparse_frame()[0]}
    frames["sparse+hump"] = frames["sparse"] + 0.01 * np.exp(-((j - 600.0) ** 2) / (2 * 200.0**2))
    frames["broad hump"] = np.exp(-((j - 300.0) ** 2) / (2 * 60.0**2)) * (1.0 + 0.3 * rng.random(N_BINS))
    two = np.zeros(N_BINS)
    for p in (400.0, 406.0):
        two += np.exp(-((j - p) ** 2) / (2 * 0.9**2)) * (np.abs(j - p) < 2.5)
    frames["two partials"] = two
    edge = np.zeros(N_BINS)
    edge[1500:1503] = [0.5, 1.0, 0.5]
    edge[3:6] = [0.5, 1.0, 0.5]
    frames["dc+high"] = edge
    one = np.zeros(N_BINS)
    one[100] = 1.0
    frames["one bin"] = one
    ends = np.zeros(N_BINS)
    ends[0:3] = [1.0, 0.4, 0.1]
    ends[-3:] = [0.1, 0.5, 0.9]
    frames["dc and nyquist peaks"] = ends
    plateau = np.zeros(N_BINS)
    plateau[200:206] = 0.7
    plateau[300:303] = [0.2, 0.9, 0.9]
    frames["plateaus"] = plateau
    frames["flat"] = np.full(N_BINS, 0.25)
    frames["white"] = rng.random(N_BINS)
    frames["tiny"] = frames["sparse"] * 1e-30
    for k in range(6):  # random decoder-like frames: lobes of random width, a hump, exact zeros
        m = np.zeros(N_BINS)
        for p in np.sort(rng.uniform(2, N_BINS - 3, rng.integers(3, 60))):
            half = rng.choice([1.5, 2.0, 2.5, 3.0, 4.0])
            m += rng.uniform(1e-4, 1.0) * np.exp(-((j - p) ** 2) / (2 * rng.uniform(0.6, 1.5) ** 2)) * (np.abs(j - p) < half)
        if k % 2:
            c, wd = rng.uniform(100, 1500), rng.uniform(5, 80)
            hump = rng.uniform(1e-3, 0.05) * np.exp(-((j - c) ** 2) / (2 * wd**2)) * (1 + 0.3 * rng.random(N_BINS))
            m += hump * (hump > 1e-4 * hump.max())
        frames[f"random{k}"] = m
    return frames


@pytest.fixture(scope="module")
def decoded_frames() -> dict[str, np.ndarray]:
    from aedaemon.engine import Engine
    from aedaemon.model import load_bundle

    bundle = load_bundle(MODEL)
    lo, hi = bundle.meta.latent_range
    n = bundle.meta.latent_size
    rng = np.random.default_rng(11)
    latents = [[float(v) for v in bundle.meta.default_latent]] + [list(lo + (hi - lo) * rng.random(n)) for _ in range(11)]
    frames = {}
    for k, z in enumerate(latents):
        e = Engine(bundle, seed=0)
        e.update(playing=True, latent=tuple(float(v) for v in z), chroma=tuple(float(c == (5 * k) % 12) for c in range(12)))
        e.render_hop()
        frames[f"decoded{k}"] = np.array(e._decode(), dtype=np.float64)
    return frames


def compare(frames: dict[str, np.ndarray], formants: bool) -> None:
    """Both orders of calls; raises with the worst case."""
    worst, where = 0.0, None
    # cached path: one frame, every transpose
    for name, m in frames.items():
        new, ref = SpectralShaper(N_FFT, SR, formants=formants), ReferenceShaper(N_FFT, SR, formants=formants)
        scale = float(m.max())
        for st in STEPS:
            a, b = new.apply(m, transpose=st), ref.apply(m, transpose=st)
            d = float(np.abs(a - b).max()) / scale
            assert np.array_equal(a == 0, b == 0), f"{name} {st:+}: exact zeros differ"
            if d > worst:
                worst, where = d, (name, st, "cached")
    # fresh path: another frame every call
    new, ref = SpectralShaper(N_FFT, SR, formants=formants), ReferenceShaper(N_FFT, SR, formants=formants)
    for st in STEPS:
        for name, m in frames.items():
            a, b = new.apply(m, transpose=st), ref.apply(m, transpose=st)
            d = float(np.abs(a - b).max()) / float(m.max())
            assert np.array_equal(a == 0, b == 0), f"{name} {st:+}: exact zeros differ"
            if d > worst:
                worst, where = d, (name, st, "fresh")
    assert worst <= BOUND, f"max |new - reference| = {worst:.3g} of the frame maximum at {where}"


@pytest.mark.parametrize("formants", [False, True])
def test_equivalent_on_decoded_frames(decoded_frames, formants):
    compare(decoded_frames, formants)


@pytest.mark.parametrize("formants", [False, True])
def test_equivalent_on_synthetic_frames(formants):
    compare(synthetic_frames(), formants)


def test_equivalent_with_shift_tilt_float32_and_nonfinite():
    frames = synthetic_frames()
    new, ref = SpectralShaper(N_FFT, SR), ReferenceShaper(N_FFT, SR)
    for name in ("sparse", "hann", "random3"):
        m = frames[name]
        for st, fs, tilt in ((5.0, 7, 0.0), (-7.0, -150, 3.0), (12.5, 0, -2.0)):
            a = new.apply(m.astype(np.float32), transpose=st, freq_shift=fs, tilt=tilt)
            b = ref.apply(m.astype(np.float32), transpose=st, freq_shift=fs, tilt=tilt)
            assert np.abs(a - b).max() <= BOUND * m.max() * 2.0, (name, st, fs, tilt)
    bad = frames["sparse"].copy()
    bad[10] = np.nan
    for _ in range(2):  # fresh, then cached
        a, b = new.apply(bad, transpose=5.0), ref.apply(bad, transpose=5.0)
        assert np.array_equal(np.isfinite(a), np.isfinite(b))
    assert not new.apply(np.zeros(N_BINS), transpose=3.0).any()
