"""Renderer benchmarks (issue 2): cost per hop, real-time factor, phase quality.

Prints, in one run and on this machine:
  1. microseconds per hop, static parameters vs every parameter changing every frame, for
     each phase method, for the engine with its compiled DSP swapped for the frozen NumPy
     implementations (benchmarks/engine_reference.NumpyEngine, the same output), and for the
     seed CANNe loop (benchmarks/seed_canne.py) as baseline;
  2. the real-time factor of offline rendering (`aedaemon render`'s code path) vs the seed;
  3. spectral convergence (dB) between requested magnitude frames and the STFT magnitude of
     the rendered audio, per phase method, on steady tones: band-limited sawtooths and
     General MIDI soundfont notes rendered by fluidsynth (when the soundfont is installed).

Usage: python benchmarks/bench_render.py [--model DIR] [--quick] [--json FILE]
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

from engine_reference import NumpyEngine  # noqa: E402
from seed_canne import SeedCanneLoop  # noqa: E402

from aedaemon.dsp.phase import PHASE_METHODS  # noqa: E402
from aedaemon.dsp.quality import resynthesize, spectral_convergence_db  # noqa: E402
from aedaemon.dsp.stft import stft_magnitude  # noqa: E402
from aedaemon.engine import LIVE_HOP, Engine, one_hot  # noqa: E402
from aedaemon.model import load_bundle  # noqa: E402
from common import bench_arguments  # noqa: E402
from aedaemon.render import render_to_wav  # noqa: E402
from aedaemon.synthetic import sawtooth  # noqa: E402

SR = 44100
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def best_of(fn, repeats: int = 3) -> float:
    return min(fn() for _ in range(repeats))


def time_engine(bundle, phase: str, changing: bool, hops: int, engine=Engine, hop: int = 1024) -> float:
    e = engine(bundle, phase=phase, hop=hop)
    e.update(playing=True)
    e.render(8 * 1024)
    rng = np.random.default_rng(0)
    n = bundle.meta.latent_size
    lo, hi = bundle.meta.control_range
    changes = [
        dict(
            latent=tuple(rng.uniform(lo, hi, n)),
            chroma=one_hot(int(rng.integers(12))),
            transpose=float(rng.uniform(-5, 5)),
            gain=float(rng.uniform(0.5, 1.0)),
        )
        for _ in range(3 * hops)
    ]
    runs = iter(range(3))

    def run() -> float:
        # every run gets its own changes: repeating them would hit the decode cache
        first = next(runs) * hops
        t0 = time.perf_counter()
        for k in range(first, first + hops):
            if changing:
                e.update(**changes[k])
            e.render_hop()
        return (time.perf_counter() - t0) / hops

    return best_of(run)


def time_seed(bundle, changing: bool, hops: int) -> float:
    loop = SeedCanneLoop(bundle, hop=1024)
    rng = np.random.default_rng(0)
    n = bundle.meta.latent_size
    lo, hi = bundle.meta.control_range
    latents = [list(rng.uniform(lo, hi, n)) for _ in range(hops)] if changing else [[0.5] * n] * hops
    chroma = list(one_hot(0))

    def run() -> float:
        t0 = time.perf_counter()
        for k in range(hops):
            loop.render_hop(latents[k], chroma)
        return (time.perf_counter() - t0) / hops

    return best_of(run)


def realtime_factor(bundle, seed_bundle, seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        e = Engine(bundle, hop=1024)
        e.update(playing=True)
        ours = render_to_wav(e, seconds, Path(tmp) / "x.wav")["realtime_factor"]
    loop = SeedCanneLoop(seed_bundle, hop=1024)
    latent = [0.5] * bundle.meta.latent_size
    chroma = list(one_hot(0))
    hops = int(seconds * SR / 1024)
    t0 = time.perf_counter()
    for _ in range(hops):
        (loop.render_hop(latent, chroma) * 32767).astype(np.int16).tobytes()
    seed = hops * 1024 / SR / (time.perf_counter() - t0)
    return ours, seed


def fluidsynth_note(program: int, note: int, seconds: float, tmp: Path) -> np.ndarray | None:
    """One sustained GM note rendered by fluidsynth, or None where fluidsynth is missing."""
    if not SOUNDFONT.exists() or not shutil.which("fluidsynth"):
        return None
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))
    track.append(mido.Message("program_change", program=program, time=0))
    track.append(mido.Message("note_on", note=note, velocity=100, time=0))
    track.append(mido.Message("note_off", note=note, velocity=0, time=int(seconds * 960)))
    midi_path = tmp / f"p{program}_{note}.mid"
    wav_path = tmp / f"p{program}_{note}.wav"
    mid.save(str(midi_path))
    subprocess.run(
        ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(SR), "-F", str(wav_path), str(SOUNDFONT), str(midi_path)],
        check=True,
        capture_output=True,
    )
    from aedaemon.render import read_wav

    audio, _ = read_wav(wav_path)  # fluidsynth writes 16-bit stereo; channel 0
    return audio


def phase_quality(quick: bool) -> list[dict]:
    tones: list[tuple[str, np.ndarray]] = [
        (f"sawtooth {f0:g} Hz", sawtooth(f0, 3.0, SR)) for f0 in ((110.0, 261.63, 440.0) if not quick else (220.0,))
    ]
    with tempfile.TemporaryDirectory() as tmp:
        gm = [(0, "piano"), (40, "violin"), (73, "flute"), (56, "trumpet"), (19, "organ")]
        for program, label in gm[: 2 if quick else None]:
            audio = fluidsynth_note(program, 60, 3.0, Path(tmp))
            if audio is not None:
                # the sustained middle of the note: steady, like the frames the decoder emits
                tones.append((f"GM {label} C4", audio[int(0.3 * SR) : int(2.6 * SR)]))
    rows = []
    for label, x in tones:
        S = stft_magnitude(x, 4096, 1024)
        row = {"tone": label}
        for m in PHASE_METHODS:
            row[m] = spectral_convergence_db(S, resynthesize(S, 4096, 1024, m), 4096, 1024)
        rows.append(row)
    return rows


def main() -> int:
    args = bench_arguments(__doc__, "fewer hops and tones (CI smoke run)")
    bundle = load_bundle(args.model)  # as the daemon runs it: the int8 decoder when the model has one
    reference = load_bundle(args.model, precision="float32")  # the seed code's float32 network
    hops = 100 if args.quick else 600
    print(
        f"model: {bundle.meta.name} ({bundle.meta.latent_size} units, {bundle.precision} decoder; the seed loop "
        f"and the 'float32' row run decoder.onnx), hop 1024 unless named, {hops} hops per figure, best of 3\n"
    )

    results: dict = {"model": bundle.meta.name, "per_hop_us": {}, "realtime_factor": {}}
    print(f"{'renderer':<24}{'static µs/hop':>15}{'× real time':>13}{'changing µs/hop':>17}{'× real time':>13}")
    rows = [(f"aedaemon {m}", 1024, lambda c, m=m: time_engine(bundle, m, c, hops)) for m in PHASE_METHODS]
    if bundle.precision != "float32":
        rows.append(("aedaemon rtpghi float32", 1024, lambda c: time_engine(reference, "rtpghi", c, hops)))
    rows.append(("rtpghi, NumPy DSP", 1024, lambda c: time_engine(bundle, "rtpghi", c, hops, NumpyEngine)))
    # the daemon's live default (engine.LIVE_HOP): the same work per hop, 4x the hops per second
    rows.append((f"rtpghi, hop {LIVE_HOP} (live)", LIVE_HOP,
                 lambda c: time_engine(bundle, "rtpghi", c, hops, hop=LIVE_HOP)))
    rows.append(("seed CANNe loop", 1024, lambda c: time_seed(reference, c, hops)))
    for label, hop, fn in rows:
        static, changing = fn(False), fn(True)
        seconds_per_hop = hop / SR
        results["per_hop_us"][label] = {"static": static * 1e6, "changing": changing * 1e6, "hop": hop,
                                        "rt_static": seconds_per_hop / static, "rt_changing": seconds_per_hop / changing}
        print(
            f"{label:<24}{static * 1e6:>15.0f}{seconds_per_hop / static:>12.0f}×"
            f"{changing * 1e6:>17.0f}{seconds_per_hop / changing:>12.0f}×"
        )
    base = results["per_hop_us"]["seed CANNe loop"]
    ours = results["per_hop_us"]["aedaemon rtpghi"]
    numpy_dsp = results["per_hop_us"]["rtpghi, NumPy DSP"]
    print(
        f"\nRTPGHI vs seed loop: {base['static'] / ours['static']:.1f}× faster static, "
        f"{base['changing'] / ours['changing']:.2f}× changing; compiled vs NumPy DSP: "
        f"{numpy_dsp['static'] / ours['static']:.2f}× static, {numpy_dsp['changing'] / ours['changing']:.2f}× changing"
    )

    seconds = 10.0 if args.quick else 30.0
    rtf_ours, rtf_seed = realtime_factor(bundle, reference, seconds)
    results["realtime_factor"] = {"aedaemon render (rtpghi)": rtf_ours, "seed CANNe loop": rtf_seed}
    print(f"\noffline render of {seconds:g} s to WAV: aedaemon {rtf_ours:.0f}× real time, seed loop {rtf_seed:.0f}×")

    print("\nspectral convergence, dB (lower is better), hop 1024:")
    print(f"{'tone':<22}" + "".join(f"{m:>10}" for m in PHASE_METHODS))
    quality = phase_quality(args.quick)
    for row in quality:
        print(f"{row['tone']:<22}" + "".join(f"{row[m]:>10.1f}" for m in PHASE_METHODS))
    mean = {m: float(np.mean([r[m] for r in quality])) for m in PHASE_METHODS}
    print(f"{'mean':<22}" + "".join(f"{mean[m]:>10.1f}" for m in PHASE_METHODS))
    results["spectral_convergence_db"] = quality
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
