"""Compare the renders of tools/arm64/renders.py made on two machines, sample by sample.

    python tools/arm64/compare.py X86DIR ARM64DIR [--tol-lsb 2]

For each render: the largest absolute difference in 16-bit LSB (1 LSB = 2**-15 of full scale) and
in dBFS, the difference's RMS relative to the signal's (dB), and the peak. Exit 1 when a render is
missing, differs in length, or differs by more than --tol-lsb LSB anywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

LSB = 2.0 ** -15


def db(x: float) -> float:
    return 20 * math.log10(x) if x > 0 else -math.inf


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tol-lsb", type=float, default=2.0)
    ap.add_argument("--json")
    o = ap.parse_args()
    a, b = Path(o.a), Path(o.b)
    names = sorted(p.stem for p in a.glob("*.wav"))
    rows, ok = [], bool(names)
    print(f"{'render':28s} {'samples':>8s} {'peak dBFS':>9s} {'max|diff|':>11s} {'LSB16':>7s} "
          f"{'dBFS':>7s} {'diff/sig dB':>11s} {'==':>6s}  verdict")
    for n in names:
        if not (b / f"{n}.wav").exists():
            print(f"{n:28s} missing on {b}")
            ok = False
            continue
        x, sr1 = sf.read(a / f"{n}.wav", dtype="float64", always_2d=True)
        y, sr2 = sf.read(b / f"{n}.wav", dtype="float64", always_2d=True)
        if x.shape != y.shape or sr1 != sr2:
            print(f"{n:28s} shapes differ: {x.shape}@{sr1} vs {y.shape}@{sr2}")
            ok = False
            continue
        d = np.abs(x - y)
        mx = float(d.max())
        rms_d = float(np.sqrt(np.mean((x - y) ** 2)))
        rms_x = float(np.sqrt(np.mean(x ** 2)))
        same = float(np.mean(d == 0))
        good = mx <= o.tol_lsb * LSB
        ok &= good
        row = {"render": n, "samples": int(x.shape[0]), "peak_dbfs": round(db(float(np.abs(x).max())), 2),
               "max_abs_diff": mx, "max_diff_lsb16": round(mx / LSB, 3), "max_diff_dbfs": round(db(mx), 1),
               "diff_rms_rel_db": round(db(rms_d / rms_x) if rms_x > 0 else -math.inf, 1),
               "identical_fraction": round(same, 4), "ok": good}
        rows.append(row)
        print(f"{n:28s} {row['samples']:8d} {row['peak_dbfs']:9.2f} {mx:11.3e} {row['max_diff_lsb16']:7.3f} "
              f"{row['max_diff_dbfs']:7.1f} {row['diff_rms_rel_db']:11.1f} {same:6.1%}  "
              f"{'ok' if good else 'FAIL (> %g LSB)' % o.tol_lsb}")
    # where a render first leaves the tolerance (a divergence that starts late and grows is the
    # phase reconstruction taking another path after a slightly different decoded frame)
    for r in rows:
        if not r["ok"]:
            x, _ = sf.read(a / f"{r['render']}.wav", dtype="float64", always_2d=True)
            y, sr = sf.read(b / f"{r['render']}.wav", dtype="float64", always_2d=True)
            d = np.abs(x - y).max(1)
            first = int(np.argmax(d > o.tol_lsb * LSB))
            r["within_tol_until_s"] = round(first / sr, 3)
            r["max_diff_lsb16_before"] = round(float(d[:first].max(initial=0)) / LSB, 3)
            print(f"  {r['render']}: within {o.tol_lsb:g} LSB (max {r['max_diff_lsb16_before']} LSB) for the first "
                  f"{first / sr:.3f} s of {len(d) / sr:.2f} s, then up to {r['max_diff_lsb16']:.0f} LSB")
    # the decoders alone, on the same latents (decoder.npz from renders.py)
    if (a / "decoder.npz").exists() and (b / "decoder.npz").exists():
        da, db_ = np.load(a / "decoder.npz"), np.load(b / "decoder.npz")
        print("decoder outputs on the sweep's latents (max |diff| relative to the frame peak; frames differing):")
        for k in da.files:
            if k not in db_.files:
                continue
            dd = np.abs(da[k].astype(np.float64) - db_[k])
            rel = dd.max(1) / np.maximum(np.abs(da[k]).max(1), 1e-30)
            rows.append({"decoder": k, "max_rel": float(rel.max()), "frames_differing": int((dd.max(1) > 0).sum()),
                         "frames": int(len(rel))})
            print(f"  {k:14s} max {rel.max():.2e}  median {np.median(rel):.1e}  {int((dd.max(1) > 0).sum())}/{len(rel)} frames differ"
                  f"{'  (bit-identical)' if dd.max() == 0 else ''}")
        if "int8_all" in da.files and "float32_all" in da.files:
            q = np.abs(da["int8_all"].astype(np.float64) - da["float32_all"]).max(1) / np.abs(da["float32_all"]).max(1)
            print(f"  (for scale: int8 against float32 on {a.name}, the quantization itself: max {q.max():.2e}, median {np.median(q):.1e})")
    if o.json:
        Path(o.json).write_text(json.dumps(rows, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
