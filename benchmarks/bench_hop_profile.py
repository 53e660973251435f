"""Where a changed hop's time goes, and the phase step against its frozen reference.

  phase   the changed-frame RTPGHI step (`next(frame, True)`) on the shaped frames the engine
          plays in the "changing" scenario of bench_render (every parameter new every hop),
          for aedaemon.dsp.phase.RTPGHI and the frozen benchmarks/phase_reference.RefRTPGHI
          (same output: tests/test_phase_equivalence.py), interleaved: each round runs the
          whole sequence on fresh instances of both in rotating order; per frame the minimum
          over rounds (thread CPU time), then the mean over frames. Also the other methods.
  hop     Engine.render_hop in that scenario (hop 1024, latent × chroma × transpose × gain
          new every hop), split into stages by wrapping the engine's components: decode
          (the ONNX decoder), pitch (PitchEstimator.estimate), shaping (SpectralShaper.apply),
          loudness (KWeighting.gain), phase (phase.next), ifft/OLA (OverlapAdd.push) and the
          rest (engine bookkeeping: glides, targets, cache, envelope, limiter, meters). Per
          hop the minimum over rounds, then the mean over hops; the same for the NumPy engine
          (benchmarks/engine_reference.NumpyEngine: phase, shaping and pitch tracking as their
          frozen NumPy implementations, the bookkeeping before its tuning; same output within
          1e-7, tests/test_native.py), interleaved, for the per-stage and whole-hop ratios.

Usage: python benchmarks/bench_hop_profile.py [--model DIR] [--hops N] [--rounds N] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import phase_reference as ref  # noqa: E402
from engine_reference import NumpyEngine  # noqa: E402

from aedaemon.dsp import phase as live  # noqa: E402
from aedaemon.engine import Engine, one_hot  # noqa: E402
from aedaemon.model import load_bundle  # noqa: E402

SR = 44100
HOP = 1024
clock = time.thread_time


def changes_for(bundle, hops: int, seed: int = 0) -> list[dict]:
    """bench_render.time_engine's changing scenario."""
    rng = np.random.default_rng(seed)
    n = bundle.meta.latent_size
    lo, hi = bundle.meta.control_range
    return [
        dict(
            latent=tuple(rng.uniform(lo, hi, n)),
            chroma=one_hot(int(rng.integers(12))),
            transpose=float(rng.uniform(-5, 5)),
            gain=float(rng.uniform(0.5, 1.0)),
        )
        for _ in range(hops)
    ]


def new_engine(bundle, phase_module=live) -> Engine:
    """The engine (phase_module live) or the NumPy engine (benchmarks/engine_reference.py)."""
    e = (Engine if phase_module is live else NumpyEngine)(bundle, phase="rtpghi", hop=HOP)
    e.update(playing=True)
    e.render(8 * HOP)
    return e


def played_frames(bundle, changes: list[dict]) -> list[np.ndarray]:
    e = new_engine(bundle)
    frames = []
    for c in changes:
        e.update(**c)
        e.render_hop()
        frames.append(e._mag.copy())
    return frames


def time_phase(frames: list[np.ndarray], rounds: int, method: str = "rtpghi") -> dict:
    n_fft = 2 * (len(frames[0]) - 1)
    impls = {"new": live.make_phase, "reference": ref.make_phase}
    per = {k: np.full(len(frames), np.inf) for k in impls}
    names = list(impls)
    for r in range(rounds):
        order = names[r % 2 :] + names[: r % 2]
        for name in order:
            p = impls[name](method, n_fft, HOP, 0)
            t = per[name]
            for i, f in enumerate(frames):
                t0 = clock()
                p.next(f, True)
                dt = clock() - t0
                if dt < t[i]:
                    t[i] = dt
    out = {k: float(v.mean() * 1e6) for k, v in per.items()}
    out["ratio"] = out["reference"] / out["new"]
    return out


class _Timer:
    """Wraps a bound method; adds the time of each call to stage[name] for the current hop."""

    def __init__(self, acc: dict, name: str, fn) -> None:
        self.acc, self.name, self.fn = acc, name, fn

    def __call__(self, *a, **k):
        t0 = clock()
        try:
            return self.fn(*a, **k)
        finally:
            self.acc[self.name] += clock() - t0


STAGES = ("decode", "pitch", "shaping", "loudness", "phase", "ifft/OLA")


