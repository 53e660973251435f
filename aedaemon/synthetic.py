"""Synthetic signals and a small synthetic decoder bundle, for tests and benchmarks.

`make_synthetic_bundle` writes a real ONNX decoder built with the `onnx` helper API (no
training): the chroma input selects a harmonic tone of that pitch class around the reference
note and the latent units colour its spectral envelope through random weights. It runs
through the same onnxruntime path as a trained model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .model import CHROMA_SIZE, FORMAT_VERSION


def midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def harmonic_frame(f0: float, sr: int, n_fft: int, n_harmonics: int = 24, rolloff: float = 1.0) -> np.ndarray:
    """Hann-window magnitude frame of a harmonic tone with partials at k*f0, amplitude k^-rolloff.

    Each partial is drawn as the Hann main lobe (exact |W(nu)| sampled at the bins), so the
    frame is what an STFT of the steady tone would show; normalised to max 1.
    """
    n_bins = n_fft // 2 + 1
    bins = np.arange(n_bins, dtype=np.float64)
    out = np.zeros(n_bins)
    for k in range(1, n_harmonics + 1):
        f = k * f0
        if f >= sr / 2 * 0.95:
            break
        centre = f * n_fft / sr
        d = bins - centre
        lobe = np.zeros(n_bins)
        near = np.abs(d) < 2.0
        # Hann transform magnitude in bin units: |sinc(d)| / |1 - d^2|, limit 0.5 at |d| = 1
        dn = d[near]
        with np.errstate(divide="ignore", invalid="ignore"):
            val = np.abs(np.sinc(dn) / (1.0 - dn**2))
        val[np.isclose(np.abs(dn), 1.0)] = 0.5
        lobe[near] = val
        out += lobe * k ** (-rolloff)
    return (out / out.max()).astype(np.float32)


def sawtooth(f0: float, seconds: float, sr: int, amplitude: float = 0.3) -> np.ndarray:
    """Band-limited sawtooth (additive), for phase-quality measurements."""
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    k = 1
    while k * f0 < sr / 2 * 0.95:
        y += np.sin(2 * np.pi * k * f0 * t) / k
        k += 1
    return (amplitude * y / np.max(np.abs(y))).astype(np.float32)


def make_synthetic_bundle(
    folder: Path,
    name: str = "synthetic",
    latent_size: int = 8,
    n_fft: int = 4096,
    hop: int = 1024,
    sample_rate: int = 44100,
    reference_note: int = 60,
    conditioned: bool = True,
    hidden: int = 16,
    seed: int = 0,
    encoder: bool = False,
) -> Path:
    """Write model.json + decoder.onnx for a small synthetic chroma-conditioned decoder
    (+ encoder.onnx with `encoder`: see `write_synthetic_encoder`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    n_bins = n_fft // 2 + 1
    # pitch class c sounds at the note of that class in [reference-6, reference+5]
    templates = np.stack(
        [
            harmonic_frame(midi_to_hz(reference_note - 6 + ((c - (reference_note - 6)) % 12)), sample_rate, n_fft)
            for c in range(CHROMA_SIZE)
        ]
    ).astype(np.float32)
    w1 = (rng.standard_normal((latent_size, hidden)) * 1.5).astype(np.float32)
    b1 = (rng.standard_normal(hidden) * 0.1).astype(np.float32)
    # smooth random envelopes: few cosine shapes over log-frequency
    logf = np.log2(np.arange(1, n_bins + 1, dtype=np.float64))
    basis = np.stack([np.cos(np.pi * k * logf / logf[-1]) for k in range(1, 7)])
    w2 = (rng.standard_normal((hidden, basis.shape[0])) @ basis * 0.8).astype(np.float32)
    b2 = np.zeros(n_bins, np.float32)

    inits = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(b2, "b2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["latent", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["e0"]),
        helper.make_node("Add", ["e0", "b2"], ["e1"]),
        helper.make_node("Sigmoid", ["e1"], ["envelope"]),
    ]
    inputs = [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["batch", latent_size])]
    if conditioned:
        inits.append(numpy_helper.from_array(templates, "templates"))
        nodes.append(helper.make_node("MatMul", ["chroma", "templates"], ["tone"]))
        inputs.append(helper.make_tensor_value_info("chroma", TensorProto.FLOAT, ["batch", CHROMA_SIZE]))
    else:
        inits.append(numpy_helper.from_array(templates[reference_note % 12][None, :], "tone"))
    nodes.append(helper.make_node("Mul", ["tone", "envelope"], ["magnitude"]))
    graph = helper.make_graph(
        nodes,
        "synthetic_decoder",
        inputs,
        [helper.make_tensor_value_info("magnitude", TensorProto.FLOAT, ["batch", n_bins])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="aedaemon")
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "decoder.onnx"))
    if encoder:
        write_synthetic_encoder(folder / "encoder.onnx", latent_size, n_bins, conditioned, seed)
    meta = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": "synthetic decoder: harmonic tone per pitch class, random latent envelope",
        "sample_rate": sample_rate,
        "n_fft": n_fft,
        "hop": hop,
        "window": "hann",
        "n_bins": n_bins,
        "latent_size": latent_size,
        "latent_range": [0.0, 1.0],
        "control_range": [0.0, 2.0],
        "default_latent": [0.5] * latent_size,
        "conditioning": "chroma12" if conditioned else None,
        "reference_note": reference_note,
        "training": {"corpus": "none (synthetic weights)", "command": "aedaemon.synthetic.make_synthetic_bundle"},
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def write_synthetic_encoder(path: Path, latent_size: int, n_bins: int, chroma: bool = True, seed: int = 0) -> Path:
    """A real encoder.onnx of the bundle contract (no training): `magnitude` [batch, n_bins]
    (+ `chroma` [batch, 12]) → `latent` [batch, latent_size] = sigmoid(magnitude · W + chroma · C + b),
    W a few smooth random shapes over log-frequency, so that frames of different timbres get
    different latents inside (0, 1)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed + 1000)
    logf = np.log2(np.arange(1, n_bins + 1, dtype=np.float64))
    basis = np.stack([np.cos(np.pi * k * logf / logf[-1]) for k in range(0, 6)])
    w = (basis.T @ rng.standard_normal((basis.shape[0], latent_size)) * 0.05).astype(np.float32)
    b = (rng.standard_normal(latent_size) * 0.1).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    nodes = [helper.make_node("MatMul", ["magnitude", "w"], ["m0"])]
    inputs = [helper.make_tensor_value_info("magnitude", TensorProto.FLOAT, ["batch", n_bins])]
    pre = "m0"
    if chroma:
        c = (rng.standard_normal((CHROMA_SIZE, latent_size)) * 0.5).astype(np.float32)
        inits.append(numpy_helper.from_array(c, "c"))
        inputs.append(helper.make_tensor_value_info("chroma", TensorProto.FLOAT, ["batch", CHROMA_SIZE]))
        nodes += [helper.make_node("MatMul", ["chroma", "c"], ["c0"]), helper.make_node("Add", ["m0", "c0"], ["m1"])]
        pre = "m1"
    nodes += [helper.make_node("Add", [pre, "b"], ["z"]), helper.make_node("Sigmoid", ["z"], ["latent"])]
    graph = helper.make_graph(
        nodes, "synthetic_encoder", inputs,
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["batch", latent_size])], initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="aedaemon")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
