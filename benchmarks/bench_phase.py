"""Phase benchmarks (issue 9 item 3): RTPGHI on the frames the model emits, against the offline bound.

  steady   the 30 decoded frames (10 latents: the default and 9 scrambled-Halton points, as
           bench_sound.timbres; × chroma C/E/A), each held as a steady tone and resynthesised by
           RTPGHI; spectral convergence (SC) against the held magnitude, from an STFT computed
           here with numpy (checked against aedaemon.dsp.stft once). Offline bound per frame:
           fast Griffin-Lim (Perraudin et al. 2013, alpha 0.99, 300 iterations, random start).
           goal: mean ≤ -17 dB, within 4 dB of FGLA on every frame
  moving   a new latent every frame: a smooth random walk (step 0.03 per unit per frame) and
           independent jumps, chroma C/E/A; SC over the whole sequence. goal: mean ≤ -16 dB
  cost     the changed-frame RTPGHI step (µs per call, frames alternating so every call is a
           change) and a steady-frame call, interleaved in this process

Every figure is printed for the current RTPGHI next to the baseline (the previous defaults:
log floor -100 dB, centred gradient, no broad-run rule, no abrupt-change handling), both
computed here.

Usage: python benchmarks/bench_phase.py [--model DIR] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aedaemon.dsp.phase import RTPGHI  # noqa: E402
from aedaemon.dsp.stft import OverlapAdd, hann, stft_magnitude  # noqa: E402
from aedaemon.model import load_bundle  # noqa: E402

BASELINE = dict(log_floor_db=-100.0, one_sided=False, max_reach=1 << 30, jump=2.0, compensate=False, noise_prom_db=0.0, peak_freq=False,
                pattern_all=False)
HELD = 24  # frames per steady tone; SC over frames 8 … HELD-4 (warm-up and edges left out)


def halton_latents(bundle, count: int) -> list[list[float]]:
    """The default latent and count-1 scrambled Halton points (seed 9): bench_sound.timbres."""
    from scipy.stats import qmc

    n = bundle.meta.latent_size
    lo, hi = bundle.meta.latent_range
    pts = qmc.Halton(d=n, scramble=True, seed=9).random(max(0, count - 1))
    return [[float(v) for v in bundle.meta.default_latent]] + [[float(lo + (hi - lo) * v) for v in p] for p in pts]


def one_hot(c: int) -> np.ndarray:
    v = np.zeros(12, np.float32)
    v[c] = 1.0
    return v


def decoded_frames(bundle, latents: int = 10, classes=(0, 4, 9)) -> list[np.ndarray]:
    return [
        bundle.decode(np.asarray(lat, np.float32), one_hot(c)).astype(np.float64).copy()
        for lat in halton_latents(bundle, latents)
        for c in classes
    ]


class Analysis:
    """|STFT|, periodic Hann, frames at 0, hop apart: written here, not taken from the renderer."""

    def __init__(self, n_fft: int, hop: int) -> None:
        self.n_fft, self.hop = n_fft, hop
        self.w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)

    def mag(self, x: np.ndarray) -> np.ndarray:
        n = 1 + (len(x) - self.n_fft) // self.hop
        idx = np.arange(self.n_fft)[None, :] + self.hop * np.arange(n)[:, None]
        return np.abs(np.fft.rfft(x[idx] * self.w, axis=1))

    def sc_db(self, target: np.ndarray, audio: np.ndarray, lo: int, hi: int) -> float:
        got = self.mag(audio)
        hi = min(hi, len(got), len(target))
        return float(20 * np.log10(np.linalg.norm(got[lo:hi] - target[lo:hi]) / np.linalg.norm(target[lo:hi])))


def render(frames: np.ndarray, n_fft: int, hop: int, **kw) -> np.ndarray:
    """What the engine does per hop: phase.next(mag, changed) → overlap-add."""
    ph = RTPGHI(n_fft, hop, 0, **kw)
    ola = OverlapAdd(n_fft, hop)
    out = np.zeros(len(frames) * hop)
    prev = None
    for i, m in enumerate(frames):
        out[i * hop : (i + 1) * hop] = ola.push(ph.next(m, prev is None or not np.array_equal(m, prev)))
        prev = m
    return out


def fgla(target: np.ndarray, n_fft: int, hop: int, iters: int = 300, alpha: float = 0.99, seed: int = 0) -> np.ndarray:
    """Fast Griffin-Lim: c_n = P1(P2(c_{n-1})), then c_n += alpha (c_n - c_{n-1}); least-squares iSTFT."""
    T, r = len(target), n_fft // hop
    w = hann(n_fft)
    norm = np.zeros((T + r - 1, hop))
    for j, part in enumerate((w * w).reshape(r, hop)):
        norm[j : j + T] += part
    norm = np.maximum(norm, 1e-8)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(T)[:, None]

    def istft(X):
        fr = (np.fft.irfft(X, n=n_fft, axis=1) * w).reshape(T, r, hop)
        xb = np.zeros((T + r - 1, hop))
        for j in range(r):
            xb[j : j + T] += fr[:, j]
        return (xb / norm).ravel()

    c = target * np.exp(1j * np.random.default_rng(seed).uniform(-np.pi, np.pi, target.shape))
    prev = c
    for _ in range(iters):
        y = np.fft.rfft(istft(target * np.exp(1j * np.angle(c)))[idx] * w, axis=1)
        c = y + alpha * (y - prev)
        prev = y
    return istft(target * np.exp(1j * np.angle(c)))


def steady(frames, n_fft, hop, an: Analysis, iters: int) -> dict:
    rows = []
    for f in frames:
        tgt = np.tile(f, (HELD, 1))
        rows.append({
            "rtpghi": an.sc_db(tgt, render(tgt, n_fft, hop), 8, HELD - 4),
            "baseline": an.sc_db(tgt, render(tgt, n_fft, hop, **BASELINE), 8, HELD - 4),
            "fgla": an.sc_db(tgt, fgla(tgt, n_fft, hop, iters), 8, HELD - 4),
        })  # fmt: skip
    return {"frames": rows}


def moving(bundle, n_fft, hop, an: Analysis, n_frames: int, walk: bool, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = bundle.meta.latent_size
    lo, hi = bundle.meta.latent_range
    out = {}
    for c in (0, 4, 9):
        if walk:
            lat = np.clip(np.asarray(bundle.meta.default_latent) + np.cumsum(rng.normal(0, 0.03, (n_frames, n)), 0), lo, hi)
        else:
            lat = rng.uniform(lo, hi, (n_frames, n))
        tgt = np.stack([bundle.decode(v.astype(np.float32), one_hot(c)).astype(np.float64) for v in lat])
        out[c] = {"rtpghi": an.sc_db(tgt, render(tgt, n_fft, hop), 8, n_frames - 4),
                  "baseline": an.sc_db(tgt, render(tgt, n_fft, hop, **BASELINE), 8, n_frames - 4)}
    return out


def cost(frames, n_fft, hop, calls: int = 300) -> dict:
    """µs per RTPGHI call: changed frames (alternating decoded frames) and steady, new vs baseline
    interleaved (rounds alternate, best round kept)."""
    seq = [frames[k % len(frames)] for k in range(calls)]
    best = {k: np.inf for k in ("changed", "changed_baseline", "steady", "steady_baseline")}
    for _ in range(5):
        for name, kw in (("", {}), ("_baseline", BASELINE)):
            ph = RTPGHI(n_fft, hop, 0, **kw)
            t0 = time.perf_counter()
            for m in seq:
                ph.next(m, True)
            best["changed" + name] = min(best["changed" + name], (time.perf_counter() - t0) / calls * 1e6)
            for _ in range(3):
                ph.next(seq[0], False)
            t0 = time.perf_counter()
            for _ in range(calls):
                ph.next(seq[0], False)
            best["steady" + name] = min(best["steady" + name], (time.perf_counter() - t0) / calls * 1e6)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("models/default"))
    ap.add_argument("--quick", action="store_true", help="4 latents, FGLA 100 iterations")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    bundle = load_bundle(args.model)
    n_fft, hop = bundle.meta.n_fft, bundle.meta.hop
    an = Analysis(n_fft, hop)
    probe = np.random.default_rng(1).normal(size=8 * n_fft)
    assert np.allclose(an.mag(probe), stft_magnitude(probe, n_fft, hop)), "analysis STFT disagrees with dsp.stft"
    started = time.perf_counter()
    frames = decoded_frames(bundle, 4 if args.quick else 10)
    res = steady(frames, n_fft, hop, an, 100 if args.quick else 300)
    rows = res["frames"]
    r = np.array([[x["rtpghi"], x["baseline"], x["fgla"]] for x in rows])
    print(f"steady tones: {len(rows)} decoded frames ({len(rows) // 3} latents × C/E/A), SC dB (lower is better)")
    print(f"{'frame':>6}{'rtpghi':>9}{'baseline':>10}{'FGLA':>8}{'gap':>7}{'gap before':>12}")
    for k, x in enumerate(r):
        print(f"{k:>6}{x[0]:>9.1f}{x[1]:>10.1f}{x[2]:>8.1f}{x[0] - x[2]:>7.1f}{x[1] - x[2]:>12.1f}")
    gap, gap0 = r[:, 0] - r[:, 2], r[:, 1] - r[:, 2]
    summ = {"rtpghi_mean": r[:, 0].mean(), "rtpghi_worst": r[:, 0].max(), "baseline_mean": r[:, 1].mean(),
            "baseline_worst": r[:, 1].max(), "fgla_mean": r[:, 2].mean(), "gap_mean": gap.mean(), "gap_max": gap.max(),
            "baseline_gap_mean": gap0.mean(), "baseline_gap_max": gap0.max(), "within_4": int(np.sum(gap <= 4.0))}
    print(f"mean {summ['rtpghi_mean']:.1f} (baseline {summ['baseline_mean']:.1f}), worst {summ['rtpghi_worst']:.1f} "
          f"(baseline {summ['baseline_worst']:.1f}); FGLA mean {summ['fgla_mean']:.1f}; gap to FGLA mean "
          f"{summ['gap_mean']:.1f} max {summ['gap_max']:.1f} (baseline {summ['baseline_gap_mean']:.1f} / "
          f"{summ['baseline_gap_max']:.1f}); within 4 dB: {summ['within_4']}/{len(rows)}")
    print("goal: mean ≤ -17 dB, every frame within 4 dB of FGLA")
    res["summary"] = summ
    nf = 24 if args.quick else 48
    for label, walk in (("walk", True), ("jumps", False)):
        mv = moving(bundle, n_fft, hop, an, nf, walk)
        res[label] = mv
        m_new = np.mean([v["rtpghi"] for v in mv.values()])
        m_old = np.mean([v["baseline"] for v in mv.values()])
        print(f"new latent every frame ({label}, {nf} frames × C/E/A): SC mean {m_new:.1f} dB (baseline {m_old:.1f})")
    print("goal: mean ≤ -16 dB")
    c = cost(frames, n_fft, hop)
    res["cost_us"] = c
    print(f"RTPGHI µs per call: changed frame {c['changed']:.0f} (baseline {c['changed_baseline']:.0f}, "
          f"{c['changed'] / c['changed_baseline']:.2f}×), steady {c['steady']:.0f} (baseline {c['steady_baseline']:.0f})")
    res["wall_seconds"] = time.perf_counter() - started
    print(f"({res['wall_seconds']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