def instrument(e: Engine, acc: dict) -> None:
    bundle = e.bundle
    # decode: the bundle is shared, so wrap it on a per-engine proxy
    class _B:
        def __getattr__(self, k):
            return getattr(bundle, k)

    proxy = _B()
    proxy.decode = _Timer(acc, "decode", bundle.decode)
    e.bundle = proxy
    e._pitch_estimator.estimate = _Timer(acc, "pitch", e._pitch_estimator.estimate)
    e._shaper.apply = _Timer(acc, "shaping", e._shaper.apply)
    e._loudness.gain = _Timer(acc, "loudness", e._loudness.gain)
    e._phase.next = _Timer(acc, "phase", e._phase.next)
    e._ola.push = _Timer(acc, "ifft/OLA", e._ola.push)


def profile_hop(bundle, changes: list[dict], rounds: int) -> dict:
    hops = len(changes)
    res = {}
    mins = {m: {s: np.full(hops, np.inf) for s in STAGES + ("total", "rest")} for m in ("new", "reference")}
    for r in range(rounds):
        order = ["new", "reference"] if r % 2 == 0 else ["reference", "new"]
        for name in order:
            e = new_engine(bundle, live if name == "new" else ref)
            acc = dict.fromkeys(STAGES, 0.0)
            instrument(e, acc)
            mm = mins[name]
            for k, c in enumerate(changes):
                for s in STAGES:
                    acc[s] = 0.0
                t0 = clock()
                e.update(**c)
                e.render_hop()
                total = clock() - t0
                mm["total"][k] = min(mm["total"][k], total)
                for s in STAGES:
                    mm[s][k] = min(mm[s][k], acc[s])
                mm["rest"][k] = min(mm["rest"][k], total - sum(acc.values()))
    for name, mm in mins.items():
        res[name] = {s: float(v.mean() * 1e6) for s, v in mm.items()}
    # the whole hop without the wrappers, interleaved (the wrappers add ~1 µs a stage)
    plain = {"new": np.full(hops, np.inf), "reference": np.full(hops, np.inf)}
    for r in range(rounds):
        for name in (["new", "reference"] if r % 2 == 0 else ["reference", "new"]):
            e = new_engine(bundle, live if name == "new" else ref)
            t = plain[name]
            for k, c in enumerate(changes):
                t0 = clock()
                e.update(**c)
                e.render_hop()
                t[k] = min(t[k], clock() - t0)
    for name, v in plain.items():
        res[name]["plain total"] = float(v.mean() * 1e6)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("models/default"))
    ap.add_argument("--hops", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="60 hops, 3 rounds (smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.hops, args.rounds = 60, 3
    if not (args.model / "model.json").exists():
        print(f"no model at {args.model}: this benchmark profiles the shipped decoder")
        return 0
    bundle = load_bundle(args.model)
    changes = changes_for(bundle, args.hops)
    frames = played_frames(bundle, changes)
    live_frac = float(np.mean([np.count_nonzero(f) / f.size for f in frames]))
    print(f"model {bundle.meta.name} ({bundle.precision}), hop {HOP}, {args.hops} changed hops, {args.rounds} rounds, "
          f"min over rounds per frame (thread CPU time); {100 * live_frac:.1f} % of the played bins nonzero\n")
    results: dict = {"phase": {}, "hop": {}}
    print(f"{'phase step (changed)':<24}{'new µs':>10}{'reference µs':>14}{'ratio':>8}")
    for method in ("rtpghi", "canne", "noise"):
        r = time_phase(frames, args.rounds, method)
        results["phase"][method] = r
        print(f"{method:<24}{r['new']:>10.1f}{r['reference']:>14.1f}{r['ratio']:>7.2f}×")
    prof = profile_hop(bundle, changes, args.rounds)
    results["hop"] = prof
    budget = HOP / SR * 1e6
    print(f"\nchanging hop, µs (mean over hops of the per-hop minimum; budget {budget:.0f} µs = real time)")
    print(f"{'stage':<24}{'new':>10}{'NumPy':>12}{'ratio':>8}")
    for s in STAGES + ("rest", "total", "plain total"):
        label = "engine bookkeeping" if s == "rest" else s
        a, b = prof["new"][s], prof["reference"][s]
        print(f"{label:<24}{a:>10.1f}{b:>12.1f}{b / a:>7.2f}×")
    n, o = prof["new"]["plain total"], prof["reference"]["plain total"]
    print(f"\nwhole changing hop: {o:.0f} → {n:.0f} µs ({o / n:.2f}×); {budget / n:.0f}× real time (was {budget / o:.0f}×)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
