"""The engine with every compiled DSP stage swapped for its frozen NumPy implementation:
phase (phase_reference, with the engine bookkeeping as it was then), shaping
(shaping_reference.ReferenceShaper) and pitch tracking (pitch_reference.RefPitchEstimator).
The "before" of benchmarks/bench_hop_profile.py and bench_render.py, and the oracle of
tests/test_native.py's engine test.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import phase_reference  # noqa: E402
from pitch_reference import RefPitchEstimator  # noqa: E402
from shaping_reference import ReferenceShaper  # noqa: E402


class NumpyEngine(phase_reference.RefEngine):
    def _build_dsp(self) -> None:
        super()._build_dsp()
        self._shaper = ReferenceShaper(self.n_fft, self.sample_rate)
        self._pitch_estimator = RefPitchEstimator(self.n_fft, self.sample_rate)
