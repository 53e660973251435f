"""`aedaemon quantize`: add an int8-weight decoder (decoder-int8.onnx) to a model bundle.

Why: a batch-1 decode multiplies one frame by ~2.8 M weights, so it is bound by the bytes it
streams (11 MB of float32 for the 8-unit model), not by arithmetic. onnxruntime's dynamic
quantisation stores the weights as int8 (per tensor) and quantises each layer's input on the
fly: a quarter of the bytes, about 3× faster on the 2-core development machine, with float32
inputs and output, so the renderer cannot tell.

Weights are stored as *unsigned* int8 (u8 activations × u8 weights). With signed weights
(u8 × s8) onnxruntime's x86 kernels for CPUs without VNNI (AVX2: vpmaddubsw) add pairs of
products into saturating int16 lanes: on this AVX2 machine the shipped decoder's error was
−18.4 dB (max 0.48) instead of −26.9 dB (max 0.08), at the same speed. u8 × u8 takes a path
without that saturation on every ISA (AVX2, AVX-512, ARM NEON). The error is measured here, against the float32
decoder on random points of the control range, recorded in model.json (`training.int8_decoder`)
and refused when it is not small.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..errors import AedaemonError
from ..files import atomic_path, atomic_write
from ..model import CHROMA_SIZE, DECODER_FILES, load_bundle, load_meta, onnx_session

# refuse an int8 decoder whose error energy is not at least this far below the signal's
MAX_RELATIVE_ERROR_DB = -20.0
PROBE_POINTS = 4096


class QuantizeError(AedaemonError):
    pass


def decoder_error(float32: Path, int8: Path, latent_size: int, control_range, seed: int = 0) -> dict:
    """Max abs and relative (dB) error of the int8 decoder against the float32 one."""
    rng = np.random.default_rng(seed)
    lat = rng.uniform(control_range[0], control_range[1], (PROBE_POINTS, latent_size)).astype(np.float32)
    chroma = np.eye(CHROMA_SIZE, dtype=np.float32)[rng.integers(0, CHROMA_SIZE, PROBE_POINTS)]
    ref_sess, q_sess = onnx_session(float32), onnx_session(int8)
    feeds = {"latent": lat}
    if {i.name for i in ref_sess.get_inputs()} >= {"chroma"}:
        feeds["chroma"] = chroma
    ref = ref_sess.run(["magnitude"], feeds)[0]
    got = q_sess.run(["magnitude"], feeds)[0]
    err = float(np.sum((ref - got) ** 2))
    return {
        "max_abs_error": round(float(np.max(np.abs(ref - got))), 6),
        "mse": float(f"{err / ref.size:.4g}"),
        "relative_error_db": round(10 * np.log10(max(err, 1e-30) / max(float(np.sum(ref**2)), 1e-30)), 2),
        "probe": f"{PROBE_POINTS} random latent points of the control range, random one-hot chroma",
    }


def quantize_bundle(model_dir: Path, log=print) -> dict:
    """Write model_dir/decoder-int8.onnx and record its error in model.json; both atomically."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # onnxruntime.quantization needs the onnx package
        raise QuantizeError(f"quantizing needs the onnx package ({exc}): pip install -e '.[train]'") from None
    model_dir = Path(model_dir)
    bundle = load_bundle(model_dir, precision="float32")  # the reference must be valid first
    meta = bundle.meta
    src = model_dir / DECODER_FILES["float32"]
    dst = model_dir / DECODER_FILES["int8"]
    quant_log = logging.getLogger()  # quantize_dynamic warns about pre-processing on the root logger
    level = quant_log.level
    with atomic_path(dst) as tmp:
        quant_log.setLevel(logging.ERROR)
        try:
            quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QUInt8, per_channel=False)
        finally:
            quant_log.setLevel(level)
        stats = decoder_error(src, tmp, meta.latent_size, meta.control_range)
        if stats["relative_error_db"] > MAX_RELATIVE_ERROR_DB:
            raise QuantizeError(
                f"{model_dir}: the int8 decoder's error is {stats['relative_error_db']} dB relative to the "
                f"float32 one (limit {MAX_RELATIVE_ERROR_DB} dB); keeping float32 only"
            )
    try:
        load_bundle(model_dir, precision="int8")
    except AedaemonError:
        dst.unlink(missing_ok=True)
        raise
    stats["bytes"] = dst.stat().st_size
    raw = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    raw.setdefault("training", {})["int8_decoder"] = stats
    atomic_write(model_dir / "model.json", json.dumps(raw, indent=2) + "\n")
    load_meta(model_dir / "model.json")
    log(
        f"wrote {dst} ({stats['bytes'] / 1e6:.1f} MB; float32 {src.stat().st_size / 1e6:.1f} MB): "
        f"error {stats['relative_error_db']} dB relative, max {stats['max_abs_error']}"
    )
    return stats
