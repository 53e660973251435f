"""Signal processing: STFT/overlap-add, phase reconstruction, spectral shaping, limiting.

The changed-frame inner loops (phase integration, pitch candidate scoring, peak-locked
shifting) are compiled: aedaemon/dsp/_native.c, built by `pip install` (setup.py). There is no
pure-Python fallback; the frozen NumPy implementations in benchmarks/ are the test oracle.
"""

try:
    from . import _native  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by hand, see docs/performance.md
    raise ImportError(
        "aedaemon.dsp._native (the compiled DSP loops, aedaemon/dsp/_native.c) is not built: "
        "run .ci/setup (or `make run` / `make test`), which installs the package and compiles it; "
        "by hand: pip install -e . (needs a C compiler and Python's headers)"
    ) from exc
