"""Model bundle validation and the offline CLI (`aedaemon render`, `aedaemon info`) as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from aedaemon.errors import ModelError
from aedaemon.model import list_models, load_bundle
from aedaemon.render import read_wav
from aedaemon.synthetic import make_synthetic_bundle

from audio_helpers import peak_frequency

AEDAEMON = [sys.executable, "-m", "aedaemon.cli"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*AEDAEMON, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def assert_refused(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture()
def bundle_copy(synthetic_model, tmp_path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(synthetic_model, dst)
    return dst


def edit_meta(folder: Path, **changes) -> None:
    meta = json.loads((folder / "model.json").read_text())
    for k, v in changes.items():
        if v is None:
            meta.pop(k)
        else:
            meta[k] = v
    (folder / "model.json").write_text(json.dumps(meta))


# ---- bundle validation ------------------------------------------------------------------


def test_load_valid_bundle_and_list_models(synthetic_model, models_dir):
    b = load_bundle(synthetic_model)
    assert b.meta.latent_size == 8 and b.meta.conditioned
    assert list_models(models_dir) == ["small", "synthetic"]
    assert load_bundle("small", models_dir).name == "small"


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"latent_size": None}, "missing field 'latent_size'"),
        ({"latent_size": 4, "default_latent": [0.5] * 4}, "decoder"),
        ({"n_bins": 1000}, "n_bins"),
        ({"colour": "blue"}, "unknown field 'colour'"),
        ({"sample_rate": "fast"}, "sample_rate"),
        ({"name": "../etc"}, "name"),
        ({"default_latent": [0.5] * 3}, "default_latent"),
        ({"control_range": [1, 0]}, "control_range"),
    ],
)
def test_bad_model_json_is_refused_with_the_field_named(bundle_copy, changes, needle):
    edit_meta(bundle_copy, **changes)
    with pytest.raises(ModelError, match=None) as err:
        load_bundle(bundle_copy)
    assert needle in str(err.value)


def test_not_json_missing_decoder_and_corrupt_decoder(bundle_copy):
    (bundle_copy / "model.json").write_text("{ not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_bundle(bundle_copy)
    make_synthetic_bundle(bundle_copy)
    (bundle_copy / "decoder.onnx").unlink()
    with pytest.raises(ModelError, match="decoder.onnx is missing"):
        load_bundle(bundle_copy)
    (bundle_copy / "decoder.onnx").write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(ModelError, match="decoder.onnx"):
        load_bundle(bundle_copy)


def test_graph_with_wrong_dtype_or_nan_weights_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, numpy_helper

    folder = make_synthetic_bundle(tmp_path / "m")
    model = onnx.load(str(folder / "decoder.onnx"))
    w = numpy_helper.to_array(model.graph.initializer[0]).copy()
    w[0, 0] = np.nan
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, model.graph.initializer[0].name))
    onnx.save(model, str(folder / "decoder.onnx"))
    with pytest.raises(ModelError, match="NaN"):
        load_bundle(folder)

    folder = make_synthetic_bundle(tmp_path / "d")
    model = onnx.load(str(folder / "decoder.onnx"))
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    onnx.save(model, str(folder / "decoder.onnx"))
    with pytest.raises(ModelError):
        load_bundle(folder)


# ---- CLI ---------------------------------------------------------------------------------


def test_info_prints_metadata(synthetic_model):
    proc = run_cli("info", str(synthetic_model))
    assert proc.returncode == 0
    assert "8 units" in proc.stdout and "chroma12" in proc.stdout


def test_render_writes_a_readable_wav(synthetic_model, tmp_path):
    out = tmp_path / "tone.wav"
    proc = run_cli("render", "--model", str(synthetic_model), "--chroma", "E", "--seconds", "1.5", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "real time" in proc.stderr
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (44100, 1, 2)
        assert w.getnframes() == int(1.5 * 44100)
    x, sr = read_wav(out)
    assert np.max(np.abs(x)) > 0.05 and np.max(np.abs(x)) <= 1.0


@pytest.mark.parametrize("phase", ["rtpghi", "noise", "canne"])
def test_render_every_phase_method_and_hop(synthetic_model, tmp_path, phase):
    out = tmp_path / f"{phase}.wav"
    proc = run_cli("render", "--model", str(synthetic_model), "--phase", phase, "--hop", "512", "--seconds", "0.5",
                   "--latent", "0.2,0.8,0.1,0.5,0.5,0.9,0.3,0.0", "--transpose", "-3", "--freq-shift", "4",
                   "--gain", "0.8", "--glide", "0.1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    x, _ = read_wav(out)
    assert len(x) == 22050 and np.all(np.isfinite(x))


def test_score_applies_each_change_at_its_time(synthetic_model, tmp_path):
    score = tmp_path / "score.json"
    score.write_text(json.dumps([
        {"time": 0.0, "address": "/chroma", "args": ["C"]},
        {"time": 1.0, "address": "/transpose", "args": [12.0]},
        {"time": 2.0, "address": "/stop", "args": []},
    ]))
    out = tmp_path / "score.wav"
    proc = run_cli("render", "--model", str(synthetic_model), "--score", str(score), "--seconds", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    x, sr = read_wav(out)
    f1 = peak_frequency(x[int(0.3 * sr) : int(0.95 * sr)], sr)
    f2 = peak_frequency(x[int(1.3 * sr) : int(1.95 * sr)], sr)
    assert f2 / f1 == pytest.approx(2.0, rel=0.01)
    assert np.max(np.abs(x[int(2.2 * sr) :])) < 1e-3  # stopped (16-bit dither aside)


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--model", "no-such-model"], ["unknown model 'no-such-model'"]),
        (["--chroma", "H"], ["unknown pitch class 'H'"]),
        (["--transpose", "30"], ["transpose 30 is out of range"]),
        (["--latent", "0.1,0.2"], ["expects 8 values"]),
        (["--latent", "a,b"], ["comma-separated"]),
        (["--hop", "1000"], ["--hop 1000"]),
        (["--seconds", "-1"], ["--seconds"]),
    ],
)
def test_render_refuses_bad_flags_with_one_line(synthetic_model, tmp_path, args, needles):
    base = ["render", "--out", str(tmp_path / "x.wav")]
    if "--model" not in args:
        base += ["--model", str(synthetic_model)]
    assert_refused(run_cli(*base, *args), *needles)


def test_render_refuses_a_model_json_with_a_missing_field(bundle_copy, tmp_path):
    edit_meta(bundle_copy, hop=None)
    assert_refused(run_cli("render", "--model", str(bundle_copy), "--out", str(tmp_path / "x.wav")), "missing field 'hop'")


def test_render_refuses_a_graph_whose_shapes_do_not_match(bundle_copy, tmp_path):
    edit_meta(bundle_copy, latent_size=6, default_latent=[0.5] * 6)
    assert_refused(run_cli("render", "--model", str(bundle_copy), "--out", str(tmp_path / "x.wav")), "shape")


@pytest.mark.parametrize(
    "events, needle",
    [
        ([{"time": 1, "address": "/nope", "args": []}], 'unknown address "/nope"'),
        ([{"time": "soon", "address": "/chroma", "args": [1]}], "'time' must be a number"),
        ([{"time": -1, "address": "/chroma", "args": [1]}], "'time' must be a number"),
        ([{"time": 1, "address": "/chroma", "args": [12]}], "pitch class 12 is out of range"),
        ({"not": "a list"}, "expected a JSON list"),
    ],
)
def test_render_refuses_bad_scores(synthetic_model, tmp_path, events, needle):
    score = tmp_path / "bad.json"
    score.write_text(json.dumps(events))
    proc = run_cli("render", "--model", str(synthetic_model), "--score", str(score), "--out", str(tmp_path / "x.wav"))
    assert_refused(proc, needle)


def test_render_refuses_a_missing_score(synthetic_model, tmp_path):
    proc = run_cli("render", "--model", str(synthetic_model), "--score", str(tmp_path / "none.json"))
    assert_refused(proc, "not found")


def test_decoder_precision_choice(synthetic_model, tmp_path):
    """auto takes decoder-int8.onnx only when the bundle ships it; int8 without it says how to make one."""
    assert load_bundle(synthetic_model).precision == "float32"
    with pytest.raises(ModelError, match="aedaemon quantize"):
        load_bundle(synthetic_model, precision="int8")
    with pytest.raises(ModelError, match="precision must be one of"):
        load_bundle(synthetic_model, precision="fp8")
    from aedaemon.train.quantize import quantize_bundle

    copy = tmp_path / "q"
    shutil.copytree(synthetic_model, copy)
    lines: list = []
    stats = quantize_bundle(copy, log=lines.append)
    assert stats["relative_error_db"] < -20 and "decoder-int8.onnx" in lines[0]
    auto = load_bundle(copy)  # both timed here (tests/test_precision_auto.py): the faster one
    fast = auto.decode_us["int8"] < 0.9 * auto.decode_us["float32"]
    assert auto.precision == ("int8" if fast else "float32")
    b = load_bundle(copy, precision="int8")
    assert b.precision == "int8"
    ref = load_bundle(copy, precision="float32")
    z = np.full(b.meta.latent_size, 0.5, np.float32)
    c = np.eye(12, dtype=np.float32)[4]
    got, want = b.decode(z, c).copy(), ref.decode(z, c).copy()
    assert np.sum((got - want) ** 2) < 0.01 * np.sum(want**2)


def test_corrupt_int8_decoder_falls_back_to_float32_under_auto(synthetic_model, tmp_path, caplog):
    copy = tmp_path / "m"
    shutil.copytree(synthetic_model, copy)
    (copy / "decoder-int8.onnx").write_bytes(b"not an onnx graph")
    with caplog.at_level("WARNING", logger="aedaemon.model"):
        b = load_bundle(copy)
    assert b.precision == "float32"
    assert "onnxruntime cannot load it" in caplog.text and "using the float32 decoder" in caplog.text
    with pytest.raises(ModelError, match="decoder-int8.onnx: onnxruntime cannot load it"):
        load_bundle(copy, precision="int8")  # asked for explicitly: refused, not replaced


def test_devices_lists_jack_audio_and_the_controllers_midi_port():
    """`aedaemon devices`: what to put in `device =` and the [midi] port pattern."""
    from midi_rig import NanoKontrol2

    from daemon_harness import ensure_jackd

    ensure_jackd()
    ctl = NanoKontrol2()
    try:
        res = subprocess.run([sys.executable, "-m", "aedaemon.cli", "devices"], capture_output=True, text=True,
                             timeout=30)
    finally:
        ctl.close()
    assert res.returncode == 0, res.stderr
    assert "audio outputs:" in res.stdout and "JACK Audio Connection Kit" in res.stdout
    assert "MIDI (Jack):" in res.stdout and "nanoKONTROL2:nanoKONTROL2 SLIDER/KNOB" in res.stdout
    assert "ALSA lib" not in res.stderr  # no ALSA noise where there is no sequencer
