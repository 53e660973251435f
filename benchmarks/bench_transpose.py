"""Transposition benchmark (issue 9, item 2): peak-locked shifting vs the old axis scaling.

Decodes frames of the shipped model (the default latent and a few spread points, chroma C),
shapes each with `SpectralShaper.apply(transpose=t)` for t = -24…+24 and renders it as the
engine does (RTPGHI phase, overlap-add at hop 1024), then listens with
benchmarks/sound_analysis.py: pitch ratio vs transpose 0 (YIN, goal ±10 cents), partials'
energy-weighted RMS distance from the harmonic grid (goal ≤ 20 cents) and level vs transpose 0
(RMS, goal ±2 dB; BS.1770 loudness printed beside it: its K-weighting is not flat, so moving
partials two octaves down or up changes LUFS even at equal energy). The same sweep runs with the
old frequency-axis resampling (`AxisScalingShaper`, kept here for reference), and the time per
`apply` is measured in the same process (interleaved rounds, minima of thread CPU time) for the
shipped shaper, the frozen first peak-locked implementation (benchmarks/shaping_reference.py,
`ReferenceShaper`: the same output up to rounding, tests/test_shaping_equivalence.py) and the
axis scaling, with ratios. `--profile` adds the time of every statement of the shaper's
analysis and shift (instrumented copies, minima over rounds; the instrumentation adds ~0.1 µs
a statement).

Rendering bypasses the Engine's /transpose on purpose: what the engine adds to the transpose
(pitch tracking) is not what is measured here.

Usage: python benchmarks/bench_transpose.py [--model DIR] [--latents N] [--quick] [--json FILE]
                                           [--timing-only] [--profile] [--rounds N]
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sound_analysis as sa  # noqa: E402
from shaping_reference import ReferenceShaper  # noqa: E402

import aedaemon.dsp.shaping as shaping  # noqa: E402

from aedaemon.dsp.phase import make_phase  # noqa: E402
from aedaemon.dsp.shaping import SpectralShaper  # noqa: E402
from aedaemon.dsp.stft import OverlapAdd  # noqa: E402

SR = 44100
N_FFT = 4096
HOP = 1024


class AxisScalingShaper:
    """The transpose before peak-locked shifting: out[k] = in[k / r], linear interpolation."""

    def __init__(self, n_fft: int, sample_rate: int) -> None:
        self.n_bins = n_fft // 2 + 1
        self._bins = np.arange(self.n_bins, dtype=np.float64)
        self._out = np.zeros(self.n_bins)
        self._tmp = np.zeros(self.n_bins)
        self._key = None
        self._lo = np.zeros(self.n_bins, dtype=np.intp)
        self._hi = np.ones(self.n_bins, dtype=np.intp)
        self._src = np.zeros(self.n_bins)
        self._frac = np.zeros(self.n_bins)
        self._valid = np.ones(self.n_bins, dtype=bool)

    def apply(self, mag, transpose=0.0, freq_shift=0, tilt=0.0):
        out = self._out
        if transpose == 0.0:
            out[:] = mag
            return out
        if self._key != transpose:
            src = np.multiply(self._bins, 2.0 ** (-transpose / 12.0), out=self._src)
            self._lo[:] = src
            np.less(self._lo, self.n_bins - 1, out=self._valid)
            np.minimum(self._lo, self.n_bins - 2, out=self._lo)
            np.subtract(src, self._lo, out=self._frac)
            self._frac *= self._valid
            np.add(self._lo, 1, out=self._hi)
            self._key = transpose
        np.take(mag, self._lo, out=out)
        np.take(mag, self._hi, out=self._tmp)
        self._tmp -= out
        self._tmp *= self._frac
        out += self._tmp
        out *= self._valid
        return out


def decoded_frames(model: str, count: int) -> list[tuple[str, np.ndarray]]:
    """Decoded magnitude frames, chroma C: the default latent and count-1 Halton points."""
    from scipy.stats import qmc

    from aedaemon.engine import Engine
    from aedaemon.model import load_bundle

    bundle = load_bundle(model)
    n = bundle.meta.latent_size
    lo, hi = bundle.meta.latent_range
    lat = [("default", [float(v) for v in bundle.meta.default_latent])]
    pts = qmc.Halton(d=n, scramble=True, seed=9).random(max(0, count - 1))
    lat += [(f"halton{k + 1}", [float(lo + (hi - lo) * v) for v in p]) for k, p in enumerate(pts)]
    out = []
    for name, z in lat:
        e = Engine(bundle, seed=0)
        e.update(playing=True, latent=tuple(z), chroma=tuple(float(c == 0) for c in range(12)))
        e.render_hop()
        out.append((name, np.array(e._decode(), dtype=np.float64)))
    return out


def render_frame(mag: np.ndarray, semitones: float, shaper, seconds: float = 1.0, phase: str = "rtpghi") -> np.ndarray:
    """A held frame shaped once and rendered with the engine's phase and overlap-add."""
    shaped = shaper.apply(mag, transpose=semitones).copy()
    ph = make_phase(phase, N_FFT, HOP, 0)
    ola = OverlapAdd(N_FFT, HOP)
    hops = int(np.ceil(seconds * SR / HOP))
    out = np.empty(hops * HOP, dtype=np.float64)
    for i in range(hops):
        out[i * HOP : (i + 1) * HOP] = ola.push(ph.next(shaped, i == 0))
    return out


