"""Phase-quality measurement: spectral convergence of a resynthesis against its target."""

from __future__ import annotations

import numpy as np

from .phase import make_phase
from .stft import OverlapAdd, stft_magnitude


def resynthesize(frames: np.ndarray, n_fft: int, hop: int, method: str, seed: int = 0) -> np.ndarray:
    """Audio from magnitude frames (frames x bins, STFT scale) with the given phase method."""
    phase = make_phase(method, n_fft, hop, seed)
    ola = OverlapAdd(n_fft, hop)
    out = np.zeros(len(frames) * hop, dtype=np.float32)
    prev = None
    for i, mag in enumerate(frames):
        changed = prev is None or not np.array_equal(mag, prev)
        out[i * hop : (i + 1) * hop] = ola.push(phase.next(mag, changed))
        prev = mag
    return out


def spectral_convergence_db(target: np.ndarray, audio: np.ndarray, n_fft: int, hop: int, skip: int = 8) -> float:
    """20 log10(|| |STFT(audio)| - target ||_F / ||target||_F), over aligned frames.

    OverlapAdd places frame i at output samples [i*hop, i*hop + n_fft), so it lines up with
    analysis frame i of the output. The first `skip` frames (the warm-up, where the first
    frame has no history to integrate from) are left out.
    """
    got = stft_magnitude(audio, n_fft, hop)
    n = min(len(got), len(target))
    g = got[skip:n]
    t = target[skip:n]
    return float(20.0 * np.log10(np.linalg.norm(g - t) / np.linalg.norm(t)))
