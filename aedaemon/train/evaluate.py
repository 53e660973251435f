"""`aedaemon evaluate`: test-set MSE, mesh chroma accuracy (Colonel & Keene 2020, Table V) and
figures, from the exported ONNX bundle itself (onnxruntime; no PyTorch needed).

- test MSE: mean squared error per bin of encode→decode over the corpus's test split (held-out
  source files / GM programs), each frame normalised to max 1 as in training.
- mesh chroma accuracy: the latent space is sampled on a regular mesh (3 points per unit at the
  centres of three equal cells of the learned range [0, 1], i.e. 1/6, 1/2, 5/6: 3^8 = 6561 points
  for 8 units; above 8 units, 6561 uniform random points); every point is decoded once with each
  of the 12 one-hot chroma inputs, and the accuracy of a pitch class is the share of those frames
  whose dominant chroma (the same salience chroma that labelled the corpus) is that class.
- latent.png: the training set's embedding (first two principal components) coloured by pitch
  class, beside the per-class accuracy; reconstruction.png: a held-out source's frames, original
  against reconstructed (dB).
Results are written into model.json's training record (atomically).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import AedaemonError
from ..files import atomic_write
from ..model import DECODER_FILES, ModelMeta, load_bundle, load_meta, onnx_session
from . import CHROMA_SIZE, PITCH_CLASSES
from .corpus import Corpus, dominant_pitch_class, load_corpus, one_hot, source_name

MESH_POINTS = (1 / 6, 1 / 2, 5 / 6)
MESH_MAX_UNITS = 8


class EvaluateError(AedaemonError):
    pass


def _session(path: Path):
    return onnx_session(path, threads=2)  # large batches: both cores


def _run(sess, output: str, feeds: dict, batch: int = 2048) -> np.ndarray:
    n = len(next(iter(feeds.values())))
    outs = []
    for s in range(0, n, batch):
        (y,) = sess.run([output], {k: np.ascontiguousarray(v[s : s + batch], np.float32) for k, v in feeds.items()})
        outs.append(y)
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def mesh(latent_size: int, seed: int = 0) -> np.ndarray:
    if latent_size <= MESH_MAX_UNITS:
        return np.array(list(itertools.product(MESH_POINTS, repeat=latent_size)), dtype=np.float32)
    return np.random.default_rng(seed).uniform(0, 1, (len(MESH_POINTS) ** MESH_MAX_UNITS, latent_size)).astype(np.float32)


def mesh_chroma_accuracy(dec, latent_size: int) -> dict[str, float]:
    pts = mesh(latent_size)
    acc = {}
    for c in range(CHROMA_SIZE):
        chroma = np.zeros((len(pts), CHROMA_SIZE), np.float32)
        chroma[:, c] = 1.0
        frames = _run(dec, "magnitude", {"latent": pts, "chroma": chroma})
        acc[PITCH_CLASSES[c]] = round(float(np.mean(dominant_pitch_class(frames) == c)), 4)
    return acc


def encode_decode(enc, dec, corpus: Corpus, idx: np.ndarray, batch: int = 2048):
    """(latents, reconstructions, originals) of corpus frames idx, in chunks."""
    lat, rec, orig = [], [], []
    for s in range(0, len(idx), batch):
        b = idx[s : s + batch]
        x = corpus.frames[b].astype(np.float32)
        c = one_hot(corpus.labels[b])
        z = _run(enc, "latent", {"magnitude": x, "chroma": c})
        lat.append(z)
        rec.append(_run(dec, "magnitude", {"latent": z, "chroma": c}))
        orig.append(x)
    return np.concatenate(lat), np.concatenate(rec), np.concatenate(orig)


def _figures(model_dir: Path, corpus: Corpus, enc, dec, acc: dict, meta: ModelMeta, test_mse: float) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    # --- latent embedding of (a sample of) the training set, coloured by pitch class
    tr = corpus.part("train")
    sample = np.sort(np.random.default_rng(0).choice(tr, size=min(6000, len(tr)), replace=False))
    z, _, _ = encode_decode(enc, dec, corpus, sample)
    zc = z - z.mean(0)
    if z.shape[1] >= 2:
        _, _, vt = np.linalg.svd(zc, full_matrices=False)
        xy = zc @ vt[:2].T
    else:
        xy = np.stack([zc[:, 0], np.zeros(len(zc))], 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1.3, 1]})
    cmap = plt.get_cmap("hsv")
    labels = corpus.labels[sample]
    for c in range(CHROMA_SIZE):
        m = labels == c
        a1.scatter(xy[m, 0], xy[m, 1], s=3, alpha=0.5, color=cmap(c / CHROMA_SIZE), label=PITCH_CLASSES[c])
    a1.set_title(f"{meta.name}: training-set latent embedding (PCA of {meta.latent_size} units)")
    a1.set_xlabel("PC 1")
    a1.set_ylabel("PC 2")
    a1.legend(markerscale=4, fontsize=8, ncol=2, title="pitch class")
    vals = [acc[p] for p in PITCH_CLASSES]
    a2.bar(PITCH_CLASSES, vals, color=[cmap(c / CHROMA_SIZE) for c in range(CHROMA_SIZE)])
    a2.axhline(np.mean(vals), color="k", ls="--", lw=1, label=f"mean {np.mean(vals):.3f}")
    a2.set_ylim(0, 1.02)
    a2.set_title(f"mesh chroma accuracy ({len(mesh(meta.latent_size))} latent points per class)")
    a2.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(model_dir / "latent.png", dpi=90)
    plt.close(fig)
    written.append("latent.png")

    # --- original vs reconstructed spectrogram of one held-out source
    te = corpus.part("test")
    first = corpus.file_index[te[0]]
    idx = te[corpus.file_index[te] == first][:240]
    _, rec, orig = encode_decode(enc, dec, corpus, idx)
    files = corpus.manifest.get("files", [])
    src = source_name(files[int(first)]) if int(first) < len(files) else f"source {int(first)}"
    top = int(5000 * 4096 / 44100)
    fig, axes = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    for ax, data, title in ((axes[0], orig, "original"), (axes[1], rec, "reconstructed")):
        db = 20 * np.log10(np.maximum(data[:, :top].T, 1e-4))
        im = ax.imshow(db, origin="lower", aspect="auto", vmin=-80, vmax=0, cmap="magma",
                       extent=[0, len(data), 0, top * 44100 / 4096])  # fmt: skip
        ax.set_ylabel("Hz")
        ax.set_title(f"{title}: {src} (held-out test source; the corpus's stored frames, in order)")
    axes[1].set_xlabel("frame")
    fig.colorbar(im, ax=axes, label="dB (frame max = 0)")
    fig.suptitle(f"{meta.name}: test MSE {test_mse:.3g} over the whole test split")
    fig.savefig(model_dir / "reconstruction.png", dpi=90)
    plt.close(fig)
    written.append("reconstruction.png")
    return written


def evaluate(model_dir: Path, corpus: Optional[str | Path] = None, figures: bool = True, log=print) -> dict:
    model_dir = Path(model_dir)
    bundle = load_bundle(model_dir, precision="float32")  # full validation first
    meta = bundle.meta
    if not meta.conditioned:
        raise EvaluateError(f"{model_dir}: evaluate expects a chroma-conditioned model")
    enc_path = model_dir / "encoder.onnx"
    if not enc_path.is_file():
        raise EvaluateError(f"{model_dir}: encoder.onnx is missing (needed for the test-set MSE)")
    if corpus is None:
        corpus = getattr(meta.training, "corpus_path", None) or (meta.training.model_extra or {}).get("corpus_path")
        if not corpus:
            raise EvaluateError(f"{model_dir}: model.json does not name its corpus; pass --corpus DIR")
    cp = load_corpus(corpus)
    enc, dec = _session(enc_path), _session(model_dir / "decoder.onnx")

    te = cp.part("test")
    _, rec, orig = encode_decode(enc, dec, cp, te)
    test_mse = float(np.mean((rec - orig) ** 2))
    per_source = {}
    for f in np.unique(cp.file_index[te]):
        m = cp.file_index[te] == f
        files = cp.manifest.get("files", [])
        name = source_name(files[int(f)]) if int(f) < len(files) else str(int(f))
        per_source[name] = round(float(np.mean((rec[m] - orig[m]) ** 2)), 7)
    log(f"test MSE {test_mse:.4g} over {len(te)} frames of {len(per_source)} held-out source(s)")
    acc = mesh_chroma_accuracy(dec, meta.latent_size)
    mean_acc = float(np.mean(list(acc.values())))
    log(f"mesh chroma accuracy mean {mean_acc:.3f}")
    int8_path = model_dir / DECODER_FILES["int8"]
    acc_int8, test_mse_int8 = None, None
    if int8_path.is_file():
        dec_int8 = _session(int8_path)
        acc_int8 = mesh_chroma_accuracy(dec_int8, meta.latent_size)
        _, rec8, orig8 = encode_decode(enc, dec_int8, cp, te)
        test_mse_int8 = float(np.mean((rec8 - orig8) ** 2))
        log(f"int8 decoder: test MSE {test_mse_int8:.4g}, mesh chroma accuracy mean {np.mean(list(acc_int8.values())):.3f}")
    written = _figures(model_dir, cp, enc, dec, acc, meta, test_mse) if figures else []

    raw = json.loads((model_dir / "model.json").read_text())
    t = raw.setdefault("training", {})
    t["test_mse"] = round(test_mse, 8)
    t["test_mse_per_source"] = per_source
    t["chroma_accuracy"] = acc
    t["chroma_accuracy_mean"] = round(mean_acc, 4)
    t["chroma_accuracy_min"] = round(min(acc.values()), 4)
    t["chroma_accuracy_mesh"] = (
        f"{len(mesh(meta.latent_size))} latent points "
        + (f"(3 per unit at {', '.join(f'{p:.3f}' for p in MESH_POINTS)})" if meta.latent_size <= MESH_MAX_UNITS else "(uniform random)")
        + " x 12 one-hot chroma; dominant harmonic-salience chroma of the decoded frame"
    )
    if acc_int8 is not None:
        t["test_mse_int8"] = round(test_mse_int8, 8)
        t["chroma_accuracy_int8"] = acc_int8
    t["evaluation_corpus"] = str(cp.path)
    t["figures"] = written
    ModelMeta.model_validate(raw)
    atomic_write(model_dir / "model.json", json.dumps(raw, indent=2) + "\n")
    load_meta(model_dir / "model.json")
    return {
        "test_mse": test_mse,
        "test_frames": int(len(te)),
        "chroma_accuracy": acc,
        "chroma_accuracy_mean": mean_acc,
        "figures": written,
    }
