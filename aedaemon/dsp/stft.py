"""Windows, analysis STFT (for measurements) and overlap-add synthesis with a dual window."""

from __future__ import annotations

import numpy as np
import scipy.fft

# Gaussian approximation of a Hann window of length L has time-frequency ratio
# gamma = 0.25645 * L^2 (Prusa & Holighaus 2017, table 1).
HANN_GAMMA = 0.25645


def hann(n: int) -> np.ndarray:
    """Periodic Hann window (the STFT-friendly one: sums to constant under overlap)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float64)


def dual_window(window: np.ndarray, hop: int) -> np.ndarray:
    """Synthesis window giving perfect reconstruction with `window` at this hop.

    w_s[t] = w[t] / sum_k w^2[t + k*hop] (the canonical dual): dividing pointwise makes the
    overlap-add exact for any hop that divides the frame, not just the 'nice' ones.
    """
    n = len(window)
    if n % hop:
        raise ValueError(f"hop {hop} must divide the frame length {n}")
    sq = (window**2).reshape(-1, hop).sum(axis=0)
    return window / np.tile(sq, n // hop)


def stft_magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| with a periodic Hann window, frames starting at 0, hop apart (frames x bins)."""
    w = hann(n_fft)
    n_frames = 1 + (len(x) - n_fft) // hop
    if n_frames < 1:
        return np.zeros((0, n_fft // 2 + 1))
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    return np.abs(scipy.fft.rfft(x[idx] * w, axis=1))


class OverlapAdd:
    """Turns one complex half-spectrum per hop into `hop` output samples.

    Buffers are allocated once; `push` returns a view into an internal buffer that is valid
    until the next call.
    """

    def __init__(self, n_fft: int, hop: int) -> None:
        self.n_fft = n_fft
        self.hop = hop
        self.window = hann(n_fft)
        self.synthesis = dual_window(self.window, hop).astype(np.float32)
        self._acc = np.zeros(n_fft, dtype=np.float32)
        self._frame = np.zeros(n_fft, dtype=np.float32)
        self._out = np.zeros(hop, dtype=np.float32)

    def reset(self) -> None:
        self._acc[:] = 0.0

    def push(self, spectrum: np.ndarray) -> np.ndarray:
        frame = scipy.fft.irfft(spectrum, n=self.n_fft, overwrite_x=False)
        np.multiply(frame, self.synthesis, out=self._frame)
        self._acc += self._frame
        self._out[:] = self._acc[: self.hop]
        # shift the accumulator left by one hop (memmove), clear the freed tail
        self._acc[: -self.hop] = self._acc[self.hop :]
        self._acc[-self.hop :] = 0.0
        return self._out

    def push_silence(self) -> np.ndarray:
        """Advance one hop with no new frame (the tail of earlier frames still plays)."""
        self._out[:] = self._acc[: self.hop]
        self._acc[: -self.hop] = self._acc[self.hop :]
        self._acc[-self.hop :] = 0.0
        return self._out
