"""Figures for the README: phase methods compared, and a score rendered as a spectrogram.

Usage: python benchmarks/figures.py [--model models/default] [--out docs/img]
Needs matplotlib (in the `dev` and `train` extras).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from aedaemon.dsp.phase import PHASE_METHODS
from aedaemon.dsp.quality import resynthesize, spectral_convergence_db
from aedaemon.dsp.stft import stft_magnitude
from aedaemon.engine import Engine
from aedaemon.model import load_bundle
from aedaemon.render import parse_score, schedule_score
from aedaemon.synthetic import make_synthetic_bundle, sawtooth

SR = 44100


def spectrogram_db(x: np.ndarray, n_fft: int = 2048, hop: int = 256) -> np.ndarray:
    S = stft_magnitude(x, n_fft, hop)
    return 20 * np.log10(S.T / max(S.max(), 1e-12) + 1e-6)


def show(ax, x: np.ndarray, title: str, fmax: float = 5000.0) -> None:
    S = spectrogram_db(x)
    n_bins = int(fmax / (SR / 2048))
    ax.imshow(S[:n_bins], origin="lower", aspect="auto", vmin=-80, vmax=0, cmap="magma",
              extent=[0, len(x) / SR, 0, fmax])
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("Hz")


def phase_methods_figure(out: Path) -> None:
    import matplotlib.pyplot as plt

    x = sawtooth(220.0, 2.0, SR) * (1 + 0.3 * np.sin(2 * np.pi * 2 * np.arange(2 * SR) / SR)).astype(np.float32)
    S = stft_magnitude(x, 4096, 1024)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2), sharey=True)
    show(axes[0], x, "original (sawtooth 220 Hz, tremolo)")
    for ax, m in zip(axes[1:], PHASE_METHODS):
        y = resynthesize(S, 4096, 1024, m)
        sc = spectral_convergence_db(S, y, 4096, 1024)
        show(ax, y, f"{m}: spectral convergence {sc:.1f} dB")
    for ax in axes:
        ax.set_xlabel("s")
    fig.tight_layout()
    fig.savefig(out / "phase_methods.png", dpi=90)
    plt.close(fig)


SCORE = [
    {"time": 0.0, "address": "/chroma", "args": ["C"]},
    {"time": 1.0, "address": "/chroma", "args": ["E"]},
    {"time": 2.0, "address": "/chroma", "args": ["G"]},
    {"time": 3.0, "address": "/glide", "args": [1.0]},
    {"time": 3.0, "address": "/transpose", "args": [12]},
    {"time": 4.5, "address": "/freq_shift", "args": [20]},
    {"time": 5.5, "address": "/stop", "args": []},
]


def score_figure(bundle, out: Path) -> None:
    import matplotlib.pyplot as plt

    e = Engine(bundle)
    e.update(playing=True)
    schedule_score(e, parse_score(SCORE))
    x = e.render(int(6.2 * SR))
    fig, ax = plt.subplots(figsize=(10, 3.4))
    show(ax, x, f"score on model '{bundle.meta.name}': C, E, G, glide up an octave, freq shift +20 bins, stop")
    ax.set_xlabel("s")
    for ev in SCORE:
        ax.axvline(ev["time"], color="w", lw=0.6, alpha=0.6)
    fig.tight_layout()
    fig.savefig(out / "score.png", dpi=90)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=Path("models/default"))
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    phase_methods_figure(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model if (args.model / "model.json").exists() else make_synthetic_bundle(Path(tmp) / "synthetic")
        score_figure(load_bundle(model), args.out)
    print(f"wrote {args.out}/phase_methods.png and {args.out}/score.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
