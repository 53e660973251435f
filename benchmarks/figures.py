"""Figures for the README: phase methods compared, a score rendered as a spectrogram, and the
nanoKONTROL2 mapping drawn from its mapping file.

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


def _bind_label(b, strip: int) -> str:
    """What a binding does, in a few words, from the mapping file itself."""
    if b.mode in ("bank_next", "bank_prev"):
        return "bank +1" if b.mode == "bank_next" else "bank -1"
    addr = (b.address or b.on_address or "").replace("{unit}", "u").replace("{n}", str(strip + 1))
    args = " ".join(str(a).replace("{n}", str(strip + 1)).replace("{default}", "default") for a in (b.args or []))
    if b.mode == "step":
        return f"{addr} {b.step:+g}"
    if b.mode == "toggle":
        return f"toggle {addr}" if addr != "/record/start" else "toggle record"
    if b.mode == "absolute":
        lo, hi = b.range if isinstance(b.range, list) else (None, None)
        return f"{addr} {lo:g}..{hi:g}" if lo is not None else f"{addr} ({b.range})"
    return f"{addr} {args}".strip()


def mapping_figure(out: Path, name: str = "nanokontrol2") -> None:
    """The nanoKONTROL2 drawn with what each control does in the shipped mapping."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, FancyBboxPatch, Rectangle

    from aedaemon.midi.mapping import MAPPINGS_DIR, parse_mapping

    m = parse_mapping(MAPPINGS_DIR / f"{name}.toml")
    by_cc: dict[int, list[str]] = {}
    for b in m.bind:
        if b.cc is None:
            continue
        for k in range(b.strips):
            by_cc.setdefault(b.cc + k, []).append(_bind_label(b, k))

    def label(cc: int) -> str:
        return "\n".join(by_cc.get(cc, ["-"]))

    fig, ax = plt.subplots(figsize=(14, 5.2))
    ax.set_xlim(0, 140)
    ax.set_ylim(0, 52)
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((1, 1), 138, 50, boxstyle="round,pad=0.4", fc="#1d1d1f", ec="#555"))
    grey, text = "#3a3a3c", "#f2f2f2"
    # transport section
    tx = [(4, 40, 58, "track ◀"), (12, 40, 59, "track ▶"), (24, 40, 46, "cycle"), (4, 30, 60, "set"),
          (12, 30, 61, "marker ◀"), (20, 30, 62, "marker ▶"), (4, 14, 43, "◀◀"), (12, 14, 44, "▶▶"),
          (20, 14, 42, "■ stop"), (28, 14, 41, "▶ play"), (36, 14, 45, "● rec")]
    for x, y, cc, name_ in tx:
        ax.add_patch(Rectangle((x, y), 6.5, 3.2, fc=grey, ec="#777"))
        ax.text(x + 3.25, y + 1.6, name_, color=text, ha="center", va="center", fontsize=6.5)
        ax.text(x + 3.25, y - 0.6, label(cc), color="#ffd479", ha="center", va="top", fontsize=5.6)
    # eight strips
    for k in range(8):
        x0 = 50 + k * 11
        ax.add_patch(Circle((x0 + 2, 45), 2.2, fc=grey, ec="#999"))
        ax.text(x0 + 2, 41.6, label(16 + k), color="#ffd479", ha="center", va="top", fontsize=5.6)
        for j, (cc, nm) in enumerate(((32 + k, "S"), (48 + k, "M"), (64 + k, "R"))):
            y = 33 - j * 7
            ax.add_patch(Rectangle((x0, y), 3.4, 2.6, fc=grey, ec="#777"))
            ax.text(x0 + 1.7, y + 1.3, nm, color=text, ha="center", va="center", fontsize=6.5)
            ax.text(x0 + 1.7, y - 0.4, label(cc), color="#ffd479", ha="center", va="top", fontsize=5.0)
        ax.add_patch(Rectangle((x0 + 7.4, 4), 1.2, 31, fc="#111", ec="#666"))
        ax.add_patch(Rectangle((x0 + 6.4, 6), 3.2, 3, fc="#bbb"))
        ax.text(x0 + 8.0, 3.2, label(k), color="#ffd479", ha="center", va="top", fontsize=5.6)
        ax.text(x0 + 5.5, 48.8, f"strip {k + 1}", color="#aaa", ha="center", fontsize=6)
    ax.set_title(f"nanoKONTROL2 → aedaemon, mapping '{name}' (u = bank × 8 + strip; LEDs: play, rec, M)", fontsize=10)
    fig.savefig(out / "nanokontrol2.png", dpi=130, bbox_inches="tight", facecolor="white")
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=Path("models/default"))
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    phase_methods_figure(args.out)
    mapping_figure(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model if (args.model / "model.json").exists() else make_synthetic_bundle(Path(tmp) / "synthetic")
        score_figure(load_bundle(model), args.out)
    print(f"wrote {args.out}/phase_methods.png, score.png and nanokontrol2.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