def measure(x: np.ndarray) -> dict:
    steady = x[int(0.3 * SR) :]
    p = sa.note_pitch(steady, SR)
    h = sa.harmonicity(sa.spectrum_peaks(steady, SR), p.f0)
    return {"f0": p.f0, "harmonicity_cents": h.rms_cents, "rms_db": sa.rms_db(steady),
            "lufs": sa.loudness_lufs(steady, SR, gated=False)}  # fmt: skip


def sweep(mag: np.ndarray, steps, shaper, seconds: float = 1.0) -> list[dict]:
    rows = [dict(transpose=t, **measure(render_frame(mag, t, shaper, seconds))) for t in steps]
    base = next(r for r in rows if r["transpose"] == 0)
    for r in rows:
        r["ratio_error_cents"] = float(sa.cents(r["f0"], base["f0"])) - 100.0 * r["transpose"]
        r["level_db"] = r["rms_db"] - base["rms_db"]
        r["lufs_db"] = r["lufs"] - base["lufs"]
    return rows


def summary(rows: list[dict]) -> dict:
    ratio = np.array([r["ratio_error_cents"] for r in rows])
    harm = np.array([r["harmonicity_cents"] for r in rows])
    level = np.array([r["level_db"] for r in rows])
    lufs = np.array([r["lufs_db"] for r in rows])
    fin = np.isfinite(ratio)
    return {
        "steps": len(rows),
        "ratio_ok": int(np.sum(np.abs(ratio[fin]) <= 10.0)),
        "ratio_worst": float(ratio[fin][np.argmax(np.abs(ratio[fin]))]) if fin.any() else float("nan"),
        "harm_ok": int(np.sum(np.nan_to_num(harm, nan=1e9) <= 20.0)),
        "harm_worst": float(np.nanmax(harm)),
        "level_ok": int(np.sum(np.abs(level) <= 2.0)),
        "level_range": (float(level.min()), float(level.max())),
        "lufs_range": (float(lufs.min()), float(lufs.max())),
    }


TIMING_STEPS = (-24, -12, -7, -1.5, 3.3, 7, 12, 24)


def timing_calls(frames: list[np.ndarray], case: str, steps=TIMING_STEPS) -> list[tuple[np.ndarray, float]]:
    """ "new frame": every call gets another frame and another transpose (the latent moves
    every hop); "glide": the same frame with a new transpose every call (transpose-only)."""
    if case == "new frame":
        return [(f, t) for t in steps for f in frames]
    return [(f, t + 0.01 * k) for f in frames for t in steps for k in range(4)]


def timing(frames: list[np.ndarray], rounds: int = 30, steps=TIMING_STEPS, block: int = 32) -> dict:
    """µs per apply: the shipped shaper ("new"), the frozen first peak-locked implementation
    ("reference") and the axis scaling ("axis"), in this process, in thread CPU time (wall time
    on a loaded machine measures the load). The calls are cut into blocks of `block` calls
    (~5 ms); every round runs each block on every shaper back to back, in a rotating order, and
    each block's time is the minimum over rounds: a burst of load spoils a block of one round,
    not a whole comparison (on the shared machine, whole-sweep minima of two identical shapers
    differed by up to 30 %, block minima by < 1 %). Ratios new / reference and new / axis."""
    res = {}
    for case in ("new frame", "glide"):
        shapers = {"new": SpectralShaper(N_FFT, SR), "reference": ReferenceShaper(N_FFT, SR), "axis": AxisScalingShaper(N_FFT, SR)}
        names = list(shapers)
        calls = timing_calls(frames, case, steps)
        blocks = [calls[i : i + block] for i in range(0, len(calls), block)]
        best = {k: np.full(len(blocks), np.inf) for k in names}
        for i in range(rounds):
            for j, blk in enumerate(blocks):
                k0 = (i + j) % len(names)
                for name in names[k0:] + names[:k0]:
                    sh = shapers[name]
                    t0 = time.thread_time()  # CPU time of this thread: other processes' load left out
                    for f, t in blk:
                        sh.apply(f, transpose=t + 1e-9 * i)  # a fresh transpose: the old grid is rebuilt too
                    best[name][j] = min(best[name][j], time.thread_time() - t0)
        per_call = {k: float(v.sum()) / len(calls) for k, v in best.items()}
        res[case] = {f"{k}_us": v * 1e6 for k, v in per_call.items()}
        res[case]["ratio_vs_reference"] = per_call["new"] / per_call["reference"]
        res[case]["ratio_vs_axis"] = per_call["new"] / per_call["axis"]
    return res


