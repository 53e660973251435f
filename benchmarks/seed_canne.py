"""A faithful re-implementation of the seed CANNe real-time loop, as the benchmark baseline.

What the research code did per block: build the decoder feed from Python lists and decode
every hop whether or not anything changed, shape the frame, integrate phase in time only
(each bin on its own), complex exp in float64, inverse FFT, window, overlap-add by slicing,
then normalise each output block to its own peak (the pumping our renderer removes).
"""

from __future__ import annotations

import numpy as np

from aedaemon.dsp.stft import HANN_GAMMA, hann


class SeedCanneLoop:
    def __init__(self, bundle, hop: int = 1024) -> None:
        meta = bundle.meta
        self.session = bundle._session
        self.conditioned = meta.conditioned
        self.n_fft = meta.n_fft
        self.hop = hop
        self.window = hann(self.n_fft)
        self.buffer = np.zeros(self.n_fft)
        self.phase = np.zeros(self.n_fft // 2 + 1)
        gamma = HANN_GAMMA * self.n_fft**2
        self.tgrad_mul = hop * self.n_fft / gamma / 2.0
        self.tgrad_plus = 2 * np.pi * hop * np.arange(self.n_fft // 2 + 1) / self.n_fft

    def render_hop(self, latent: list[float], chroma: list[float], freq_shift: int = 0) -> np.ndarray:
        feeds = {"latent": np.array([latent], dtype=np.float32)}
        if self.conditioned:
            feeds["chroma"] = np.array([chroma], dtype=np.float32)
        mag = self.session.run(None, feeds)[0][0].astype(np.float64)
        mag = np.roll(mag, freq_shift)
        slog = np.log(mag + 1e-10)
        tgrad = np.zeros_like(slog)
        tgrad[1:-1] = (slog[2:] - slog[:-2]) * self.tgrad_mul
        self.phase = self.phase + tgrad + self.tgrad_plus
        frame = np.fft.irfft(mag * np.exp(1j * self.phase)) * self.window
        self.buffer = np.concatenate([self.buffer[self.hop :], np.zeros(self.hop)]) + frame
        out = self.buffer[: self.hop].copy()
        peak = np.max(np.abs(out))
        return out / peak if peak > 0 else out
