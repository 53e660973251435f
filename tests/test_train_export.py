"""ONNX export: onnxruntime reproduces PyTorch, graph names/shapes match docs/model-format.md, and a
failed parity check writes nothing."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from aedaemon.model import load_bundle
from aedaemon.train import CHROMA_SIZE, N_BINS
from aedaemon.train.export import ExportError, base_meta, export_bundle
from aedaemon.train.network import Autoencoder, linear_layers


def _model(latent: int = 8, seed: int = 0) -> Autoencoder:
    torch.manual_seed(seed)
    m = Autoencoder(latent)
    m.eval()
    return m


def _callables(m):
    def enc(x, c):
        with torch.no_grad():
            return m.encoder(torch.from_numpy(x), torch.from_numpy(c)).numpy()

    def dec(z, c):
        with torch.no_grad():
            return m.decoder(torch.from_numpy(z), torch.from_numpy(c)).numpy()

    return enc, dec


def _probe(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, N_BINS)).astype(np.float32) ** 4
    x /= x.max(1, keepdims=True)
    c = np.eye(CHROMA_SIZE, dtype=np.float32)[rng.integers(0, 12, n)]
    return x, c


@pytest.mark.parametrize("latent", [8, 3])
def test_export_parity_and_graph_contract(tmp_path, latent):
    m = _model(latent)
    enc, dec = _callables(m)
    x, c = _probe()
    meta = base_meta("parity", latent, [0.5] * latent, "test", {"epochs": 0})
    info = export_bundle(tmp_path / "parity", linear_layers(m.encoder.net), linear_layers(m.decoder.net), meta, dec, enc, x, c)
    assert info["decoder_parity_max_abs"] < 1e-4 and info["encoder_parity_max_abs"] < 1e-4

    b = load_bundle(tmp_path / "parity")
    assert b.meta.latent_size == latent
    # independent check: fresh sessions on the written files against PyTorch, batch sizes 1 and 37
    d = ort.InferenceSession(str(tmp_path / "parity" / "decoder.onnx"), providers=["CPUExecutionProvider"])
    e = ort.InferenceSession(str(tmp_path / "parity" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in d.get_inputs()] == ["latent", "chroma"]
    assert [o.name for o in d.get_outputs()] == ["magnitude"]
    assert [i.name for i in e.get_inputs()] == ["magnitude", "chroma"]
    assert [o.name for o in e.get_outputs()] == ["latent"]
    assert d.get_inputs()[0].shape[1] == latent and d.get_outputs()[0].shape[1] == N_BINS
    rng = np.random.default_rng(1)
    for n in (1, 37):
        z = rng.uniform(-0.5, 1.5, (n, latent)).astype(np.float32)
        cc = np.eye(CHROMA_SIZE, dtype=np.float32)[rng.integers(0, 12, n)]
        (got,) = d.run(["magnitude"], {"latent": z, "chroma": cc})
        np.testing.assert_allclose(got, dec(z, cc), atol=1e-5)
        np.testing.assert_allclose(b.decode_batch(z, cc), dec(z, cc), atol=1e-5)
    (zz,) = e.run(["latent"], {"magnitude": x, "chroma": c})
    np.testing.assert_allclose(zz, enc(x, c), atol=1e-5)
    assert np.all((zz >= 0) & (zz <= 1))  # sigmoid bottleneck


def test_failed_parity_writes_nothing_and_keeps_old_bundle(tmp_path):
    m = _model()
    enc, dec = _callables(m)
    x, c = _probe()
    meta = base_meta("keep", 8, [0.5] * 8, "test", {"epochs": 0})
    layers_e, layers_d = linear_layers(m.encoder.net), linear_layers(m.decoder.net)
    out = tmp_path / "keep"
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_bundle(out, layers_e, layers_d, meta, lambda z, cc: dec(z, cc) + 0.01, enc, x, c)
    assert list(tmp_path.iterdir()) == []

    export_bundle(out, layers_e, layers_d, meta, dec, enc, x, c)
    before = (out / "decoder.onnx").read_bytes()
    m2 = _model(seed=9)
    enc2, dec2 = _callables(m2)
    with pytest.raises(ExportError):  # the new graph is checked against the wrong network
        export_bundle(out, linear_layers(m2.encoder.net), linear_layers(m2.decoder.net), meta, dec, enc2, x, c)
    assert (out / "decoder.onnx").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]