def _instrumented(cls, name: str, record: list) -> tuple[object, list[str]]:
    """A copy of method `name` that appends (perf_counter, statement #) after each top-level
    statement of its body to `record`; the statements' first lines."""
    src = textwrap.dedent(inspect.getsource(getattr(cls, name)))
    fn = ast.parse(src).body[0]
    body, labels = [ast.parse("_rec((_clock(), -1))").body[0]], []
    for st in fn.body:
        labels.append(ast.get_source_segment(src, st).split("\n")[0].strip())
        body += [st, ast.parse(f"_rec((_clock(), {len(labels) - 1}))").body[0]]
    fn.body = body
    mod = ast.fix_missing_locations(ast.Module(body=[fn], type_ignores=[]))
    env = dict(vars(shaping), _clock=time.perf_counter, _rec=record.append)
    exec(compile(mod, f"<instrumented {name}>", "exec"), env)
    return env[name], labels


def profile(frames: list[np.ndarray], rounds: int = 30) -> dict:
    """Per statement of SpectralShaper._analyse and ._peak_shift: µs per apply (minimum over
    rounds of the per-round mean), for both timing cases."""
    out = {}
    for case in ("new frame", "glide"):
        sh = SpectralShaper(N_FFT, SR)
        rec_a, rec_s = [], []
        fa, la = _instrumented(SpectralShaper, "_analyse", rec_a)
        fs, ls = _instrumented(SpectralShaper, "_peak_shift", rec_s)
        sh._analyse = fa.__get__(sh)
        sh._peak_shift = fs.__get__(sh)
        calls = timing_calls(frames, case)
        best_a, best_s = {}, {}
        for i in range(rounds):
            rec_a.clear()
            rec_s.clear()
            for f, t in calls:
                sh.apply(f, transpose=t + 1e-9 * i)
            for rec, best in ((rec_a, best_a), (rec_s, best_s)):
                tot: dict[int, float] = {}
                for (t0, _), (t1, k) in zip(rec[:-1], rec[1:]):
                    if k >= 0:
                        tot[k] = tot.get(k, 0.0) + t1 - t0
                for k, v in tot.items():
                    best[k] = min(best.get(k, np.inf), v / len(calls) * 1e6)
        out[case] = {"_analyse": [(la[k], best_a[k]) for k in sorted(best_a)],
                     "_peak_shift": [(ls[k], best_s[k]) for k in sorted(best_s)]}  # fmt: skip
    return out


def print_profile(prof: dict, min_us: float = 0.5) -> None:
    for case, parts in prof.items():
        for part, rows in parts.items():
            total = sum(us for _, us in rows)
            print(f"profile ({case}) {part}: {total:.1f} µs per apply (statements ≥ {min_us} µs:)")
            for label, us in rows:
                if us >= min_us:
                    print(f"  {us:6.2f}  {label[:90]}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--latents", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="steps -24, -12, -7, 0, 7, 12, 24 only")
    ap.add_argument("--json", default=None)
    ap.add_argument("--timing-only", action="store_true", help="time apply (and --profile), no listening sweeps")
    ap.add_argument("--profile", action="store_true", help="per-statement time of the shaper")
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args(argv)
    steps = [-24, -12, -7, 0, 7, 12, 24] if args.quick else list(range(-24, 25))
    frames = decoded_frames(args.model, args.latents)
    results = {"timing": timing([m for _, m in frames], rounds=args.rounds)}
    for case, t in results["timing"].items():
        print(f"apply ({case}): peak-locked {t['new_us']:.1f} µs, first peak-locked {t['reference_us']:.1f} µs"
              f" (ratio {t['ratio_vs_reference']:.2f}), axis scaling {t['axis_us']:.1f} µs (ratio {t['ratio_vs_axis']:.2f})")
    if args.profile:
        results["profile"] = profile([m for _, m in frames], rounds=args.rounds)
        print_profile(results["profile"])
    if args.timing_only:
        frames = []
    for name, mag in frames:
        for label, sh in (("axis scaling", AxisScalingShaper(N_FFT, SR)), ("peak-locked", SpectralShaper(N_FFT, SR))):
            rows = sweep(mag, steps, sh)
            s = summary(rows)
            results[f"{name}/{label}"] = {"rows": rows, "summary": s}
            print(f"{name:>8} {label:>12}: ratio ±10 c {s['ratio_ok']}/{s['steps']} (worst {s['ratio_worst']:+.0f}),"
                  f" harmonic ≤20 c {s['harm_ok']}/{s['steps']} (worst {s['harm_worst']:.0f}),"
                  f" level ±2 dB {s['level_ok']}/{s['steps']} ({s['level_range'][0]:+.1f} … {s['level_range'][1]:+.1f} dB;"
                  f" LUFS {s['lufs_range'][0]:+.1f} … {s['lufs_range'][1]:+.1f})")
            bad = [r for r in rows if abs(r["ratio_error_cents"]) > 10 or not r["harmonicity_cents"] <= 20 or abs(r["level_db"]) > 2]
            if bad and label == "peak-locked":
                print("          off: " + ", ".join(f"{r['transpose']:+d}({r['ratio_error_cents']:+.0f}c,"
                                                   f"{r['harmonicity_cents']:.0f}c,{r['level_db']:+.1f}dB)" for r in bad))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
