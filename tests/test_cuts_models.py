"""Paper cut: a model is named by its folder everywhere (/model/list, /model/load, /status,
presets, the last state, logs), and /model/list shows only bundles that would load. Real
daemon subprocess, real sockets, real ONNX bundles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aedaemon.client import Client, OscFailure
from aedaemon.model import list_models, load_bundle
from aedaemon.synthetic import make_synthetic_bundle
from daemon_harness import Daemon


@pytest.fixture(scope="module")
def cut_models(tmp_path_factory) -> Path:
    """'synthetic' (fine), 'wrongname' (model.json says "other"), and three broken bundles."""
    root = tmp_path_factory.mktemp("cut-models")
    make_synthetic_bundle(root / "synthetic", name="synthetic")
    make_synthetic_bundle(root / "wrongname", name="other", latent_size=4, seed=3)
    shutil.copytree(root / "synthetic", root / "nodecoder")
    (root / "nodecoder" / "decoder.onnx").unlink()
    shutil.copytree(root / "synthetic", root / "badjson")
    (root / "badjson" / "model.json").write_text("{not json")
    shutil.copytree(root / "synthetic", root / "badfield")
    meta = json.loads((root / "badfield" / "model.json").read_text())
    meta["sample_rate"] = 12
    (root / "badfield" / "model.json").write_text(json.dumps(meta))
    (root / "empty").mkdir()  # not a bundle at all
    return root


def test_list_models_leaves_out_bundles_that_would_not_load(cut_models, caplog):
    with caplog.at_level("WARNING", logger="aedaemon.model"):
        assert list_models(cut_models) == ["synthetic", "wrongname"]
        first = [r.getMessage() for r in caplog.records]
        assert list_models(cut_models) == ["synthetic", "wrongname"]
    assert len(caplog.records) == len(first)  # cached: a broken bundle is reported once, not per listing
    for name, why in (("nodecoder", "decoder.onnx is missing"), ("badjson", "not valid JSON"),
                      ("badfield", "sample_rate")):
        assert any(f"'{name}' is not listed" in m and why in m for m in first), first


def test_list_models_sees_a_bundle_repaired_or_broken_since(cut_models, tmp_path):
    root = tmp_path / "models"
    shutil.copytree(cut_models / "synthetic", root / "m")
    assert list_models(root) == ["m"]
    (root / "m" / "model.json").write_text("[]")
    assert list_models(root) == []
    shutil.copy(cut_models / "synthetic" / "model.json", root / "m" / "model.json")
    assert list_models(root) == ["m"]


def test_the_folder_names_the_bundle_and_a_different_json_name_is_warned_once(cut_models, caplog):
    with caplog.at_level("WARNING", logger="aedaemon.model"):
        assert load_bundle("wrongname", cut_models).name == "wrongname"
        assert load_bundle(cut_models / "wrongname").meta.name == "wrongname"
    warned = [r.getMessage() for r in caplog.records if "'other'" in r.getMessage()]
    assert len(warned) == 1 and "'wrongname'" in warned[0], warned


def test_daemon_names_the_model_by_its_folder_everywhere(tmp_path, cut_models):
    with Daemon(tmp_path, cut_models, "--fresh") as d:
        with Client(port=d.port, timeout=3.0) as c:
            assert c.model_list() == ["synthetic", "wrongname"]
            c.model_load("wrongname")
            c.sync()
            assert c.status()["model"] == "wrongname"
            assert "wrongname" in c.model_list()
            c.preset_save("p")
            c.model_load("wrongname")  # loaded again: no second warning
            c.sync()
        assert d.terminate() == 0
    preset = json.loads((d.state_dir / "presets" / "p.json").read_text())["state"]
    last = json.loads((d.state_dir / "last_state.json").read_text())["state"]
    assert preset["model"] == last["model"] == "wrongname"
    log = d.stderr()
    assert log.count("names the model 'other'") == 1, log


def test_daemon_refuses_a_broken_bundle_with_the_reason_and_keeps_playing(tmp_path, cut_models):
    with Daemon(tmp_path, cut_models, "--fresh") as d:
        with Client(port=d.port, timeout=3.0) as c:
            c.latent(2, 0.7)
            c.play()
            c.sync()
            for name, why in (("nodecoder", "decoder.onnx is missing"), ("badjson", "not valid JSON"),
                              ("nosuchmodel", "no model named 'nosuchmodel'")):
                with pytest.raises(OscFailure) as err:
                    c.model_load(name)
                assert why in err.value.reason and "\n" not in err.value.reason, err.value.reason
            status = c.status()
            assert status["model"] == "synthetic" and status["playing"] == 1
            assert c.get("/latent/2") == pytest.approx([0.7])
        assert d.alive()
