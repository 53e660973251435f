"""Effect benchmarks (issue 11): `aedaemon process` speed and what the chain adds, offline.

Prints, in one run and on this machine:
  1. `aedaemon process` speed as x real time (the whole command: read, resample, chain, write)
     and the chain alone, for the input's phase and RTPGHI, at the model's hop, threads 1 and 2,
     against a baseline run in the same process: `aedaemon render` of the same length (its
     code path: Engine + render_to_file, static settings and every setting changing each hop);
  2. where the time goes per frame (analysis, chroma, encode, decode, phase + overlap-add);
  4. (a path to more speed) the same with both networks quantised here to int8 weights of type
     S8 (onnxruntime dynamic quantisation, QInt8: batched, AMX/VNNI int8 kernels) in a
     temporary bundle, not shipped: x real time and the fidelity figures against float32;
  3. fidelity: spectral convergence (dB) of the model's own encode → decode reconstruction
     against the input and of the effect's output against the input (goal: within 1 dB, the
     effect adds no error of its own), the wet frames against the reconstruction, mix 0
     against the input (goal: max error <= 1e-4 at the reported latency, 0 offline), and a
     unit scaled in the effect against the same change on the encoded latents.

The input: General MIDI notes rendered by fluidsynth (several programs, 48 kHz stereo, so the
command resamples and mixes down) when FluidR3_GM is installed, else sawtooth notes in noise.

Usage: python benchmarks/bench_effect.py [--model DIR] [--quick] [--json FILE]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_arguments  # noqa: E402

from aedaemon.cli import main as cli_main  # noqa: E402
from aedaemon.effect import EffectChain, EffectSettings, frame_labels, process_file, read_input  # noqa: E402
from aedaemon.engine import Engine, one_hot  # noqa: E402
from aedaemon.model import load_bundle  # noqa: E402
from aedaemon.render import render_to_file  # noqa: E402
from aedaemon.synthetic import make_synthetic_bundle, sawtooth  # noqa: E402

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
GOAL_RTF = 150.0


def db(v: float) -> float:
    return float(20.0 * np.log10(max(v, 1e-30)))


def sc(mag: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(mag - ref) / np.linalg.norm(ref))


def write_input(folder: Path, seconds: float) -> tuple[Path, str]:
    """A test file of about `seconds`: fluidsynth GM notes (48 kHz stereo) or sawtooths in noise."""
    import soundfile as sf

    if shutil.which("fluidsynth") and SOUNDFONT.is_file():
        import mido

        mid = mido.MidiFile(ticks_per_beat=480)  # 120 bpm: 480 ticks = 0.5 s
        tr = mido.MidiTrack()
        mid.tracks.append(tr)
        programs = (0, 24, 40, 56, 65, 73, 19, 33)
        notes = int(seconds / 0.75)
        for i in range(notes):
            prog = programs[(i // 4) % len(programs)]
            tr.append(mido.Message("program_change", program=prog, time=0))
            n = 48 + (i * 5) % 25
            tr.append(mido.Message("note_on", note=n, velocity=100, time=0))
            tr.append(mido.Message("note_off", note=n, velocity=0, time=600))
            tr.append(mido.Message("note_on", note=0, velocity=0, time=120))  # 0.125 s gap
        mid.save(str(folder / "in.mid"))
        wav = folder / "in.wav"
        subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", "48000", "-F", str(wav),
                        str(SOUNDFONT), str(folder / "in.mid")], check=True, capture_output=True, timeout=300)
        return wav, f"fluidsynth FluidR3_GM, {len(programs)} programs, 48 kHz stereo"
    sr = 44100
    rng = np.random.default_rng(0)
    parts = [sawtooth(110.0 * 2 ** (k / 12), 0.75, sr) * rng.uniform(0.2, 1.0) for k in range(int(seconds / 0.75))]
    y = np.concatenate(parts) + 0.005 * rng.standard_normal(len(parts) * int(0.75 * sr))
    wav = folder / "in.wav"
    sf.write(str(wav), y.astype(np.float32), sr, subtype="PCM_16")
    return wav, "sawtooth notes in noise, 44.1 kHz mono"


def best(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def render_baseline(bundle, seconds: float, out: Path, changing: bool, repeats: int) -> float:
    """x real time of `aedaemon render` for `seconds` at the model's hop: its code path (Engine +
    render_to_file) with static settings; `changing`: the latent and chroma change every hop
    (a batch-1 decode per hop, the engine's loop without the file)."""
    hops = int(seconds * bundle.meta.sample_rate / bundle.meta.hop) + 1
    rng = np.random.default_rng(0)
    lo, hi = bundle.meta.control_range
    changes = [(tuple(rng.uniform(lo, hi, bundle.meta.latent_size)), one_hot(int(rng.integers(12)))) for _ in range(hops)]

    def run() -> None:
        e = Engine(bundle, hop=bundle.meta.hop, phase="rtpghi")
        e.update(playing=True)
        if not changing:
            render_to_file(e, seconds, out)
            return
        for lat, chroma in changes:
            e.update(latent=lat, chroma=chroma)
            e.render_hop()

    return seconds / best(run, repeats)


def frames_stft(chain: EffectChain, y: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(chain.padded(y), chain.n_fft)[:: chain.hop] * chain.window
    return np.abs(np.fft.rfft(frames.astype(np.float64), axis=1))


def fidelity(bundle, x: np.ndarray) -> dict:
    chain = EffectChain(bundle)
    a = frames_stft(chain, x).astype(np.float32)
    sounding = np.concatenate([b.sounding for b in EffectChain(bundle).blocks(x)])
    peak = a.max(axis=1)
    norm = a[sounding] / peak[sounding, None]
    own = frame_labels(norm, bundle.meta.sample_rate, bundle.meta.n_fft) if bundle.meta.conditioned else None
    z = bundle.encode(norm, own)
    rec = np.zeros_like(a)
    rec[sounding] = np.maximum(bundle.decode_batch(z, own), 0.0) * peak[sounding, None]
    out: dict = {"sounding_frames": int(sounding.sum()), "frames": int(len(a))}
    out["sc_model_vs_input_db"] = db(sc(rec[sounding], a[sounding]))
    out["sc_wet_frames_vs_reconstruction_db"] = db(sc(chain.wet_magnitudes(x)[sounding], rec[sounding]))
    for phase in ("input", "rtpghi"):
        y = EffectChain(bundle, EffectSettings(phase=phase)).process(x)
        b = frames_stft(chain, y)
        out[f"sc_effect_{phase}_vs_input_db"] = db(sc(b[sounding], a[sounding]))
        out[f"sc_effect_{phase}_vs_reconstruction_db"] = db(sc(b[sounding], rec[sounding]))
    y0 = EffectChain(bundle, EffectSettings(mix=0.0)).process(x)
    out["mix0_max_error"] = float(np.max(np.abs(y0 - x)))
    out["latency_samples"] = 0
    # a unit scaled in the effect vs the same change on the encoded latents
    n = bundle.meta.latent_size
    unit = min(3, n - 1)
    scale = [1.0] * n
    scale[unit] = 0.3
    z2 = z.copy()
    z2[:, unit] *= 0.3
    rec2 = np.zeros_like(a)
    rec2[sounding] = np.maximum(bundle.decode_batch(z2, own), 0.0) * peak[sounding, None]
    wet2 = EffectChain(bundle, EffectSettings(scale=tuple(scale))).wet_magnitudes(x)
    out["scale_unit"] = unit
    out["sc_scaled_wet_vs_scaled_latents_db"] = db(sc(wet2[sounding], rec2[sounding]))
    out["sc_scaled_vs_unscaled_reconstruction_db"] = db(sc(rec2[sounding], rec[sounding]))
    return out


def int8_bundle(model: Path, folder: Path) -> Path | None:
    """A temporary copy of the bundle whose encoder and decoder have int8 (S8) weights; None
    when onnxruntime.quantization (it needs the onnx package) is missing."""
    import logging

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return None
    dst = folder / "int8-s8"
    dst.mkdir()
    meta = json.loads((model / "model.json").read_text())
    meta["name"] = dst.name
    (dst / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic's advice about pre-processing
    try:
        for name in ("encoder.onnx", "decoder.onnx"):
            quantize_dynamic(str(model / name), str(dst / name), weight_type=QuantType.QInt8, per_channel=False)
    finally:
        root.setLevel(level)
    return dst


def main() -> None:
    args = bench_arguments(__doc__, "a 10 s input instead of 60 s, fewer repeats")
    seconds = 10.0 if args.quick else 60.0
    repeats = 2 if args.quick else 3
    tmp = tempfile.TemporaryDirectory()
    folder = Path(tmp.name)
    model = args.model
    if not (model / "encoder.onnx").is_file():
        model = make_synthetic_bundle(folder / "synthetic-enc", encoder=True)
        print(f"({args.model} has no encoder: using a synthetic bundle with one)")
    bundle = load_bundle(model, precision="float32")
    meta = bundle.meta
    src, what = write_input(folder, seconds)
    x, info = read_input(src, meta.sample_rate)
    length = len(x) / meta.sample_rate
    hop_s = meta.hop / meta.sample_rate
    print(f"model {model} (n_fft {meta.n_fft}, hop {meta.hop}), input: {what}, {length:.1f} s")
    figures: dict = {"model": str(model), "input": what, "seconds": length, "hop": meta.hop}

    # warm up the sessions and caches once
    EffectChain(bundle).process(x[: 4 * meta.sample_rate])
    out = folder / "out.wav"

    print("\n1. speed (best of %d), x real time" % repeats)
    rows = []
    for phase in ("input", "rtpghi"):
        for threads in (1, 2):
            settings = EffectSettings(phase=phase)
            cmd = length / best(lambda: process_file(bundle, src, out, settings, threads=threads), repeats)
            chain_only = length / best(lambda: EffectChain(bundle, settings, threads=threads).process(x), repeats)
            rows.append((f"aedaemon process, phase {phase}, threads {threads}", cmd, chain_only))
            figures[f"process_{phase}_threads{threads}_rtf"] = cmd
            figures[f"chain_{phase}_threads{threads}_rtf"] = chain_only
    # the whole command, as a user runs it (in this process: no interpreter start-up)
    t0 = time.perf_counter()
    cli_main(["process", str(src), "--out", str(out), "--model", str(model)])
    figures["cli_rtf"] = length / (time.perf_counter() - t0)
    static = render_baseline(bundle, length, folder / "render.wav", False, repeats)
    changing = render_baseline(bundle, length, folder / "render.wav", True, repeats)
    figures["render_static_rtf"], figures["render_changing_rtf"] = static, changing
    for name, cmd, chain_only in rows:
        print(f"  {name:44s} {cmd:7.0f}x   (chain alone {chain_only:5.0f}x)")
    print(f"  {'aedaemon process via the CLI (load + run)':44s} {figures['cli_rtf']:7.0f}x")
    print(f"  {'baseline: aedaemon render, static':44s} {static:7.0f}x")
    print(f"  {'baseline: aedaemon render, all changing':44s} {changing:7.0f}x   (a decode per hop, batch 1)")
    fastest = max(r[1] for r in rows)
    default = figures["process_input_threads1_rtf"]
    print(f"  goal >= {GOAL_RTF:.0f}x: default (input phase, threads 1) {default:.0f}x, best {fastest:.0f}x "
          f"-> {'met' if default >= GOAL_RTF else 'NOT met'}")
    figures["goal_rtf"] = GOAL_RTF

    print("\n2. per frame (input phase, threads 1), microseconds; a frame is %.1f ms of sound" % (1e3 * hop_s))
    chain = EffectChain(bundle, threads=1)
    chain.process(x)
    st = chain.stats
    per = {k: 1e6 * v / max(1, st.frames) for k, v in st.timings.items()}
    total = 1e6 * st.wall / max(1, st.frames)
    per["other"] = total - sum(per.values())
    for k, v in per.items():
        print(f"  {k:12s} {v:6.1f}")
    print(f"  {'total':12s} {total:6.1f}   = {1e6 * hop_s / total:.0f}x real time; "
          f"{st.frames} frames, {st.silent} silent, {st.encodes} encoded, {st.decodes} decoded")
    figures["per_frame_us"] = per
    figures["per_frame_total_us"] = total

    print("\n3. fidelity (spectral convergence over the sounding frames, dB)")
    fid = fidelity(bundle, x)
    figures["fidelity"] = fid
    gap = {p: fid[f"sc_effect_{p}_vs_input_db"] - fid["sc_model_vs_input_db"] for p in ("input", "rtpghi")}
    print(f"  model's own encode -> decode vs input          {fid['sc_model_vs_input_db']:7.2f}")
    print(f"  effect output, input phase, vs input           {fid['sc_effect_input_vs_input_db']:7.2f}  "
          f"({gap['input']:+.2f} dB: goal <= +1)")
    print(f"  effect output, RTPGHI, vs input                {fid['sc_effect_rtpghi_vs_input_db']:7.2f}  "
          f"({gap['rtpghi']:+.2f} dB: goal <= +1)")
    print(f"  effect output, input phase, vs reconstruction  {fid['sc_effect_input_vs_reconstruction_db']:7.2f}")
    print(f"  effect output, RTPGHI, vs reconstruction       {fid['sc_effect_rtpghi_vs_reconstruction_db']:7.2f}")
    print(f"  wet frames vs reconstruction                   {fid['sc_wet_frames_vs_reconstruction_db']:7.1f}")
    print(f"  mix 0 vs input: max error {fid['mix0_max_error']:.2g} at latency {fid['latency_samples']} "
          f"(goal <= 1e-4)")
    print(f"  unit {fid['scale_unit']} x 0.3 in the effect vs on the encoded latents: "
          f"{fid['sc_scaled_wet_vs_scaled_latents_db']:.1f} dB (the change itself: "
          f"{fid['sc_scaled_vs_unscaled_reconstruction_db']:.1f} dB)")
    print("\n4. int8 (S8) weights for both networks, quantised here (not shipped)")
    q = int8_bundle(model, folder)
    if q is None:
        print("  skipped: onnxruntime.quantization needs the onnx package")
    else:
        qb = load_bundle(q, precision="float32")
        EffectChain(qb).process(x[: 4 * meta.sample_rate])
        cmd = length / best(lambda: process_file(qb, src, out, EffectSettings()), repeats)
        chain_only = length / best(lambda: EffectChain(qb).process(x), repeats)
        qfid = fidelity(qb, x)
        y32 = EffectChain(bundle).process(x)
        y8 = EffectChain(qb).process(x)
        c = EffectChain(bundle)
        a = frames_stft(c, x)
        keep = a.max(axis=1) > 0
        sc8 = db(sc(frames_stft(c, y8)[keep], a[keep]))
        sc32 = db(sc(frames_stft(c, y32)[keep], a[keep]))
        figures["int8_s8"] = {"process_rtf": cmd, "chain_rtf": chain_only, "sc_effect_vs_input_db": sc8,
                              "sc_effect_float32_vs_input_db": sc32, "fidelity": qfid}
        print(f"  aedaemon process, phase input, threads 1     {cmd:7.0f}x   (chain alone {chain_only:5.0f}x)")
        print(f"  effect output vs input: {sc8:.2f} dB (float32 networks: {sc32:.2f})")
        print(f"  its own encode -> decode vs input {qfid['sc_model_vs_input_db']:.2f}, effect output "
              f"{qfid['sc_effect_input_vs_input_db']:.2f} dB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    tmp.cleanup()


if __name__ == "__main__":
    main()
