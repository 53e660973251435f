"""precision "auto" times both decoders at load and keeps the faster (issue 14 item 3): int8 is
not always faster (a Raspberry Pi 4's A72 has no int8 dot-product instructions). Real ONNX
decoders of very different cost stand in for a board where one precision is slow."""

from __future__ import annotations

import logging
import shutil

from aedaemon.model import load_bundle
from aedaemon.synthetic import make_synthetic_bundle


def _bundle_with_int8_slot(tmp_path, name: str, hidden_ref: int, hidden_int8: int):
    ref = make_synthetic_bundle(tmp_path / name, name=name, hidden=hidden_ref)
    other = make_synthetic_bundle(tmp_path / f"{name}-other", name="other", hidden=hidden_int8)
    shutil.copy(other / "decoder.onnx", ref / "decoder-int8.onnx")
    return ref


def test_auto_keeps_the_reference_when_the_int8_decoder_is_slower_here(tmp_path, caplog):
    caplog.set_level(logging.INFO, "aedaemon.model")
    path = _bundle_with_int8_slot(tmp_path, "slowint8", hidden_ref=16, hidden_int8=1536)
    b = load_bundle(path)
    assert b.precision == "float32"
    assert b.decode_us["int8"] > b.decode_us["float32"]
    assert "precision auto" in caplog.text and "float32" in caplog.text


def test_auto_takes_int8_when_it_is_clearly_faster(tmp_path):
    path = _bundle_with_int8_slot(tmp_path, "fastint8", hidden_ref=1536, hidden_int8=16)
    b = load_bundle(path)
    assert b.precision == "int8" and b.decode_us["int8"] < 0.9 * b.decode_us["float32"]


def test_explicit_precisions_are_not_timed(tmp_path):
    path = _bundle_with_int8_slot(tmp_path, "explicit", hidden_ref=16, hidden_int8=1536)
    for p in ("int8", "float32"):
        b = load_bundle(path, precision=p)
        assert b.precision == p and b.decode_us == {}


def test_the_verdict_is_kept_for_the_same_files_and_redone_when_they_change(tmp_path):
    path = _bundle_with_int8_slot(tmp_path, "cached", hidden_ref=16, hidden_int8=1536)
    first = load_bundle(path)
    again = load_bundle(path)  # the same files: only the chosen decoder is loaded, no timing
    assert again.precision == first.precision == "float32" and again.decode_us == first.decode_us
    shutil.copy(path / "decoder.onnx", path / "decoder-int8.onnx")  # now the same network in both slots
    fresh = load_bundle(path)
    assert fresh.decode_us != first.decode_us  # timed again
