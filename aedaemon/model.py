"""Model bundles (docs/model-format.md): a folder with model.json and decoder.onnx, validated on load.

A bundle is refused as a whole when anything is wrong (schema, graph names, shapes, dtypes,
non-finite weights): the caller keeps whatever model it had.
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ModelError
from .files import read_json

FORMAT_VERSION = 1
# anchored for pydantic's (Rust) pattern; Python callers use fullmatch: `$` alone lets "name\n" through
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHROMA_SIZE = 12
log = logging.getLogger("aedaemon.model")
# decoder files by precision: decoder.onnx is the reference every bundle has; decoder-int8.onnx
# (optional, `aedaemon quantize`) has int8 weights, a quarter of the bytes the memory-bound
# batch-1 decode has to stream per frame
DECODER_FILES = {"float32": "decoder.onnx", "int8": "decoder-int8.onnx"}
ENCODER_FILE = "encoder.onnx"  # optional: frames -> latents, for the effect mode (aedaemon/effect.py)
PRECISIONS = ("auto", "float32", "int8")


class TrainingRecord(BaseModel):
    """How the model was made; filled in by `aedaemon train` and `aedaemon evaluate`."""

    model_config = ConfigDict(extra="allow")

    corpus: str = ""
    frames: dict[str, int] = Field(default_factory=dict)
    epochs: int = 0
    loss: Optional[float] = None
    test_mse: Optional[float] = None
    chroma_accuracy: Optional[dict[str, float]] = None
    date: str = ""
    seed: Optional[int] = None
    command: str = ""


class ModelMeta(BaseModel):
    """model.json, as docs/model-format.md specifies it."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = Field(ge=1, le=FORMAT_VERSION)
    name: str = Field(pattern=MODEL_NAME_RE.pattern)
    description: str = ""
    sample_rate: int = Field(ge=8000, le=192000)
    n_fft: int = Field(ge=64, le=65536)
    hop: int = Field(ge=16)
    window: Literal["hann"] = "hann"
    n_bins: int
    latent_size: int = Field(ge=1, le=256)
    latent_range: tuple[float, float]
    control_range: tuple[float, float]
    default_latent: list[float]
    conditioning: Optional[Literal["chroma12"]] = None
    reference_note: int = Field(ge=0, le=127)
    training: TrainingRecord = Field(default_factory=TrainingRecord)

    @model_validator(mode="after")
    def _consistent(self) -> "ModelMeta":
        if self.n_bins != self.n_fft // 2 + 1:
            raise ValueError(f"n_bins must be n_fft/2+1 = {self.n_fft // 2 + 1}, got {self.n_bins}")
        if self.hop > self.n_fft:
            raise ValueError(f"hop {self.hop} is larger than n_fft {self.n_fft}")
        for label, (lo, hi) in (("latent_range", self.latent_range), ("control_range", self.control_range)):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"{label} must be two finite numbers, low < high; got [{lo}, {hi}]")
        if len(self.default_latent) != self.latent_size:
            raise ValueError(
                f"default_latent has {len(self.default_latent)} values, latent_size is {self.latent_size}"
            )
        lo, hi = self.control_range
        if not all(math.isfinite(v) and lo <= v <= hi for v in self.default_latent):
            raise ValueError(f"default_latent values must lie in control_range [{lo}, {hi}]")
        return self

    @property
    def conditioned(self) -> bool:
        return self.conditioning == "chroma12"


