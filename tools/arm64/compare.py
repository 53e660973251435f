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
    if o.json:
        Path(o.json).write_text(json.dumps(rows, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
