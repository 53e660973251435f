"""Export a trained autoencoder as a model bundle (docs/model-format.md), atomically.

The ONNX graphs are written directly with the `onnx` helper API from the trained weights (a
chain of Gemm + activation nodes): no exporter dependency, a dynamic batch axis, and exactly the
input/output names the renderer expects. Before anything is written, onnxruntime's output is
compared with PyTorch's; the bundle is assembled in a temporary folder next to the target and
renamed into place, so a failed or interrupted export never leaves a half-written bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import AedaemonError
from ..model import FORMAT_VERSION, ModelMeta, load_bundle, onnx_session
from . import CHROMA_SIZE, N_BINS

PARITY_ATOL = 1e-4

Layers = list[tuple[np.ndarray, np.ndarray, str]]


class ExportError(AedaemonError):
    """The exported graph does not reproduce the trained network."""


def mlp_graph(name: str, inputs: list[tuple[str, int]], output: str, layers: Layers):
    """ONNX model: Concat(inputs) → (Gemm → activation)* → output, batch axis dynamic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    if len(inputs) > 1:
        nodes.append(helper.make_node("Concat", [n for n, _ in inputs], ["x0"], axis=1))
        cur = "x0"
    else:
        cur = inputs[0][0]
    for i, (w, b, act) in enumerate(layers):
        inits += [numpy_helper.from_array(np.ascontiguousarray(w, np.float32), f"w{i}"),
                  numpy_helper.from_array(np.ascontiguousarray(b, np.float32), f"b{i}")]
        last = i == len(layers) - 1
        lin = f"g{i}"
        nodes.append(helper.make_node("Gemm", [cur, f"w{i}", f"b{i}"], [lin], transB=1))
        out = output if last else f"h{i}"
        if act == "leaky":
            nodes.append(helper.make_node("LeakyRelu", [lin], [out], alpha=0.1))
        elif act == "relu":
            nodes.append(helper.make_node("Relu", [lin], [out]))
        elif act == "sigmoid":
            nodes.append(helper.make_node("Sigmoid", [lin], [out]))
        else:
            nodes.append(helper.make_node("Identity", [lin], [out]))
        cur = out
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", size]) for n, size in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", layers[-1][0].shape[0]])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="aedaemon-train")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _session(model):
    return onnx_session(model.SerializeToString())


def check_parity(model, feeds: dict[str, np.ndarray], output: str, expected: np.ndarray, what: str) -> float:
    (got,) = _session(model).run([output], feeds)
    err = float(np.max(np.abs(got - expected))) if got.size else 0.0
    if got.shape != expected.shape or not np.isfinite(err) or err > PARITY_ATOL:
        raise ExportError(
            f"{what}: onnxruntime output differs from PyTorch's (max abs difference {err:.3g}, "
            f"tolerance {PARITY_ATOL}); nothing written"
        )
    return err


def write_bundle_atomically(out: Path, files: dict[str, Callable[[Path], None]], keep: tuple[str, ...] = ()) -> None:
    """Write files into a temporary sibling folder, validate it, then swap it into place.

    `keep`: names of files of an existing bundle at `out` to carry over (e.g. figures).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=str(out.parent)))
    old: Optional[Path] = None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; a bundle is an ordinary folder
    try:
        for name, writer in files.items():
            writer(tmp / name)
        for name in keep:
            if (out / name).is_file() and not (tmp / name).exists():
                shutil.copy2(out / name, tmp / name)
        load_bundle(tmp, name=out.name)  # the renderer's own validation, before the bundle becomes visible
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=str(out.parent)))
            os.rmdir(old)
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not out.exists():
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_bundle(
    out: Path,
    encoder_layers: Layers,
    decoder_layers: Layers,
    meta: dict,
    torch_decode: Callable[[np.ndarray, np.ndarray], np.ndarray],
    torch_encode: Callable[[np.ndarray, np.ndarray], np.ndarray],
    probe_frames: np.ndarray,
    probe_chroma: np.ndarray,
    seed: int = 0,
) -> dict:
    """Build both graphs, check parity against the PyTorch callables, write the bundle.

    Returns {"decoder_parity": max abs diff, "encoder_parity": ..., "decoder_bytes": ...}.
    """
    import onnx

    latent_size = int(meta["latent_size"])
    ModelMeta.model_validate(meta)  # schema errors surface before any work
    dec = mlp_graph("aedaemon_decoder", [("latent", latent_size), ("chroma", CHROMA_SIZE)], "magnitude", decoder_layers)
    enc = mlp_graph("aedaemon_encoder", [("magnitude", N_BINS), ("chroma", CHROMA_SIZE)], "latent", encoder_layers)

    rng = np.random.default_rng(seed)
    lat = rng.uniform(-0.5, 1.5, size=(64, latent_size)).astype(np.float32)
    chroma = np.eye(CHROMA_SIZE, dtype=np.float32)[rng.integers(0, CHROMA_SIZE, 64)]
    dec_err = check_parity(dec, {"latent": lat, "chroma": chroma}, "magnitude", torch_decode(lat, chroma), "decoder")
    pf = np.ascontiguousarray(probe_frames, np.float32)
    pc = np.ascontiguousarray(probe_chroma, np.float32)
    enc_err = check_parity(enc, {"magnitude": pf, "chroma": pc}, "latent", torch_encode(pf, pc), "encoder")

    meta["training"]["onnx_parity_max_abs"] = {"decoder": dec_err, "encoder": enc_err}
    write_bundle_atomically(
        out,
        {
            "decoder.onnx": lambda p: onnx.save(dec, str(p)),
            "encoder.onnx": lambda p: onnx.save(enc, str(p)),
            "model.json": lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"),
        },
    )
    return {
        "decoder_parity_max_abs": dec_err,
        "encoder_parity_max_abs": enc_err,
        "decoder_bytes": (Path(out) / "decoder.onnx").stat().st_size,
    }


def base_meta(name: str, latent_size: int, default_latent: list[float], description: str, training: dict,
              reference_note: int = 60) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": description,
        "sample_rate": 44100,
        "n_fft": 4096,
        "hop": 1024,
        "window": "hann",
        "n_bins": N_BINS,
        "latent_size": latent_size,
        "latent_range": [0.0, 1.0],
        "control_range": [-0.5, 1.5],
        "default_latent": [round(float(v), 6) for v in default_latent],
        "conditioning": "chroma12",
        "reference_note": reference_note,
        "training": training,
    }