def _format_validation_error(path: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "model.json"
    msg = first["msg"]
    if first["type"] == "missing":
        return f"{path}: missing field '{where}'"
    if first["type"] == "extra_forbidden":
        return f"{path}: unknown field '{where}'"
    return f"{path}: field '{where}': {msg}"


def load_meta(path: Path) -> ModelMeta:
    """Read and validate a model.json, raising ModelError with one clear line."""
    raw = read_json(path, ModelError)
    if not isinstance(raw, dict):
        raise ModelError(f"{path} must hold a JSON object")
    try:
        return ModelMeta.model_validate(raw)
    except ValidationError as exc:
        raise ModelError(_format_validation_error(path, exc)) from None


_warned_names: set[tuple[str, str]] = set()


def _warn_if_renamed(path: Path, declared: str, name: str) -> None:
    """Say once per folder and name that model.json's name is not the one used (a copied or
    renamed folder): only for a bundle that loaded, so a refusal stays the one line said."""
    if declared != name and (str(path), declared) not in _warned_names:
        _warned_names.add((str(path), declared))
        log.warning("%s names the model '%s'; it is called '%s' after its folder", path / "model.json", declared, name)


def _ort():
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    return ort


class ModelBundle:
    """A validated model bundle with a ready onnxruntime decoder session.

    `decode` is the only method the renderer calls per frame; it reuses its input buffers,
    so the returned array is only valid until the next call.
    """

    def __init__(self, path: Path, meta: ModelMeta, session, precision: str = "float32") -> None:
        self.path = path
        self.meta = meta
        self.precision = precision  # which decoder file runs: "float32" or "int8"
        self.decode_us: dict[str, float] = {}  # precision "auto": what each decoder took here
        self._session = session
        self._latent_in = np.zeros((1, meta.latent_size), dtype=np.float32)
        self._chroma_in = np.zeros((1, CHROMA_SIZE), dtype=np.float32)
        self._feeds: dict[str, np.ndarray] = {"latent": self._latent_in}
        if meta.conditioned:
            self._feeds["chroma"] = self._chroma_in
        self._out = np.zeros(meta.n_bins, dtype=np.float32)
        # Per-frame decode through an IO binding on these buffers: onnxruntime reads the inputs
        # and writes the output in place, so a decode allocates nothing and converts nothing.
        self._raw = np.zeros((1, meta.n_bins), dtype=np.float32)
        self._binding = session.io_binding()
        for name, buf in self._feeds.items():
            self._binding.bind_cpu_input(name, buf)
        self._binding.bind_output("magnitude", "cpu", 0, np.float32, list(self._raw.shape), self._raw.ctypes.data)
        # encoder.onnx: loaded on the first `encode` (the synthesizer never needs it)
        self.encoder_threads = 1
        self._encoder = None
        self._encoder_chroma = False

    @property
    def name(self) -> str:
        return self.meta.name

    def decode(self, latent: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        """One magnitude frame (float32, n_bins, finite, >= 0) for these decoder inputs."""
        self._latent_in[0] = latent
        self._chroma_in[0] = chroma
        self._session.run_with_iobinding(self._binding)
        out = np.maximum(self._raw[0], 0.0, out=self._out)
        if not np.isfinite(out.sum()):  # one reduction on the healthy path; NaN/inf propagate into it
            np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return out

    def decode_batch(self, latent: np.ndarray, chroma: Optional[np.ndarray] = None) -> np.ndarray:
        feeds = {"latent": np.ascontiguousarray(latent, dtype=np.float32)}
        if self.meta.conditioned:
            if chroma is None:
                chroma = np.zeros((latent.shape[0], CHROMA_SIZE), np.float32)
            feeds["chroma"] = np.ascontiguousarray(chroma, dtype=np.float32)
        (frames,) = self._session.run(["magnitude"], feeds)
        return frames

    # ---- encoder (optional; the effect mode) ----------------------------------------------

    @property
    def has_encoder(self) -> bool:
        return (self.path / ENCODER_FILE).is_file()

    @property
    def encoder_takes_chroma(self) -> bool:
        """Whether encoder.onnx has a `chroma` input (a model trained with chroma input
        augmentation, as `aedaemon train` writes); loads the encoder."""
        self._load_encoder()
        return self._encoder_chroma

    def _load_encoder(self):
        if self._encoder is not None:
            return self._encoder
        path = self.path / ENCODER_FILE
        if not path.is_file():
            raise ModelError(
                f"model '{self.name}' has no {ENCODER_FILE} ({self.path}): it cannot encode sound, which the "
                "effect mode needs (`aedaemon train` writes one)"
            )
        try:
            session = onnx_session(path, self.encoder_threads)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{path}: onnxruntime cannot load it: {first}") from None
        self._encoder_chroma = _check_encoder_io(path, self.meta, session)
        self._encoder = session
        return session

    def encode(self, magnitude: np.ndarray, chroma: Optional[np.ndarray] = None) -> np.ndarray:
        """Latents [batch, latent_size] of normalised magnitude frames [batch, n_bins] (each
        frame's maximum 1, as the corpus was); `chroma` [batch, 12] is fed when the encoder
        takes it (zeros when not given). ModelError when the bundle has no usable encoder."""
        session = self._load_encoder()
        mag = np.ascontiguousarray(magnitude, dtype=np.float32)
        if mag.ndim != 2 or mag.shape[1] != self.meta.n_bins:
            raise ValueError(f"encode expects frames [batch, {self.meta.n_bins}], got {list(mag.shape)}")
        feeds = {"magnitude": mag}
        if self._encoder_chroma:
            if chroma is None:
                chroma = np.zeros((mag.shape[0], CHROMA_SIZE), np.float32)
            feeds["chroma"] = np.ascontiguousarray(chroma, dtype=np.float32)
        (latent,) = session.run(["latent"], feeds)
        return latent


def resolve_model_path(spec: str | Path, models_dir: Optional[Path] = None) -> Path:
    """A model given as a folder path (CLI) or a bare name looked up in models_dir."""
    p = Path(spec)
    if p.is_dir():
        return p
    if models_dir is not None and MODEL_NAME_RE.fullmatch(str(spec)):
        candidate = models_dir / str(spec)
        if candidate.is_dir():
            return candidate
    where = f" (looked in {models_dir})" if models_dir is not None else ""
    raise ModelError(f"unknown model '{spec}': no such model folder{where}")


def bundle_name(path: Path) -> str:
    """A bundle's name is the name of its folder: what `/model/list` shows and `/model/load`
    takes, so it is also what /status, presets, the last state and the logs call it."""
    return Path(os.path.abspath(path)).name


# folder -> (stamp of model.json and decoder.onnx, why it would not load or None)
_listing_cache: dict[Path, tuple[tuple, Optional[str]]] = {}


def _file_stamp(path: Path) -> Optional[tuple[int, int]]:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _bundle_problem(folder: Path) -> Optional[str]:
    """Why this bundle would not load, from the cheap checks only (model.json parses and
    validates, decoder.onnx exists; the graph itself is checked by load_bundle); None if fine."""
    try:
        load_meta(folder / "model.json")
        choose_decoder(folder, "float32")
    except ModelError as exc:
        return str(exc)
    return None


def _loadable(folder: Path) -> bool:
    """Cached _bundle_problem: re-checked only when model.json or decoder.onnx changed, and a
    broken bundle is logged once per change, not at every listing."""
    meta_stamp = _file_stamp(folder / "model.json")
    if meta_stamp is None:
        return False  # not a bundle at all
    stamp = (meta_stamp, _file_stamp(folder / DECODER_FILES["float32"]))
    cached = _listing_cache.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached[1] is None
    problem = _bundle_problem(folder)
    _listing_cache[folder] = (stamp, problem)
    if problem is not None:
        log.warning("model '%s' is not listed, it would not load: %s", folder.name, problem)
    return problem is None


def list_models(models_dir: Path) -> list[str]:
    """Names of the bundles in models_dir that would load, sorted.

    A broken bundle (model.json unreadable or invalid, decoder.onnx missing) is left out rather
    than listed, so every name listed can be given to /model/load; why it is left out is logged
    once. The checks skip onnxruntime and are cached by the files' mtimes, so listing stays fast.
    """
    if not models_dir.is_dir():
        return []
    return sorted(
        p.name for p in models_dir.iterdir() if p.is_dir() and MODEL_NAME_RE.fullmatch(p.name) and _loadable(p)
    )


_ONNX_FLOAT = "tensor(float)"


def _check_io(path: Path, meta: ModelMeta, session, decoder: Path) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    expected_inputs = {"latent": meta.latent_size}
    if meta.conditioned:
        expected_inputs["chroma"] = CHROMA_SIZE
    if set(inputs) != set(expected_inputs):
        raise ModelError(
            f"{path}: decoder inputs are {sorted(inputs)}, model.json needs {sorted(expected_inputs)}"
        )
    if "magnitude" not in outputs:
        raise ModelError(f"{path}: decoder has no output named 'magnitude' (has {sorted(outputs)})")
    checks = [("input", n, inputs[n], size, field) for (n, size), field in zip(
        expected_inputs.items(), ("latent_size", "conditioning"))]
    checks.append(("output", "magnitude", outputs["magnitude"], meta.n_bins, "n_bins"))
    _check_tensors(decoder, checks)


def _check_tensors(where: Path, checks: list) -> None:
    """Each (role, name, onnx arg, size, model.json field): float32 of shape [batch, size]."""
    for role, name, arg, size, field in checks:
        if arg.type != _ONNX_FLOAT:
            raise ModelError(f"{where}: {role} '{name}' is {arg.type}, expected tensor(float) (float32)")
        shape = list(arg.shape)
        if len(shape) != 2 or shape[1] != size:
            shown = "[" + ", ".join(str(d) for d in shape) + "]"
            raise ModelError(f"{where}: {role} '{name}' has shape {shown}, but model.json ({field}) needs [batch, {size}]")


def _check_encoder_io(path: Path, meta: ModelMeta, session) -> bool:
    """encoder.onnx's inputs `magnitude` [batch, n_bins] (+ optional `chroma` [batch, 12]) and
    output `latent` [batch, latent_size], all float32; True when it takes chroma."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if "magnitude" not in inputs or not set(inputs) <= {"magnitude", "chroma"}:
        raise ModelError(f"{path}: encoder inputs are {sorted(inputs)}, expected 'magnitude' (and optionally 'chroma')")
    if "latent" not in outputs:
        raise ModelError(f"{path}: encoder has no output named 'latent' (has {sorted(outputs)})")
    checks = [("input", "magnitude", inputs["magnitude"], meta.n_bins, "n_bins")]
    if "chroma" in inputs:
        checks.append(("input", "chroma", inputs["chroma"], CHROMA_SIZE, "the 12 pitch classes"))
    checks.append(("output", "latent", outputs["latent"], meta.latent_size, "latent_size"))
    _check_tensors(path, checks)
    return "chroma" in inputs


def _check_weights(path: Path, session_path: Path) -> None:
    """Refuse graphs with NaN/inf initialisers (a corrupted or diverged training), naming one."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # the runtime decode check below still catches NaN output
        return
    try:
        graph = onnx.load(str(session_path), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
        raise ModelError(f"{session_path}: not a readable ONNX model ({exc})") from None
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ModelError(f"{session_path}: weight '{init.name}' contains NaN or inf")


def choose_decoder(path: Path, precision: str) -> tuple[str, Path]:
    """(precision, decoder file) for a bundle folder: "auto" takes the int8 decoder when it ships."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    if not (path / DECODER_FILES["float32"]).is_file():
        raise ModelError(f"{path}: decoder.onnx is missing")
    if precision == "auto":
        precision = "int8" if (path / DECODER_FILES["int8"]).is_file() else "float32"
    decoder = path / DECODER_FILES[precision]
    if not decoder.is_file():
        raise ModelError(
            f"{path}: no int8 decoder ({DECODER_FILES['int8']}); make one with `aedaemon quantize {path}` "
            "or use precision float32"
        )
    return precision, decoder


def load_bundle(
    spec: str | Path, models_dir: Optional[Path] = None, threads: int = 1, precision: str = "auto",
    name: Optional[str] = None,
) -> ModelBundle:
    """Load and fully validate a bundle; ModelError with one line on any problem.

    precision: "float32" (decoder.onnx, the reference), "int8" (decoder-int8.onnx, weights
    quantised: about 3× faster to decode on x86-64) or "auto" (both timed on this machine when
    the bundle has an int8 decoder: int8 when it is clearly faster, else the reference). The bundle's
    `name` is its folder's name (bundle_name), whatever model.json says; `name` overrides that
    for a staging folder validated before it is renamed into place.
    """
    path = resolve_model_path(spec, models_dir)
    declared = load_meta(path / "model.json")
    meta = declared.model_copy(update={"name": name or bundle_name(path)})
    bundle = _load_precision(path, meta, precision, threads)
    _warn_if_renamed(path, declared.name, meta.name)
    return bundle


def _load_precision(path: Path, meta: ModelMeta, precision: str, threads: int) -> ModelBundle:
    chosen, decoder = choose_decoder(path, precision)
    if precision == "auto" and chosen == "int8":
        known = _auto_choices.get(_decoders_stamp(path))
        if known is not None:  # timed before (these very files): load only the one chosen then
            choice, timings = known
            bundle = _load_decoder(path, meta, choice, path / DECODER_FILES[choice], threads)
            bundle.decode_us = dict(timings)
            return bundle
        try:
            int8 = _load_decoder(path, meta, "int8", decoder, threads)
        except ModelError as exc:  # the reference decoder still plays; say why it is used
            log.warning("%s; using the float32 decoder", exc)
            chosen, decoder = choose_decoder(path, "float32")
        else:
            return _faster(int8, _load_decoder(path, meta, "float32", path / DECODER_FILES["float32"], threads))
    return _load_decoder(path, meta, chosen, decoder, threads)


AUTO_MARGIN = 0.9  # int8 must decode in under 90 % of float32's time to be chosen over the reference
# precision auto's verdicts in this process, by the decoder files' identity: a model swapped back
# in later loads only the decoder chosen (loading both costs the interpreter ~50 ms more)
_auto_choices: dict[tuple, tuple[str, dict[str, float]]] = {}


def _decoders_stamp(path: Path) -> tuple:
    return tuple((str(Path(os.path.abspath(path)) / f), _file_stamp(path / f)) for f in DECODER_FILES.values())


def decode_seconds(bundle: ModelBundle, rounds: int = 5, per_round: int = 6, other: Optional[ModelBundle] = None):
    """Best per-decode time of `bundle` (and of `other`, interleaved round by round so that a
    noisy machine slows both alike), on a walk of latents through the control range."""
    import time

    rng = np.random.default_rng(0)
    lo, hi = bundle.meta.control_range
    latents = rng.uniform(lo, hi, (per_round, bundle.meta.latent_size)).astype(np.float32)
    chroma = np.zeros(CHROMA_SIZE, np.float32)
    best = [math.inf, math.inf]
    for _ in range(rounds):
        for k, b in enumerate((bundle, other)):
            if b is None:
                continue
            for i, latent in enumerate(latents):
                chroma[:] = 0.0
                chroma[i % CHROMA_SIZE] = 1.0
                t = time.perf_counter()
                b.decode(latent, chroma)
                best[k] = min(best[k], time.perf_counter() - t)
    return best[0], best[1]


def _faster(int8: ModelBundle, float32: ModelBundle) -> ModelBundle:
    """precision "auto": time both decoders on this machine and keep the faster (int8 may be
    slower than float32 on a core without fast int8 dot products, e.g. a Raspberry Pi 4's A72)."""
    t8, t32 = decode_seconds(int8, other=float32)
    pick = int8 if t8 < AUTO_MARGIN * t32 else float32
    for b in (int8, float32):
        b.decode_us = {"int8": 1e6 * t8, "float32": 1e6 * t32}
    _auto_choices[_decoders_stamp(int8.path)] = (pick.precision, dict(pick.decode_us))
    log.info("precision auto: a decode takes %.0f µs with int8, %.0f µs with float32 here: %s",
             1e6 * t8, 1e6 * t32, pick.precision)
    (float32 if pick is int8 else int8)._session = None
    _trim_heap()  # the other session's weights and arena go back to the system
    return pick


def _trim_heap() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def onnx_session(source: str | Path | bytes, threads: int = 1):
    """An onnxruntime CPU session that never spins: idle pool threads spinning after `run`
    would take the cores from the audio path (and from PyTorch, when training runs next).

    Basic graph optimisations only: the extended ones fuse the int8 decoder's quantise, integer
    matmul and rescale into one kernel that rounds differently on aarch64 than on x86-64 (up to
    2e-3 of a frame's peak; enough for RTPGHI to take another path), while the unfused graph
    gives the same bits on both (make test-arm64). On x86-64 the outputs are identical either
    way; the int8 decode costs ~15 % more (149 vs 129 µs here), float32 the same."""
    ort = _ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    src = source if isinstance(source, bytes) else str(source)
    return ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])


def _load_decoder(path: Path, meta: ModelMeta, precision: str, decoder: Path, threads: int) -> ModelBundle:
    # One thread by default: per-frame batch-1 inference gains nothing from a pool.
    try:
        session = onnx_session(decoder, threads)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{decoder}: onnxruntime cannot load it: {first}") from None
    _check_io(path, meta, session, decoder)
    bundle = ModelBundle(path, meta, session, precision)
    probe_latent = np.asarray(meta.default_latent, dtype=np.float32)
    probe_chroma = np.zeros(CHROMA_SIZE, np.float32)
    probe_chroma[0] = 1.0
    try:
        raw = bundle.decode_batch(probe_latent[None, :], probe_chroma[None, :])
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{decoder}: decoding the default latent failed: {exc}") from None
    if raw.shape != (1, meta.n_bins):
        raise ModelError(f"{decoder}: output shape {raw.shape}, expected (1, {meta.n_bins})")
    if not np.all(np.isfinite(raw)):
        # name the culprit when the onnx package is there to read the weights; only here, so
        # a healthy load never imports it (it costs the daemon ~7 MB)
        _check_weights(path, decoder)
        raise ModelError(f"{decoder}: the default latent decodes to NaN or inf")
    return bundle


def describe(meta: ModelMeta, path: Path) -> str:
    """Human-readable summary for `aedaemon info`."""
    t = meta.training
    lines = [
        f"name:            {meta.name}",
        f"path:            {path}",
        f"description:     {meta.description}",
        f"sample rate:     {meta.sample_rate} Hz",
        f"frame:           n_fft {meta.n_fft}, hop {meta.hop}, {meta.window} window, {meta.n_bins} bins",
        f"latent:          {meta.latent_size} units, learned range {list(meta.latent_range)}, "
        f"control range {list(meta.control_range)}",
        f"default latent:  {[round(v, 4) for v in meta.default_latent]}",
        f"conditioning:    {meta.conditioning or 'none'}",
        f"reference note:  {meta.reference_note}",
        "decoders:        " + ", ".join(
            f"{p} ({f}, {(path / f).stat().st_size / 1e6:.1f} MB)" for p, f in DECODER_FILES.items() if (path / f).is_file()
        ),
        f"encoder:         {'yes' if (path / 'encoder.onnx').is_file() else 'no'}",
    ]
    if t.corpus or t.epochs:
        lines += [
            f"training corpus: {t.corpus}",
            f"frames:          {t.frames}",
            f"epochs:          {t.epochs}   loss: {t.loss}   test MSE: {t.test_mse}",
            f"trained:         {t.date}   seed: {t.seed}",
            f"command:         {t.command}",
        ]
        if t.chroma_accuracy:
            acc = ", ".join(f"{k} {v:.2f}" for k, v in t.chroma_accuracy.items())
            lines.append(f"chroma accuracy: {acc}")
    return "\n".join(lines)
