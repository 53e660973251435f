"""Sound benchmarks (issue 9 goals): does the instrument play in tune, in time, at an even level?

Renders the shipped model offline through the public path (`aedaemon render --score`: an Engine
with the model's hop, settings and scores through the address table) and listens from outside
with benchmarks/sound_analysis.py (YIN, high-resolution spectra, BS.1770 loudness, 5 ms RMS),
which shares no code with the renderer. Prints each goal next to what was measured:

  pitch      /note 36…96 (velocity 127) on five timbres (the default latent, four spread
             points): cents from the note, YIN on the steady part   goal ≥ 98 % within ±25 cents,
             pitch class 100 %, median |error| ≤ 5 cents, every reachable note accepted
  transpose  /transpose -24…+24 on C, default latent: pitch ratio error, partials' distance
             from the harmonic grid, level vs transpose 0    goal ±10 cents, ≤ 20 cents, ±2 dB
  loudness   120 tones (10 latents × 12 chroma classes) and /note 36…96: spread (max - min) of
             the loudness                                     goal ≤ 4 dB each
             peak sample at gain 1, velocity 127              goal ≤ 0.8 (limiter idle)
             phase methods (rtpghi, noise, canne) vs rtpghi   goal within 1 dB
  dips       abrupt changes (glide 0): latent jump, note, chroma, transpose, freq_shift: how far
             the 5 ms RMS falls below the lower steady level within ±100 ms    goal ≤ 2 dB
  onsets     scored notes from silence at times that are not multiples of the hop: first sample
             heard vs the requested one                       goal within ±0.5 ms

Loudness is BS.1770 K-weighted (LUFS, ungated over the steady part; mono); RMS levels (dBFS) are
printed beside it where the issue quoted them.

Usage: python benchmarks/bench_sound.py [--model DIR] [--quick] [--json FILE]
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sound_analysis as sa  # noqa: E402

from aedaemon.engine import Engine  # noqa: E402
from aedaemon.errors import ScoreError  # noqa: E402
from aedaemon.model import load_bundle  # noqa: E402
from common import bench_arguments  # noqa: E402
from aedaemon.render import apply_settings, parse_score, sample_time, schedule_score  # noqa: E402

PHASES = ("rtpghi", "noise", "canne")
NOTE_SECONDS = 0.5  # each scored note; the steady part analysed is its last 0.3 s
STEADY_FROM = 0.2


# ---- rendering through the public path -----------------------------------------------------


SYNTH_HOP: Optional[int] = None  # --hop: the synthesis hop (None: the model's, as `aedaemon render`)


def render(
    bundle,
    seconds: float,
    events: Sequence[tuple[float, str, Sequence]] = (),
    settings: Sequence[tuple[str, Sequence]] = (),
    phase: str = "rtpghi",
) -> tuple[np.ndarray, list[int]]:
    """What `aedaemon render --score` renders: an Engine at the model's hop, the settings applied
    at once (ending with /play unless events start it), the score scheduled on the audio clock.

    Returns the audio and the indices of the events the address table refused (a /note out of
    reach): the score goes on without them.
    """
    engine = Engine(bundle, hop=SYNTH_HOP, phase=phase, seed=0)
    apply_settings(engine, list(settings))
    refused = []
    for k, (t, address, args) in enumerate(events):
        try:
            schedule_score(engine, parse_score([{"time": t, "address": address, "args": list(args)}]))
        except ScoreError:
            refused.append(k)
    return engine.render(sample_time(seconds, engine.sample_rate)), refused


def timbres(bundle, count: int) -> list[tuple[str, list[float]]]:
    """The default latent and count-1 spread points: a scrambled Halton sequence (seed 9) over
    the trained bottleneck range (latent_range), deterministic."""
    from scipy.stats import qmc

    n = bundle.meta.latent_size
    lo, hi = bundle.meta.latent_range
    pts = qmc.Halton(d=n, scramble=True, seed=9).random(max(0, count - 1))
    out = [("default", [float(v) for v in bundle.meta.default_latent])]
    out += [(f"halton{k + 1}", [float(lo + (hi - lo) * v) for v in p]) for k, p in enumerate(pts)]
    return out


def segment(x: np.ndarray, sr: int, start: float, end: float) -> np.ndarray:
    return x[int(round(start * sr)) : int(round(end * sr))]


# ---- (a) pitch over the keyboard -------------------------------------------------------------


def keyboard(bundle, latent: list[float], notes: Sequence[int]) -> list[dict]:
    sr = bundle.meta.sample_rate
    events = [(k * NOTE_SECONDS, "/note", [n, 127]) for k, n in enumerate(notes)]
    x, refused = render(bundle, len(notes) * NOTE_SECONDS, events, [("/glide", [0]), ("/latent", latent)])
    rows = []
    for k, n in enumerate(notes):
        t0 = k * NOTE_SECONDS
        if k in refused:
            rows.append({"note": n, "accepted": False})
            continue
        steady = segment(x, sr, t0 + STEADY_FROM, t0 + NOTE_SECONDS)
        p = sa.note_pitch(steady, sr)
        rows.append({
            "note": n, "accepted": True, "f0": p.f0, "cents": p.error(n), "aperiodicity": p.aperiodicity,
            "pitch_class_ok": sa.pitch_class(p.f0) == n % 12, "rms_db": sa.rms_db(steady),
            "lufs": sa.loudness_lufs(steady, sr, gated=False), "peak": sa.peak(segment(x, sr, t0, t0 + NOTE_SECONDS)),
        })  # fmt: skip
    return rows


def pitch_summary(rows: list[dict]) -> dict:
    heard = [r for r in rows if r["accepted"]]
    err = np.array([r["cents"] for r in heard], dtype=float)
    fin = np.isfinite(err)
    lufs = [r["lufs"] for r in heard]
    return {
        "notes": len(rows),
        "refused": len(rows) - len(heard),
        "within_25_pct": 100.0 * float(np.sum(np.abs(err[fin]) <= 25.0)) / len(rows),
        "pitch_class_pct": 100.0 * sum(r["pitch_class_ok"] for r in heard) / len(rows),
        "median_abs_cents": float(np.median(np.abs(err[fin]))) if fin.any() else float("nan"),
        "octave_off": int(np.sum(np.abs(np.round(err[fin] / 1200.0)) >= 1)),
        "no_pitch": int(np.sum(~fin)),
        "loudness_spread_db": float(max(lufs) - min(lufs)) if lufs else float("nan"),
        "rms_spread_db": float(max(r["rms_db"] for r in heard) - min(r["rms_db"] for r in heard)) if heard else float("nan"),
        "peak_max": max((r["peak"] for r in heard), default=0.0),
        "peaks_over_0_8": sum(r["peak"] > 0.8 for r in heard),
    }


def strip(rows: list[dict]) -> str:
    """Four characters per note: '.' within ±25 cents, else the error rounded to semitones
    (-12: an octave low), 'x' refused by /note, '?' no pitch found."""
    out = []
    for r in rows:
        if not r["accepted"]:
            out.append("   x")
        elif not np.isfinite(r["cents"]):
            out.append("   ?")
        elif abs(r["cents"]) <= 25:
            out.append("   .")
        else:
            out.append(f"{int(round(r['cents'] / 100)):>+4d}")
    return "".join(out)


# ---- (b) transposition -----------------------------------------------------------------------


def transposition(bundle, steps: Sequence[int]) -> list[dict]:
    sr = bundle.meta.sample_rate
    latent = [float(v) for v in bundle.meta.default_latent]
    rows = []
    for t in steps:
        x, _ = render(bundle, 0.8, settings=[("/latent", latent), ("/chroma", [0]), ("/transpose", [t]), ("/play", [1])])
        steady = segment(x, sr, 0.3, 0.8)
        p = sa.note_pitch(steady, sr)
        h = sa.harmonicity(sa.spectrum_peaks(steady, sr), p.f0)
        rows.append({"transpose": t, "f0": p.f0, "aperiodicity": p.aperiodicity, "harmonicity_cents": h.rms_cents,
                     "partials": h.partials, "rms_db": sa.rms_db(steady), "lufs": sa.loudness_lufs(steady, sr, gated=False)})
    base = next(r for r in rows if r["transpose"] == 0)
    for r in rows:
        r["ratio_error_cents"] = float(sa.cents(r["f0"], base["f0"])) - 100.0 * r["transpose"]
        r["level_db"] = r["lufs"] - base["lufs"]
        r["rms_level_db"] = r["rms_db"] - base["rms_db"]
    return rows


# ---- (c) loudness ------------------------------------------------------------------------------


def chroma_tones(bundle, latents: list[tuple[str, list[float]]], classes: Sequence[int], phase: str) -> list[dict]:
    sr = bundle.meta.sample_rate
    dur = 0.6
    rows = []
    for name, latent in latents:
        events = [(k * dur, "/chroma", [c]) for k, c in enumerate(classes)]
        x, _ = render(bundle, len(classes) * dur, events, [("/glide", [0]), ("/latent", latent), ("/play", [1])], phase)
        for k, c in enumerate(classes):
            steady = segment(x, sr, k * dur + 0.25, (k + 1) * dur)
            rows.append({"latent": name, "chroma": c, "rms_db": sa.rms_db(steady),
                         "lufs": sa.loudness_lufs(steady, sr, gated=False),
                         "peak": sa.peak(segment(x, sr, k * dur, (k + 1) * dur))})
    return rows


def spread(values: Sequence[float]) -> float:
    return float(max(values) - min(values)) if len(values) else float("nan")


# ---- (d) dips at abrupt changes ------------------------------------------------------------------


def dips(bundle, phase: str, other_latent: list[float]) -> list[dict]:
    sr, hop = bundle.meta.sample_rate, SYNTH_HOP or bundle.meta.hop
    change = round(1.0 * sr / hop) * hop / sr  # on a frame boundary: where a change takes effect
    latent = [float(v) for v in bundle.meta.default_latent]
    base = [("/glide", [0]), ("/latent", latent), ("/chroma", [0])]
    cases = [
        ("latent jump", base + [("/play", [1])], [(change, "/latent", other_latent)]),
        ("note 60 -> 67", base, [(0.0, "/note", [60, 127]), (change, "/note", [67, 127])]),
        ("chroma C -> G", base + [("/play", [1])], [(change, "/chroma", [7])]),
        ("transpose 0 -> +7", base + [("/play", [1])], [(change, "/transpose", [7])]),
        ("transpose 0 -> -12", base + [("/play", [1])], [(change, "/transpose", [-12])]),
        ("freq_shift 0 -> 20", base + [("/play", [1])], [(change, "/freq_shift", [20])]),
    ]
    rows = []
    for label, settings, events in cases:
        x, _ = render(bundle, 2.0, events, settings, phase)
        d = sa.dip(x, sr, change)
        near = [k for k, _ in sa.clicks(x, sr) if abs(k / sr - change) <= 0.1]
        rows.append({"change": label, "phase": phase, **asdict(d), "clicks": len(near)})
    return rows


# ---- (e) onsets ----------------------------------------------------------------------------------


def onsets(bundle, count: int) -> list[dict]:
    sr = bundle.meta.sample_rate
    period = 0.3123  # not a multiple of the hop: every note asks for another offset into a frame
    times = [0.2 + k * period for k in range(count)]
    events = []
    for t in times:
        events += [(t, "/note", [60, 127]), (t + 0.15, "/note_off", [60])]
    x, _ = render(bundle, times[-1] + 0.3, events, [("/glide", [0])])
    rows = []
    for t in times:
        a = int(round((t - 0.05) * sr))  # the previous note has been silent for 40 ms by then
        requested = sample_time(t, sr)
        seg = x[a : int(round((t + 0.2) * sr))]
        steady = sa.rms(segment(x, sr, t + 0.1, t + 0.15))
        found = sa.onset(seg, sr, steady=steady)
        # where the attack reaches -20 dB and -3 dB of the steady level (1 ms RMS): how soon it is heard
        env = sa.rms_envelope(seg, sr, 0.001)
        reach = {}
        for level in (-20, -3):
            hit = np.nonzero(env >= steady * 10 ** (level / 20))[0]
            reach[level] = float("nan") if not len(hit) else (a + int(hit[0]) - requested) * 1000.0 / sr
        nz = np.nonzero(np.abs(seg) > 0)[0]
        reach["nonzero"] = float("nan") if not len(nz) else (a + int(nz[0]) - requested) * 1000.0 / sr
        rows.append({"time": t, "requested": requested, "found": None if found is None else a + found,
                     "nonzero_ms": reach["nonzero"],
                     "error_ms": float("nan") if found is None else (a + found - requested) * 1000.0 / sr,
                     "minus20_ms": reach[-20], "minus3_ms": reach[-3],
                     "silent_before": sa.peak(x[a:requested]) == 0.0})
    return rows


# ---- main ------------------------------------------------------------------------------------------


def fmt(v: float, spec: str = ".1f") -> str:
    return "nan" if v is None or not np.isfinite(v) else format(v, spec)


def main() -> int:
    global SYNTH_HOP
    args = bench_arguments(__doc__, "fewer notes, timbres and steps (under a minute)", hop=True)
    SYNTH_HOP = args.hop
    bundle = load_bundle(args.model)  # as `aedaemon render` loads it: the int8 decoder when present
    sr, hop = bundle.meta.sample_rate, SYNTH_HOP or bundle.meta.hop
    quick = args.quick
    started = time.perf_counter()
    results: dict[str, Any] = {"model": bundle.meta.name, "precision": bundle.precision, "quick": quick}
    print(f"model: {bundle.meta.name} ({bundle.precision} decoder), {sr} Hz, hop {hop}, n_fft {bundle.meta.n_fft}"
          f"{', quick' if quick else ''}\n")

    # (a) pitch
    notes = list(range(36, 97, 3 if quick else 1))
    tim = timbres(bundle, 3 if quick else 5)
    print(f"pitch: /note {notes[0]}…{notes[-1]}{' step 3' if quick else ''}, velocity 127, YIN median over "
          f"{NOTE_SECONDS - STEADY_FROM:.1f} s steady part of each note")
    print(f"{'timbre':<10}{'refused':>8}{'±25 c %':>9}{'pc ok %':>9}{'med |c|':>9}{'octave':>8}"
          f"{'LUFS spr':>10}{'RMS spr':>9}{'peak':>7}{'>0.8':>6}")
    results["pitch"] = {}
    all_rows = []
    for name, latent in tim:
        rows = keyboard(bundle, latent, notes)
        s = pitch_summary(rows)
        all_rows += rows
        results["pitch"][name] = {"latent": latent, "summary": s, "notes": rows}
        print(f"{name:<10}{s['refused']:>8}{s['within_25_pct']:>9.1f}{s['pitch_class_pct']:>9.1f}"
              f"{fmt(s['median_abs_cents']):>9}{s['octave_off']:>8}{fmt(s['loudness_spread_db']):>10}"
              f"{fmt(s['rms_spread_db']):>9}{s['peak_max']:>7.2f}{s['peaks_over_0_8']:>6}")
    tot = pitch_summary(all_rows)
    results["pitch"]["all"] = tot
    print(f"{'all':<10}{tot['refused']:>8}{tot['within_25_pct']:>9.1f}{tot['pitch_class_pct']:>9.1f}"
          f"{fmt(tot['median_abs_cents']):>9}{tot['octave_off']:>8}{fmt(tot['loudness_spread_db']):>10}"
          f"{fmt(tot['rms_spread_db']):>9}{tot['peak_max']:>7.2f}{tot['peaks_over_0_8']:>6}")
    print("goal: ≥ 98 % within ±25 cents, pitch class 100 %, median ≤ 5 cents, no reachable note refused;"
          " loudness spread ≤ 4 dB; peak ≤ 0.8")
    print("semitones off per note ('.' within ±25 cents, x refused, ? no pitch):")
    print(f"{'note':<10}" + "".join(f"{n:>4d}" for n in notes))
    for name, _ in tim:
        print(f"{name:<10}" + strip(results["pitch"][name]["notes"]))

    # (b) transposition
    steps = list(range(-24, 25, 3 if quick else 1))
    rows = transposition(bundle, steps)
    results["transpose"] = rows
    print("\ntranspose on /chroma C, default latent (ratio error: cents vs transpose 0; harmonicity: energy-weighted"
          " RMS cents from k·f0; level: LUFS vs transpose 0)")
    print(("{:>5}{:>9}{:>8}{:>7}   " * 3).format(*(["tr", "ratio c", "harm c", "level"] * 3)))
    cells = [f"{r['transpose']:>+5d}{fmt(r['ratio_error_cents']):>9}{fmt(r['harmonicity_cents']):>8}{fmt(r['level_db']):>7}"
             for r in rows]
    per = -(-len(cells) // 3)
    for i in range(per):
        print("   ".join(cells[i + j * per] for j in range(3) if i + j * per < len(cells)))
    ratio = np.array([r["ratio_error_cents"] for r in rows])
    harm = np.array([r["harmonicity_cents"] for r in rows])
    lev = np.array([r["level_db"] for r in rows])
    fin = np.isfinite(ratio)
    summary_b = {
        "ratio_within_10": int(np.sum(np.abs(ratio[fin]) <= 10)), "steps": len(rows),
        "ratio_max_abs": float(np.max(np.abs(ratio[fin]))) if fin.any() else float("nan"),
        "harmonic_within_20": int(np.sum(harm <= 20)), "harmonicity_max": float(np.nanmax(harm)),
        "level_within_2": int(np.sum(np.abs(lev) <= 2)), "level_min": float(np.min(lev)), "level_max": float(np.max(lev)),
    }  # fmt: skip
    results["transpose_summary"] = summary_b
    print(f"ratio within ±10 c: {summary_b['ratio_within_10']}/{len(rows)} (max |err| {fmt(summary_b['ratio_max_abs'])} c)   "
          f"harmonic ≤ 20 c: {summary_b['harmonic_within_20']}/{len(rows)} (max {fmt(summary_b['harmonicity_max'])} c)   "
          f"level within ±2 dB: {summary_b['level_within_2']}/{len(rows)} ({fmt(summary_b['level_min'])}…"
          f"{fmt(summary_b['level_max'])} dB)")
    print("goal: all steps within ±10 cents, ≤ 20 cents from the grid, within ±2 dB")

    # (c) loudness
    lat10 = timbres(bundle, 4 if quick else 10)
    tones = chroma_tones(bundle, lat10, range(12), "rtpghi")
    lufs = [r["lufs"] for r in tones]
    rmsv = [r["rms_db"] for r in tones]
    peaks = [r["peak"] for r in tones]
    res_c: dict[str, Any] = {
        "tones": len(tones), "lufs_spread": spread(lufs), "rms_spread": spread(rmsv), "lufs_range": [min(lufs), max(lufs)],
        "peak_max": max(peaks), "peaks_over_0_8": sum(p > 0.8 for p in peaks),
        "note_lufs_spread_worst": max(results["pitch"][n]["summary"]["loudness_spread_db"] for n, _ in tim),
        "note_peak_max": tot["peak_max"], "note_peaks_over_0_8": tot["peaks_over_0_8"],
    }  # fmt: skip
    print(f"\nloudness at gain 1 (velocity 1 / 127):")
    print(f"{len(tones)} tones ({len(lat10)} latents × 12 classes): spread {res_c['lufs_spread']:.1f} dB K-weighted "
          f"({res_c['lufs_range'][0]:.1f}…{res_c['lufs_range'][1]:.1f} LUFS), {res_c['rms_spread']:.1f} dB RMS; "
          f"peak max {res_c['peak_max']:.2f}, {res_c['peaks_over_0_8']} of {len(tones)} over 0.8")
    print(f"/note {notes[0]}…{notes[-1]}: worst timbre's spread {res_c['note_lufs_spread_worst']:.1f} dB K-weighted; "
          f"peak max {res_c['note_peak_max']:.2f}, {res_c['note_peaks_over_0_8']} notes over 0.8")
    print("goal: each spread ≤ 4 dB; no sample over 0.8")
    phase_lat = lat10[: 4 if quick else 10]
    by_phase = {m: chroma_tones(bundle, phase_lat, (0, 4, 9), m) for m in PHASES}
    res_c["phase"] = {}
    print(f"phase methods, {len(phase_lat)} latents × C/E/A, level vs rtpghi (mean, min…max):")
    for m in PHASES[1:]:
        dl = [b["lufs"] - a["lufs"] for a, b in zip(by_phase["rtpghi"], by_phase[m])]
        dr = [b["rms_db"] - a["rms_db"] for a, b in zip(by_phase["rtpghi"], by_phase[m])]
        res_c["phase"][m] = {"lufs_mean": float(np.mean(dl)), "lufs_min": min(dl), "lufs_max": max(dl),
                             "rms_mean": float(np.mean(dr))}
        print(f"  {m:<7} {np.mean(dl):+.1f} dB K-weighted ({min(dl):+.1f}…{max(dl):+.1f}), {np.mean(dr):+.1f} dB RMS")
    print("goal: within 1 dB")
    results["loudness"] = res_c

    # (d) dips
    other = tim[1][1] if len(tim) > 1 else [float(v) for v in bundle.meta.default_latent]
    rows = []
    for m in ("rtpghi",) if quick else PHASES:
        rows += dips(bundle, m, other)
    results["dips"] = rows
    print("\ndips at abrupt changes (glide 0; change on a frame boundary at ~1 s): how far the 5 ms RMS falls below "
          "the lower steady level within ±100 ms")
    print(f"{'change':<20}{'phase':>8}{'dip dB':>8}{'at ms':>7}{'before':>8}{'after':>8}{'ripple':>8}{'clicks':>7}")
    for r in rows:
        print(f"{r['change']:<20}{r['phase']:>8}{r['dip_db']:>8.1f}{r['at'] * 1000:>7.0f}{r['before_db']:>8.1f}"
              f"{r['after_db']:>8.1f}{r['ripple_db']:>8.1f}{r['clicks']:>7}")
    print("goal: every dip ≤ 2 dB (ripple: the same measure inside the steady stretches, its noise floor)")

    # (e) onsets
    rows = onsets(bundle, 8 if quick else 16)
    results["onsets"] = rows
    err = np.array([r["error_ms"] for r in rows])
    within = int(np.sum(np.abs(err) <= 0.5))
    m20 = np.array([r["minus20_ms"] for r in rows])
    m3 = np.array([r["minus3_ms"] for r in rows])
    print(f"\nonsets: {len(rows)} scored /note 60 127 from silence every 312.3 ms (offline render), vs the requested "
          f"sample (silent before: {sum(r['silent_before'] for r in rows)}/{len(rows)}):")
    nzv = np.array([r["nonzero_ms"] for r in rows])
    print(f"  first non-zero       {np.nanmin(nzv):+6.1f} … {np.nanmax(nzv):+6.1f} ms (mean {np.nanmean(nzv):+.1f})")
    print(f"  first sample heard   {np.nanmin(err):+6.1f} … {np.nanmax(err):+6.1f} ms (mean {np.nanmean(err):+.1f}), "
          f"{within}/{len(rows)} within ±0.5 ms")
    print(f"  attack at -20 dB     {np.nanmin(m20):+6.1f} … {np.nanmax(m20):+6.1f} ms (mean {np.nanmean(m20):+.1f})")
    print(f"  attack at -3 dB      {np.nanmin(m3):+6.1f} … {np.nanmax(m3):+6.1f} ms (mean {np.nanmean(m3):+.1f})")
    print("  (heard: sound_analysis.onset, the first sample of the attack above -60 dB re the steady level)")
    print("goal: every onset within ±0.5 ms")
    results["wall_seconds"] = time.perf_counter() - started
    print(f"\n({results['wall_seconds']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
