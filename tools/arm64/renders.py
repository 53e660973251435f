"""Fixed renders for the x86/arm64 comparison (tools/arm64/test-arm64.sh runs this on both).

    python tools/arm64/renders.py OUTDIR      (run from the repository root)

Each render is `aedaemon render` as a user runs it (a subprocess of this Python), written as
32-bit float WAV so that the comparison sees the engine's own rounding, not dither. The decoder
precision is always given: `auto` times both decoders at load and may pick differently on
another machine (under emulation int8 and float32 time nothing like a real board).
OUTDIR/manifest.json records the machine, the versions and that the C extension was used.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

SECONDS = 6.0


def latent_sweep_score() -> list[dict]:
    """Every parameter moving: the latent every 23 ms (about every hop-1024 frame), chroma,
    transpose, tilt, gain and a glide; the decoder runs on nearly every frame."""
    ev: list[dict] = [{"time": 0.0, "address": "/chroma", "args": ["A"]},
                      {"time": 0.0, "address": "/glide", "args": [0.05]}]
    t, k = 0.0, 0
    while t < SECONDS - 0.5:
        v = [round(1.5 * ((((k * 7 + i * 13) % 29) / 14.0) - 1.0), 4) for i in range(8)]
        ev.append({"time": round(t, 4), "address": "/latent", "args": v})
        t += 0.023
        k += 1
    ev += [{"time": 1.5, "address": "/transpose", "args": [-5]},
           {"time": 2.5, "address": "/tilt", "args": [-3.0]},
           {"time": 3.0, "address": "/chroma", "args": ["D#"]},
           {"time": 3.5, "address": "/gain", "args": [0.6]},
           {"time": 4.5, "address": "/freq_shift", "args": [-12]},
           {"time": SECONDS - 0.4, "address": "/stop", "args": []}]
    return sorted(ev, key=lambda e: e["time"])


# name -> extra CLI arguments (all with --seed 7, --seconds SECONDS, --subtype FLOAT)
RENDERS: dict[str, list[str]] = {
    "score-f32-rtpghi-hop1024": ["--score", "docs/examples/score.json", "--precision", "float32",
                                 "--phase", "rtpghi", "--hop", "1024"],
    "score-int8-rtpghi-hop256": ["--score", "docs/examples/score.json", "--precision", "int8",
                                 "--phase", "rtpghi", "--hop", "256"],
    "sweep-int8-rtpghi-hop1024": ["--score", "{sweep}", "--precision", "int8", "--phase", "rtpghi",
                                  "--hop", "1024"],
    "sweep-f32-rtpghi-hop512": ["--score", "{sweep}", "--precision", "float32", "--phase", "rtpghi",
                                "--hop", "512"],
    "static-int8-noise-hop512": ["--latent=0.8,-0.4,0.2,1.1,-0.9,0.3,0,-0.2", "--chroma", "F#",
                                 "--transpose", "7", "--tilt", "2.5", "--precision", "int8",
                                 "--phase", "noise", "--hop", "512"],
    "static-f32-canne-hop1024": ["--latent=-1,0.5,0.5,-0.3,0.7,0,0.9,-1.2", "--chroma", "C",
                                 "--freq-shift", "9", "--glide", "0.5", "--precision", "float32",
                                 "--phase", "canne", "--hop", "1024"],
}


def decoder_outputs(out: Path) -> dict:
    """The shipped decoders on the sweep's latents (chroma A), one frame a run as the engine
    decodes, with onnxruntime's default graph optimizations and with fewer: on aarch64 the int8
    graph's fused kernels (level EXTENDED) round differently from x86's. Written to decoder.npz."""
    import numpy as np
    import onnxruntime as ort

    lat = np.array([e["args"] for e in latent_sweep_score() if e["address"] == "/latent"], np.float32)
    chroma = np.zeros((len(lat), 12), np.float32)
    chroma[:, 9] = 1.0
    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
    res = {}
    for name, fname in (("float32", "decoder.onnx"), ("int8", "decoder-int8.onnx")):
        for lv, level in levels.items():
            if name == "float32" and lv != "all":
                continue
            o = ort.SessionOptions()
            o.intra_op_num_threads = 1
            o.graph_optimization_level = level
            s = ort.InferenceSession(f"models/default/{fname}", sess_options=o, providers=["CPUExecutionProvider"])
            res[f"{name}_{lv}"] = np.concatenate(
                [s.run(None, {"latent": lat[i:i + 1], "chroma": chroma[i:i + 1]})[0] for i in range(len(lat))])
    np.savez(out / "decoder.npz", **res)
    return {k: list(v.shape) for k, v in res.items()}


def main() -> int:
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    sweep = out / "sweep-score.json"
    sweep.write_text(json.dumps(latent_sweep_score()))
    import numpy
    import onnxruntime

    import aedaemon
    import aedaemon.dsp._native as native  # the render must use the compiled loops

    manifest = {"machine": platform.machine(), "python": platform.python_version(),
                "numpy": numpy.__version__, "onnxruntime": onnxruntime.__version__,
                "aedaemon": str(Path(aedaemon.__file__).parent), "native": native.__file__,
                "renders": {}}
    ok = True
    for name, args in RENDERS.items():
        args = [a.replace("{sweep}", str(sweep)) for a in args]
        cmd = [sys.executable, "-m", "aedaemon.cli", "render", "--model", "models/default",
               "--seed", "7", "--seconds", str(SECONDS), "--subtype", "FLOAT",
               "--out", str(out / f"{name}.wav"), *args]
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.monotonic() - t0
        manifest["renders"][name] = {"args": args, "rc": p.returncode, "wall_s": round(dt, 1),
                                     "stdout": p.stdout.strip()[-300:], "stderr": p.stderr.strip()[-600:]}
        said = (p.stdout + p.stderr).strip().splitlines()
        print(f"render {name}: rc={p.returncode} {dt:.1f} s  {said[-1][-150:] if said else ''}", flush=True)
        if p.returncode != 0:
            ok = False
            print(p.stderr, file=sys.stderr)
    manifest["decoder"] = decoder_outputs(out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
