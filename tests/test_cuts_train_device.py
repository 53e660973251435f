"""Paper cut: `aedaemon train --device auto|cpu|cuda|mps`. auto picks CUDA, else MPS, else the
CPU; a device this machine lacks is one line and exit 2; the bundle records the device. Real
`aedaemon train` commands on a real corpus of synthetic tones."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from aedaemon.train.train import TrainError, resolve_device
from test_train_pipeline import ROOT, cli, one_line_error, tone_corpus  # noqa: F401 - tone_corpus is a fixture


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    mps = torch.backends.mps
    for cuda, metal, want in ((True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(mps, "is_available", lambda metal=metal: metal)
        assert resolve_device("auto") == want
        assert resolve_device("cpu") == "cpu"


def test_an_unknown_device_is_refused():
    with pytest.raises(TrainError, match="--device must be one of auto, cpu, cuda, mps, got 'tpu'"):
        resolve_device("tpu")


def test_cuda_without_cuda_is_one_line(tone_corpus, tmp_path):  # noqa: F811
    # no CUDA device visible, whatever this machine has (CUDA_VISIBLE_DEVICES="" hides them all)
    env = dict(os.environ, PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, "-m", "aedaemon.cli", "train", str(tone_corpus), "--out",
                          str(tmp_path / "m"), "--device", "cuda", "-q"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)  # fmt: skip
    why = "built without CUDA; install a CUDA build" if torch.version.cuda is None else "sees no CUDA device"
    one_line_error(res, "--device cuda: ", why, "--device cpu")
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.partial").exists()


def test_mps_without_mps_is_one_line(tone_corpus, tmp_path):  # noqa: F811
    res = cli("train", str(tone_corpus), "--out", str(tmp_path / "m"), "--device", "mps", "-q")
    one_line_error(res, "--device mps: ", "not available here", "--device cpu")


def test_cli_refuses_a_device_it_does_not_know(tone_corpus, tmp_path):  # noqa: F811
    res = cli("train", str(tone_corpus), "--out", str(tmp_path / "m"), "--device", "tpu")
    assert res.returncode == 2 and "invalid choice: 'tpu'" in res.stderr, res.stderr


def test_the_bundle_records_the_device_it_was_trained_on(tone_corpus, tmp_path):  # noqa: F811
    want = resolve_device("auto")
    res = cli("train", str(tone_corpus), "--out", str(tmp_path / "auto"), "--epochs", "1", "-q")
    assert res.returncode == 0, res.stderr
    assert f"training on {want}" in res.stderr
    assert json.loads((tmp_path / "auto" / "model.json").read_text())["training"]["device"] == want
    res = cli("train", str(tone_corpus), "--out", str(tmp_path / "cpu"), "--epochs", "1", "-q", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "cpu" / "model.json").read_text())["training"]["device"] == "cpu"
    if want == "cpu":  # auto is the CPU here: the same command, the same bytes
        assert (tmp_path / "auto" / "decoder.onnx").read_bytes() == (tmp_path / "cpu" / "decoder.onnx").read_bytes()
