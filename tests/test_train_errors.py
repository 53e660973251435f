"""Bad input to corpus/train/evaluate: one clear line, exit code 2, no traceback, nothing
half-written."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile as sf

from test_train_pipeline import ROOT, cli, one_line_error, tone


def test_unreadable_audio(tmp_path):
    (tmp_path / "bad.wav").write_text("this is not audio")
    res = cli("corpus", str(tmp_path / "bad.wav"), "--out", str(tmp_path / "c"))
    one_line_error(res, "bad.wav", "cannot read audio")
    assert not (tmp_path / "c").exists()


def test_empty_audio(tmp_path):
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0, np.float32), 44100)
    res = cli("corpus", str(tmp_path / "empty.wav"), "--out", str(tmp_path / "c"))
    one_line_error(res, "empty.wav", "no audio samples")


def test_silent_audio(tmp_path):
    for i in range(3):
        sf.write(str(tmp_path / f"s{i}.wav"), np.zeros(44100, np.float32), 44100)
    res = cli("corpus", str(tmp_path), "--out", str(tmp_path / "c"))
    one_line_error(res, "silent")


def test_folder_without_audio(tmp_path):
    (tmp_path / "notes.txt").write_text("no audio here")
    res = cli("corpus", str(tmp_path), "--out", str(tmp_path / "c"))
    one_line_error(res, "no audio files")
    res = cli("corpus", str(tmp_path / "missing"), "--out", str(tmp_path / "c"))
    one_line_error(res, "no such file or folder")
    res = cli("corpus", "--out", str(tmp_path / "c"))
    one_line_error(res, "no input")


def test_corpus_too_small_to_split(tmp_path):
    for i, n in enumerate((60, 64)):
        sf.write(str(tmp_path / f"t{i}.wav"), tone(n, 0.5), 44100)
    res = cli("corpus", str(tmp_path), "--out", str(tmp_path / "c"))
    one_line_error(res, "too small to split", "2 source file")
    assert not (tmp_path / "c" / "corpus.npz").exists()


def test_missing_soundfont(tmp_path):
    res = cli("corpus", "--soundfont", str(tmp_path / "nope.sf2"), "--out", str(tmp_path / "c"))
    one_line_error(res, "nope.sf2", "soundfont not found")


def test_train_on_missing_or_non_corpus(tmp_path):
    res = cli("train", str(tmp_path / "nothing"), "--out", str(tmp_path / "m"))
    one_line_error(res, "no such corpus folder")
    res = cli("train", str(tmp_path), "--out", str(tmp_path / "m"))
    one_line_error(res, "not a corpus folder")
    assert not (tmp_path / "m").exists()


def test_evaluate_non_model(tmp_path):
    res = cli("evaluate", str(tmp_path / "none"))
    one_line_error(res, "none")


def test_train_without_torch_names_the_extra(tmp_path):
    # a Python where `import torch` fails, as on a base install (sys.modules entry None = not importable)
    code = (
        "import sys; sys.modules['torch'] = None; "
        "from aedaemon.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, "train", str(tmp_path), "--out", str(tmp_path / "m")],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    one_line_error(res, "training needs the optional extra: pip install -e '.[train]'")
