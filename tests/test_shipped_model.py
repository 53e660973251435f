"""The shipped models/default: a valid bundle that `make run` can start, small enough to ship,
conditioned well enough that each pitch class sounds like itself, end to end through render."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from aedaemon.model import load_bundle
from aedaemon.render import read_wav
from aedaemon.dsp.stft import stft_magnitude
from aedaemon.train import PITCH_CLASSES
from aedaemon.train.corpus import dominant_pitch_class
from aedaemon.train.evaluate import _session, mesh_chroma_accuracy
from daemon_harness import REPO

SHIPPED = REPO / "models" / "default"


def test_shipped_model_loads_and_is_small():
    bundle = load_bundle(SHIPPED)
    assert bundle.precision == "int8"  # what `make run` plays
    meta = bundle.meta
    assert meta.name == "default"
    assert (meta.latent_size, meta.n_fft, meta.hop, meta.sample_rate) == (8, 4096, 1024, 44100)
    assert meta.conditioning == "chroma12"
    assert (SHIPPED / "decoder.onnx").stat().st_size <= 12 * 2**20
    frame = bundle.decode(np.asarray(meta.default_latent, np.float32), np.eye(12, dtype=np.float32)[4])
    assert frame.shape == (2049,) and np.all(np.isfinite(frame)) and frame.max() > 0


@pytest.mark.parametrize("decoder", ["decoder.onnx", "decoder-int8.onnx"])
def test_shipped_model_chroma_conditioning_holds_over_the_latent_mesh(decoder):
    """Colonel & Keene's mesh accuracy, recomputed from the ONNX decoders (not read from model.json)."""
    acc = mesh_chroma_accuracy(_session(SHIPPED / decoder), 8)
    assert min(acc.values()) >= 0.80, acc
    assert np.mean(list(acc.values())) >= 0.90, acc


def test_render_with_shipped_model_sounds_the_requested_pitch_class(tmp_path):
    for name in ("C", "E", "G#"):
        out = tmp_path / f"{name}.wav"
        subprocess.run(
            [sys.executable, "-m", "aedaemon.cli", "render", "--model", str(SHIPPED), "--chroma", name,
             "--seconds", "1.5", "--out", str(out)],
            check=True, capture_output=True, timeout=60,
        )
        audio, sr = read_wav(out)
        assert sr == 44100 and np.abs(audio).max() > 0.01
        mag = stft_magnitude(audio, 4096, 1024)[4:-4]  # skip the fade-in and the tail
        classes = dominant_pitch_class(mag)
        share = np.mean(classes == PITCH_CLASSES.index(name))
        assert share >= 0.9, (name, np.bincount(classes, minlength=12))
