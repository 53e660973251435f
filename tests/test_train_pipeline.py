"""Training pipeline end to end on synthetic tones of known pitch classes (real WAV/FLAC files,
real PyTorch training, real ONNX export, the real renderer)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from aedaemon.model import load_bundle
from aedaemon.train import CHROMA_SIZE, N_BINS
from aedaemon.train.corpus import build_from_audio, dominant_pitch_class, load_corpus

SR = 44100
ROOT = Path(__file__).resolve().parents[1]


def tone(note: int, seconds: float, sr: int = SR, rolloff: float = 1.0, n_harm: int = 12) -> np.ndarray:
    f0 = 440.0 * 2 ** ((note - 69) / 12)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * k * f0 * t) * k**-rolloff for k in range(1, n_harm + 1) if k * f0 < sr / 2 * 0.9)
    env = np.minimum(1.0, np.minimum(t / 0.01, (seconds - t) / 0.01))
    return (0.3 * y * env / np.max(np.abs(y))).astype(np.float32)


def write_tones(folder: Path, n_files: int = 8, notes_per_file: int = 3, seconds: float = 0.4) -> dict[str, list[int]]:
    """n_files sound files with different timbres; each plays a few notes, with short silences.
    A mix of formats, channel counts and sample rates, converted by the corpus builder."""
    folder.mkdir(parents=True, exist_ok=True)
    played = {}
    rng = np.random.default_rng(0)
    for i in range(n_files):
        notes = [int(n) for n in rng.integers(48, 73, notes_per_file)]
        gap = np.zeros(int(0.2 * SR), np.float32)
        y = np.concatenate([np.concatenate([tone(n, seconds, rolloff=0.6 + 0.2 * i), gap]) for n in notes])
        if i % 3 == 0:
            path, data, sr = folder / f"tone{i}.wav", np.stack([y, 0.5 * y], 1), SR  # stereo
        elif i % 3 == 1:
            from scipy.signal import resample_poly

            path, data, sr = folder / f"tone{i}.flac", resample_poly(y, 160, 147), 48000
        else:
            path, data, sr = folder / f"tone{i}.wav", y, SR
        sf.write(str(path), data, sr)
        played[path.name] = notes
    return played


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "aedaemon.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


def one_line_error(res: subprocess.CompletedProcess, *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in res.stderr
    errors = [ln for ln in lines if "error:" in ln]
    assert len(errors) == 1 and lines[-1] == errors[0], res.stderr  # one line, the last one
    for n in needles:
        assert n in errors[0], errors[0]


@pytest.fixture(scope="module")
def tone_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tones")
    write_tones(root / "audio")
    res = cli("corpus", str(root / "audio"), "--out", str(root / "corpus"), "--quiet")
    assert res.returncode == 0, res.stderr
    return root / "corpus"


# ---------------------------------------------------------------- corpus


def test_chroma_label_is_each_frames_own(tmp_path):
    # one file: C4 for 1 s, then G4 for 1 s: labels must follow the note, frame by frame
    y = np.concatenate([tone(60, 1.0), tone(67, 1.0)])
    for n, name in ((64, "e.wav"), (69, "a.wav")):
        sf.write(str(tmp_path / name), tone(n, 0.5), SR)
    sf.write(str(tmp_path / "cg.wav"), y, SR)
    build_from_audio([tmp_path], tmp_path / "corpus")
    c = load_corpus(tmp_path / "corpus")
    files = [f["path"] for f in c.manifest["files"]]
    cg = files.index(str(tmp_path / "cg.wav"))
    labels = c.labels[c.file_index == cg]
    # frames are in time order; the frames that straddle the change may go either way
    assert len(labels) >= 80
    switch = int(np.argmax(labels == 7))
    assert set(labels[: switch]) == {0}
    assert set(labels[switch + 4 :]) == {7}
    assert 35 <= switch <= 45  # about 1 s of 23 ms hops
    for name, pc in (("e.wav", 4), ("a.wav", 9)):
        assert set(c.labels[c.file_index == files.index(str(tmp_path / name))]) == {pc}
    # every frame is normalised to max 1 and labelled by its own dominant chroma
    frames = c.frames.astype(np.float32)
    assert np.allclose(frames.max(axis=1), 1.0, atol=1e-3)
    assert np.array_equal(dominant_pitch_class(frames), c.labels)


def test_silent_frames_dropped_and_formats_converted(tmp_path):
    played = write_tones(tmp_path / "audio", n_files=3, notes_per_file=2, seconds=0.5)
    # a leading second of silence must not produce frames
    y, _ = sf.read(str(tmp_path / "audio" / "tone2.wav"), dtype="float32")
    sf.write(str(tmp_path / "audio" / "tone2.wav"), np.concatenate([np.zeros(SR, np.float32), y]), SR)
    man = build_from_audio([tmp_path / "audio"], tmp_path / "corpus")
    counts = {Path(f["path"]).name: f["frames"] for f in man["files"]}
    assert abs(counts["tone2.wav"] - counts["tone0.wav"]) <= 4, counts  # same notes length, silence gone
    c = load_corpus(tmp_path / "corpus")
    assert c.frames.shape[1] == N_BINS
    for i, f in enumerate(man["files"]):  # flac at 48 kHz and stereo files land on the right notes
        notes = played[Path(f["path"]).name]
        got = set(c.labels[c.file_index == i].tolist())
        assert {n % 12 for n in notes} <= got, (f["path"], notes, got)


def test_split_is_by_source_file_never_by_frame(tone_corpus):
    c = load_corpus(tone_corpus)
    man = json.loads((tone_corpus / "manifest.json").read_text())
    for i, f in enumerate(man["files"]):
        splits = set(c.split[c.file_index == i].tolist())
        assert len(splits) == 1, (f["path"], splits)
        assert ("train", "validation", "test")[splits.pop()] == f["split"]
    by_split = {s: {f["path"] for f in man["files"] if f["split"] == s} for s in ("train", "validation", "test")}
    assert all(by_split.values())
    assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] & by_split["validation"])
    assert sum(man["frames"].values()) == len(c.frames)
    assert len(man["files"]) == 8


def test_soundfont_corpus_split_by_program(tmp_path):
    sf2 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    assert sf2.is_file(), "fluid-soundfont-gm is installed by .ci/setup"
    res = cli("corpus", "--soundfont", str(sf2), "--programs", "0-3", "--frames-per-note", "6",
              "--out", str(tmp_path / "gm"), "--quiet")  # fmt: skip
    assert res.returncode == 0, res.stderr
    man = json.loads((tmp_path / "gm" / "manifest.json").read_text())
    assert [f["program"] for f in man["files"]] == [0, 1, 2, 3]
    assert man["notes"][1] - man["notes"][0] >= 24  # at least two octaves
    assert {f["split"] for f in man["files"]} == {"train", "validation", "test"}
    assert man["label_matches_played_note"] > 0.75
    c = load_corpus(tmp_path / "gm")
    for i in range(4):
        assert len(set(c.split[c.file_index == i].tolist())) == 1
    # labels follow the played note (pitch class) for nearly every frame
    assert np.mean(c.labels == c.note % 12) > 0.75


# ---------------------------------------------------------------- train → export → render


def test_end_to_end_train_export_load_render(tone_corpus, tmp_path):
    t0 = time.monotonic()
    out = tmp_path / "models" / "tones"
    res = cli("train", str(tone_corpus), "--out", str(out), "--epochs", "2", "--seed", "3", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "epoch 2/2" in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["decoder-int8.onnx", "decoder.onnx", "encoder.onnx", "model.json"]
    assert not (tmp_path / "models" / "tones.partial").exists()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["tones"]  # no temp folders left

    bundle = load_bundle(out)
    assert bundle.precision == "int8"  # train quantizes after export; auto takes it
    meta = bundle.meta
    assert meta.latent_size == 8 and meta.conditioned and meta.n_bins == N_BINS
    q = meta.training.model_extra["int8_decoder"]
    assert q["relative_error_db"] < -20 and q["bytes"] < (out / "decoder.onnx").stat().st_size / 3
    assert meta.training.epochs == 2 and meta.training.seed == 3
    assert meta.training.frames["train"] > 0 and "train" in meta.training.command
    z = np.random.default_rng(0).uniform(0, 1, (5, 8)).astype(np.float32)
    frames = bundle.decode_batch(z, np.eye(CHROMA_SIZE, dtype=np.float32)[:5])
    assert frames.shape == (5, N_BINS) and np.all(np.isfinite(frames)) and np.all(frames >= 0)
    assert (out / "decoder.onnx").stat().st_size <= 12 * 1024 * 1024

    wav = tmp_path / "x.wav"
    res = cli("render", "--model", str(out), "--seconds", "1", "--chroma", "E", "--out", str(wav))
    assert res.returncode == 0, res.stderr
    y, sr = sf.read(str(wav))
    assert sr == 44100 and abs(len(y) - sr) <= 1024 and np.all(np.isfinite(y))

    res = cli("evaluate", str(out))
    assert res.returncode == 0, res.stderr
    t = json.loads((out / "model.json").read_text())["training"]
    assert t["test_mse_int8"] > 0 and set(t["chroma_accuracy_int8"]) == set(t["chroma_accuracy"])
    assert t["test_mse"] > 0 and set(t["chroma_accuracy"]) == {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"}
    assert (out / "latent.png").stat().st_size > 1000 and (out / "reconstruction.png").stat().st_size > 1000
    load_bundle(out)  # still a valid bundle after evaluate rewrote model.json
    assert time.monotonic() - t0 < 60


def test_training_is_deterministic_for_a_seed(tone_corpus, tmp_path):
    """Two `aedaemon train` runs with one seed write the same bytes. (Two trainings inside one
    Python process that did other work in between need not: the CPU kernels' summation order
    can differ with the process's state, so the guarantee is per command, as users run it.)"""
    for name in ("a", "b"):
        res = cli("train", str(tone_corpus), "--out", str(tmp_path / name), "--epochs", "2", "--seed", "5", "-q")
        assert res.returncode == 0, res.stderr
    a = (tmp_path / "a" / "decoder.onnx").read_bytes()
    b = (tmp_path / "b" / "decoder.onnx").read_bytes()
    assert a == b


def test_interrupted_run_resumes_to_the_same_model(tone_corpus, tmp_path):
    out = tmp_path / "m"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    args = [sys.executable, "-m", "aedaemon.cli", "train", str(tone_corpus), "--out", str(out), "--epochs", "4", "--seed", "2", "-q"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    ckpt = tmp_path / "m.partial" / "checkpoint.pt"
    deadline = time.monotonic() + 40
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ckpt.exists()
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.wait(20) == 2, err
    assert "interrupted" in err and "rerun the same command to resume" in err and "Traceback" not in err
    assert not out.exists()  # no half-written bundle

    res = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "resuming" in res.stderr
    rec = json.loads((out / "model.json").read_text())["training"]
    assert rec["epochs"] == 4 and [h["epoch"] for h in rec["history"]] == [1, 2, 3, 4]
    assert not (tmp_path / "m.partial").exists()

    # the resumed run ends where an uninterrupted one does
    from aedaemon.train.train import TrainConfig, train

    train(TrainConfig(corpus=str(tone_corpus), out=str(tmp_path / "straight"), epochs=4, seed=2, progress=False), log=lambda m: None)
    ref = json.loads((tmp_path / "straight" / "model.json").read_text())["training"]
    assert [h["val_loss"] for h in ref["history"]] == pytest.approx([h["val_loss"] for h in rec["history"]], rel=1e-5)
