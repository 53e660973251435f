"""aedaemon.dsp._native, the compiled DSP loops: bad input is refused with TypeError/ValueError
(never a crash), the package says how to build it when it is missing, and the engine renders as
the NumPy engine did (benchmarks/engine_reference.py: phase, shaping and pitch tracking all as
their frozen NumPy implementations) with every parameter changing every frame.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from aedaemon.dsp import _native
from aedaemon.dsp.phase import RTPGHI, CannePhase, NoisePhase
from aedaemon.dsp.pitch import PitchEstimator
from aedaemon.dsp.shaping import SpectralShaper
from aedaemon.synthetic import harmonic_frame

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "default"
N_FFT, HOP, SR = 4096, 1024, 44100
N = N_FFT // 2 + 1


def _rtpghi_args(p: RTPGHI, mag: np.ndarray) -> list:
    return [
        mag, p.phase, p._tgrad, p._prev_tgrad, p._tgrad_plus, p._slog3, p._prev_mag, p._fgrad, p._root,
        p._random, p._lobe_table, p._scratch32, p._scratch64, p._scratch_i, p._flags, p._state, p._params,
        p._emit_mag, True,
    ]


def _canne_args(p: CannePhase, mag: np.ndarray) -> list:
    return [
        mag, p.phase, p._tgrad, p._prev_tgrad, p._tgrad_plus, p._slog, p._steady_step, p._peak_tmp, p._params,
        True,
    ]


def _calls():
    """(name, function, a valid argument list) for every compiled function."""
    f = np.asarray(harmonic_frame(220.0, SR, N_FFT), np.float64)
    r, c, z = RTPGHI(N_FFT, HOP), CannePhase(N_FFT, HOP), NoisePhase(N_FFT, HOP)
    pe = PitchEstimator(N_FFT, SR)
    sh = SpectralShaper(N_FFT, SR)
    sh._analyse(f)
    return [
        ("rtpghi_next", _native.rtpghi_next, _rtpghi_args(r, f)),
        ("canne_next", _native.canne_next, _canne_args(c, f)),
        ("emit", _native.emit, [f, z.phase, z._centre_to_start, z._spectrum, 1.0]),
        ("affine", _native.affine, [np.zeros(8), 2.0, 1.0]),
        ("pitch_estimate", _native.pitch_estimate, [f, pe._octaves[9], pe._peak_tmp, pe._params]),
        ("pitch_peaks", _native.pitch_peaks, [f, pe._peak_tmp, pe._params, np.zeros(48), np.zeros(48)]),
        ("shape_analyse", _native.shape_analyse, [f, sh._pad, sh._ws, sh._wsi, sh._info, sh._params]),
        ("shape_shift", _native.shape_shift, [3.0, sh._frame, sh._ws, sh._wsi, sh._info, sh._params, sh._ext]),
        ("same_bytes", _native.same_bytes, [f, f.copy()]),
    ]


CALLS = _calls()
IDS = [c[0] for c in CALLS]


@pytest.mark.parametrize("name, fn, args", CALLS, ids=IDS)
def test_valid_arguments_run(name, fn, args) -> None:
    fn(*args)


@pytest.mark.parametrize("name, fn, args", CALLS, ids=IDS)
def test_wrong_argument_count_is_a_type_error(name, fn, args) -> None:
    with pytest.raises(TypeError):
        fn(*args[:-1])
    with pytest.raises(TypeError):
        fn(*args, None)
    with pytest.raises(TypeError):
        fn()


def _array_positions(args) -> list[int]:
    return [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]


@pytest.mark.parametrize("name, fn, args", CALLS, ids=IDS)
def test_wrong_dtypes_and_objects_are_type_errors(name, fn, args) -> None:
    for i in _array_positions(args):
        a = args[i]
        other = np.zeros(a.shape, np.float32 if a.dtype != np.float32 else np.float64)
        for bad in (other, None, [0.0] * a.size, "x", 3.0):
            if bad is None and name == "pitch_estimate" and i == 1:
                continue  # None: no pitch class (valid)
            with pytest.raises(TypeError):
                fn(*args[:i], bad, *args[i + 1 :])


@pytest.mark.parametrize("name, fn, args", CALLS, ids=IDS)
def test_wrong_sizes_are_value_errors(name, fn, args) -> None:
    for i in _array_positions(args):
        a = args[i]
        for size in (a.size - 1, a.size + 1, 0):
            if size < 0:
                continue
            bad = np.zeros(size, a.dtype)
            try:
                fn(*args[:i], bad, *args[i + 1 :])
            except (ValueError, TypeError):
                continue
            # a few arguments take any size (a magnitude sets every other size; the random
            # table, the octave list, the output lists need only be long enough)
            assert (name, i) in {
                ("affine", 0), ("rtpghi_next", 9), ("pitch_estimate", 1), ("pitch_peaks", 3), ("pitch_peaks", 4),
                ("pitch_estimate", 0), ("pitch_peaks", 0), ("same_bytes", 0), ("same_bytes", 1),
            }, (name, i, size)


@pytest.mark.parametrize("name, fn, args", CALLS, ids=IDS)
def test_non_contiguous_and_read_only_buffers_are_refused(name, fn, args) -> None:
    for i in _array_positions(args):
        a = args[i]
        wide = np.zeros(2 * a.size, a.dtype)
        with pytest.raises((TypeError, ValueError)):
            fn(*args[:i], wide[::2], *args[i + 1 :])
    # the state a function writes: a read-only copy is refused
    writable_checked = 0
    for i in _array_positions(args):
        ro = args[i].copy()
        ro.flags.writeable = False
        try:
            fn(*args[:i], ro, *args[i + 1 :])
        except TypeError:
            writable_checked += 1
    assert writable_checked >= 1 or name in {"pitch_estimate", "same_bytes"}


def test_python_classes_refuse_wrong_frames() -> None:
    for p in (RTPGHI(N_FFT, HOP), CannePhase(N_FFT, HOP), NoisePhase(N_FFT, HOP)):
        with pytest.raises((ValueError, TypeError)):
            p.next(np.zeros(N - 1))
        with pytest.raises((ValueError, TypeError)):
            p.next(np.zeros(N + 1))
    with pytest.raises((ValueError, TypeError)):
        SpectralShaper(N_FFT, SR).apply(np.ones(N - 3), transpose=2.0)
    pe = PitchEstimator(N_FFT, SR)
    assert pe.estimate(np.zeros(2)) is None  # any length: a frame too short has no pitch
    assert pe.estimate(np.zeros(0)) is None
    assert pe.estimate(np.full(N, np.nan)) is None
    assert pe.estimate(np.full(N, np.inf), 3) is None


def test_same_bytes() -> None:
    a = np.arange(10.0)
    assert _native.same_bytes(a, a.copy())
    b = a.copy()
    b[3] = -0.0 if a[3] == 0 else np.nextafter(a[3], 100.0)
    assert not _native.same_bytes(a, b)
    assert not _native.same_bytes(a, a[:9].copy())
    z, nz = np.zeros(3), np.array([0.0, -0.0, 0.0])
    assert not _native.same_bytes(z, nz)  # bytes, not values (as tobytes() compared)


def test_extreme_transposes() -> None:
    sh = SpectralShaper(N_FFT, SR)
    f = np.asarray(harmonic_frame(220.0, SR, N_FFT), np.float64)
    assert not sh.apply(f, transpose=1e6).any()
    assert not sh.apply(f, transpose=-1e300).any()
    assert np.isnan(sh.apply(f, transpose=float("nan"))).all()
    assert not sh.apply(f, transpose=float("inf")).any()
    assert np.isfinite(sh.apply(f, transpose=-599.0)).all()


def test_rtpghi_state_sizes_are_checked() -> None:
    p = RTPGHI(N_FFT, HOP)
    f = np.ones(N)
    args = _rtpghi_args(p, f)
    args[9] = np.zeros(N)  # the random table must be longer than a frame
    with pytest.raises(ValueError):
        _native.rtpghi_next(*args)
    with pytest.raises(ValueError):
        _native.rtpghi_next(*_rtpghi_args(p, np.ones(1)))


def test_garbage_state_is_refused_or_harmless() -> None:
    """State a caller could corrupt: indices are checked before they are used as indices."""
    p = RTPGHI(N_FFT, HOP)
    f = np.asarray(harmonic_frame(220.0, SR, N_FFT), np.float64)
    p.next(f)
    p._state[4] = -1e9  # the random table's position
    p.next(f)
    p._state[4] = 1e300
    p.next(f)
    p.next(f, False)  # held once: integrated (the tree is rebuilt)
    p._root[7] = 10**9
    with pytest.raises(ValueError, match="not a bin"):
        p.next(f, False)  # held twice: the steady path reads the tree
    sh = SpectralShaper(N_FFT, SR)
    sh._analyse(f)
    sh._wsi[N : 2 * N] = 10**6  # region ids
    with pytest.raises(ValueError, match="analysis"):
        _native.shape_shift(3.0, sh._frame, sh._ws, sh._wsi, sh._info, sh._params, sh._ext)
    sh._info[:] = [3, 10**9, 5, 5, 0, 0, 0, 0, 0, 0, 0]  # counts past the frame
    with pytest.raises(ValueError):
        _native.shape_shift(3.0, sh._frame, sh._ws, sh._wsi, sh._info, sh._params, sh._ext)
    sh._info[:] = [2, 0, 0, 0, 0, 0, 0, -50, 10**9, 1, 0]  # an axis-scaled frame, noise span out of range
    _native.shape_shift(-3.0, sh._frame, sh._ws, sh._wsi, sh._info, sh._params, sh._ext)


def test_fuzzed_state_never_crashes() -> None:
    """Every writable argument of every function filled with garbage (NaN, inf, huge, negative),
    in a subprocess so that a crash is a failure and not the end of the test run: each call
    returns or raises ValueError/TypeError."""
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        sys.path.insert(0, "tests")
        import test_native as t
        rng = np.random.default_rng(0)
        pool = np.array([np.nan, np.inf, -np.inf, -1.0, 0.0, 1.0, 1e300, -1e300, 2049.0, 4.0, 1e9, 0.5])
        calls = t._calls()  # the garbage accumulates in the objects' buffers
        for it in range(300):
            if it % 50 == 0:
                calls = t._calls()
            for name, fn, args in calls:
                args = list(args)
                for i, a in enumerate(args):
                    if isinstance(a, np.ndarray) and a.flags.writeable and rng.random() < 0.5:
                        if a.dtype.kind == "f":
                            a[...] = rng.choice(pool, a.shape) if rng.random() < 0.5 else a * rng.choice(pool)
                        elif a.dtype.kind in "iu":
                            a[...] = rng.integers(-10**6, 10**6, a.shape) if a.dtype.kind == "i" else rng.integers(0, 255, a.shape)
                        elif a.dtype.kind == "c":
                            a[...] = rng.choice(pool, a.shape)
                if rng.random() < 0.3 and isinstance(args[-1], float):
                    args[-1] = float(rng.choice(pool))
                try:
                    with np.errstate(all="ignore"):
                        fn(*args)
                except (ValueError, TypeError):
                    pass
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.returncode, r.stderr[-2000:])


def test_missing_extension_says_how_to_build_it() -> None:
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "aedaemon.dsp._native":
                    raise ImportError("blocked")
        sys.meta_path.insert(0, Block())
        try:
            import aedaemon.dsp
        except ImportError as e:
            print(e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert ".ci/setup" in out and "make run" in out


def test_the_runtime_imports_neither_torch_nor_numba() -> None:
    code = "import sys, aedaemon.engine, aedaemon.dsp.phase; print(sorted(m for m in ('torch', 'numba', 'llvmlite') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_the_extension_is_the_package_s() -> None:
    assert Path(_native.__file__).resolve().parent == (ROOT / "aedaemon" / "dsp").resolve()


# ---- the engine against the NumPy engine ----------------------------------------------------

sys.path.insert(0, str(ROOT / "benchmarks"))


def _render_changing(cls, bundle, method: str, seconds: float) -> np.ndarray:
    from aedaemon.engine import one_hot

    e = cls(bundle, phase=method, hop=HOP, seed=5)
    rng = np.random.default_rng(9)
    n = bundle.meta.latent_size
    lo, hi = bundle.meta.control_range
    e.update(playing=True)
    out = []
    for k in range(int(seconds * SR / HOP)):
        e.update(
            latent=tuple(rng.uniform(lo, hi, n)),
            chroma=one_hot(int(rng.integers(12))),
            transpose=float(rng.uniform(-12, 12)),
            gain=float(rng.uniform(0.5, 1.0)),
            tilt=float(rng.uniform(-6, 6)),
            freq_shift=int(rng.integers(-20, 21)) if k % 3 == 0 else 0,
            pitch=float(rng.uniform(40, 90)) if k % 2 else None,
        )
        out.append(e.render_hop().copy())
    return np.concatenate(out)


@pytest.mark.parametrize("method", ["rtpghi", "canne", "noise"])
def test_engine_renders_as_the_numpy_engine(method: str) -> None:
    """3 s with latent, chroma, transpose, gain, tilt, note and (every third hop) frequency
    shift new every hop: max |compiled - NumPy| < 1e-4 of full scale (measured 1.2e-7: the
    output trig's float32 ulps, see tests/test_phase_equivalence.py)."""
    from engine_reference import NumpyEngine

    from aedaemon.engine import Engine
    from aedaemon.model import load_bundle

    b = load_bundle(MODEL)
    got = _render_changing(Engine, b, method, 3.0)
    want = _render_changing(NumpyEngine, b, method, 3.0)
    assert np.abs(want).max() > 0.05  # it plays
    diff = float(np.abs(got.astype(np.float64) - want).max())
    assert diff < 1e-4, diff


def test_emphasis_and_high_register_match_their_numpy_spellings() -> None:
    """shaping's compiled harmonic emphasis and high-register stage against the NumPy functions
    (shaping.harmonic_emphasis, shaping.high_register) the reference shaper runs."""
    from aedaemon.dsp import shaping

    rng = np.random.default_rng(5)
    for _ in range(40):
        m = np.abs(rng.normal(size=N)) * (rng.random(N) < 0.4)
        f0b, beta = float(rng.uniform(1.0, 120.0)), float(rng.uniform(-0.2, 1.0))
        want = shaping.harmonic_emphasis(m, f0b, beta)
        got = np.zeros(N)
        _native.emphasis(m, got, f0b, beta)
        assert np.abs(got - want).max() <= 1e-12 * max(want.max(), 1e-300)
        f = float(rng.uniform(2.0, 400.0))
        a, b = want.copy(), want.copy()
        shaping.high_register(a, f, SR / N_FFT, np.zeros(N))
        _native.high_register(b, f, SR / N_FFT, shaping.HIGH_FROM_HZ, shaping.HIGH_CORNER_HZ,
                              shaping.HIGH_CORNER_HARMONICS, shaping.HIGH_SLOPE_DB)
        assert np.abs(a - b).max() <= 1e-12 * max(a.max(), 1e-300)
    with pytest.raises(TypeError):
        _native.emphasis(np.zeros(N, np.float32), np.zeros(N), 10.0, 0.5)
    with pytest.raises(ValueError):
        _native.emphasis(np.zeros(N), np.zeros(N - 1), 10.0, 0.5)
