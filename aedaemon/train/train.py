"""`aedaemon train`: fit the autoencoder on a corpus, resumably, then export the bundle.

Training state lives in `<out>.partial/checkpoint.pt` (written atomically after every epoch:
weights, optimiser, the best weights so far, the history). Rerunning the same command resumes
from the last finished epoch; the shuffling of epoch e depends only on (seed, e), so a resumed
run follows the same path as an uninterrupted one. The folder is removed once the bundle is
exported.

`--device` picks where PyTorch trains (auto: CUDA, else Apple's MPS, else the CPU); the bundle
records it. Bit-identical results are promised on the CPU only: GPU kernels may sum in another
order from run to run.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import AedaemonError
from . import CHROMA_SIZE, DEVICES, N_BINS
from .corpus import Corpus, load_corpus, one_hot

CHECKPOINT = "checkpoint.pt"


class TrainError(AedaemonError):
    pass


@dataclass
class TrainConfig:
    corpus: str
    out: str
    epochs: int = 150
    seed: int = 1
    latent_size: int = 8
    batch_size: int = 200
    learning_rate: float = 5e-4
    weight_decay: float = 1e-7
    threads: int = 2
    chroma_weight: float = 1e-3
    chroma_margin: float = 0.1
    final_epochs: int = 20  # the last this-many epochs run at a tenth of the learning rate
    device: str = "auto"  # one of DEVICES
    name: Optional[str] = None
    progress: bool = True
    command: str = ""

    def fingerprint(self, corpus: Corpus) -> dict:
        """Settings a checkpoint must share with the run that resumes it (epochs may grow)."""
        man = corpus.manifest
        h = hashlib.sha256(json.dumps({k: man.get(k) for k in ("files", "seed", "total_frames")}, sort_keys=True).encode())
        return {
            "corpus": h.hexdigest()[:16],
            "seed": self.seed,
            "latent_size": self.latent_size,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "init": "glorot-uniform",
            "chroma_weight": self.chroma_weight,
            "chroma_margin": self.chroma_margin,
        }


def partial_dir(out: Path) -> Path:
    return out.parent / f"{out.name}.partial"


def _atomic_torch_save(obj, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(spec: str) -> str:
    """The torch device for `--device`: "auto" takes CUDA, else MPS, else the CPU; an explicit
    device this machine (or this PyTorch build) does not have is a one-line TrainError."""
    import torch

    if spec not in DEVICES:
        raise TrainError(f"--device must be one of {', '.join(DEVICES)}, got '{spec}'")
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if _mps_available(torch) else "cpu"
    if spec == "cuda" and not torch.cuda.is_available():
        why = (f"this PyTorch ({torch.__version__}) is built without CUDA; install a CUDA build (docs/training.md)"
               if torch.version.cuda is None else "PyTorch sees no CUDA device (driver? CUDA_VISIBLE_DEVICES?)")
        raise TrainError(f"--device cuda: {why}; or use --device cpu")
    if spec == "mps" and not _mps_available(torch):
        raise TrainError("--device mps: Apple's Metal backend is not available here (macOS 12.3+ on Apple "
                         "silicon, with a PyTorch built for it); use --device cpu")
    return spec


def _deterministic(torch, device: str) -> None:
    """Deterministic kernels: required on the CPU (byte-identical bundles are tested). On a GPU a
    kernel without a deterministic version (the chroma hinge's gather backward on CUDA) warns
    instead of stopping the run; cuBLAS needs a fixed workspace, set before its first use."""
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=device != "cpu")


def _batches(frames: np.ndarray, labels: np.ndarray, idx: np.ndarray, size: int, device: str = "cpu"):
    import torch

    for s in range(0, len(idx), size):
        b = np.sort(idx[s : s + size])
        x = torch.from_numpy(frames[b].astype(np.float32))
        c = torch.from_numpy(one_hot(labels[b]))
        yield x.to(device), c.to(device)


def mean_loss(model, corpus: Corpus, idx: np.ndarray, batch: int = 1000, device: str = "cpu") -> float:
    import torch

    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, c in _batches(corpus.frames, corpus.labels, idx, batch, device):
            total += float(torch.sum((model(x, c) - x) ** 2)) / N_BINS
            n += len(x)
    return total / max(n, 1)


class ChromaConsistency:
    """Conditioning regulariser: decode random latent points of the whole learned box [0, 1]^N
    with random one-hot chroma, and penalise frames whose dominant (harmonic-salience) chroma is
    not the conditioning one: hinge on the salience relative to the frame's largest,
    relu(max_other - target + margin). Zero once the conditioning class wins by the margin, so
    it leaves the reconstruction alone wherever the decoder already obeys the chroma input.

    Without it the decoder obeys the chroma input only near the training embedding: on the GM
    corpus the mesh chroma accuracy (Table V) stayed at 0.65-0.70, C# and F# near 0.3.
    """

    def __init__(self, latent_size: int, margin: float, device: str = "cpu"):
        import torch

        from .corpus import SALIENCE_NOTES, salience_matrix

        self.latent_size = latent_size
        self.margin = margin
        self.device = device
        self.S = torch.from_numpy(salience_matrix()).T.contiguous().to(device)  # [n_bins, n_notes]
        self.pad = (-self.S.shape[1]) % CHROMA_SIZE
        self.shift = SALIENCE_NOTES[0] % CHROMA_SIZE

    def chroma(self, frames):
        import torch

        sal = frames @ self.S
        sal = torch.cat([sal, sal.new_zeros(len(sal), self.pad)], dim=1)
        per_class = sal.reshape(len(sal), -1, CHROMA_SIZE).amax(dim=1)
        return torch.roll(per_class, self.shift, dims=1)

    def loss(self, decoder, n: int, gen):
        import torch

        z = torch.rand(n, self.latent_size, generator=gen, device=self.device)
        k = torch.randint(0, CHROMA_SIZE, (n,), generator=gen, device=self.device)
        onehot = torch.nn.functional.one_hot(k, CHROMA_SIZE).float()
        ch = self.chroma(decoder(z, onehot))
        rel = ch / (ch.amax(dim=1, keepdim=True) + 1e-6)
        target = rel.gather(1, k[:, None])[:, 0]
        other = rel.masked_fill(onehot.bool(), -1.0).amax(dim=1)
        return torch.relu(other - target + self.margin).mean()


class _Interrupt:
    """Turn SIGTERM into KeyboardInterrupt while training, so both save and exit cleanly."""

    def __enter__(self):
        self._old = signal.getsignal(signal.SIGTERM)

        def handler(signum, frame):
            raise KeyboardInterrupt

        try:
            signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread
            self._old = None
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
        return False


def train(cfg: TrainConfig, log=None) -> dict:
    """Train (or resume), export the bundle to cfg.out; returns the training record."""
    try:
        import torch
    except ImportError:
        raise TrainError("training needs the optional extra: pip install -e '.[train]'") from None
    from tqdm import tqdm

    from .export import base_meta, export_bundle
    from .network import Autoencoder, linear_layers

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if cfg.epochs < 1:
        raise TrainError(f"--epochs must be at least 1, got {cfg.epochs}")
    if not 1 <= cfg.latent_size <= 256:
        raise TrainError(f"--latent-size must be 1..256, got {cfg.latent_size}")
    if cfg.batch_size < 1:
        raise TrainError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    out = Path(cfg.out)
    name = cfg.name or out.name
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise TrainError(f"model name '{name}' must be 1-64 letters, digits, '-' or '_' (use --name)")
    device = resolve_device(cfg.device)
    corpus = load_corpus(cfg.corpus)
    train_idx, val_idx = corpus.part("train"), corpus.part("validation")

    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    _deterministic(torch, device)
    model = Autoencoder(cfg.latent_size).to(device)  # initialised on the CPU: the same weights anywhere
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    if cfg.final_epochs < 0:
        raise TrainError(f"--final-epochs must be >= 0, got {cfg.final_epochs}")
    if cfg.chroma_weight < 0:
        raise TrainError(f"--chroma-weight must be >= 0, got {cfg.chroma_weight}")
    consistency = ChromaConsistency(cfg.latent_size, cfg.chroma_margin, device) if cfg.chroma_weight > 0 else None

    work = partial_dir(out)
    ckpt_path = work / CHECKPOINT
    fp = cfg.fingerprint(corpus)
    start, history, best = 0, [], {"val": float("inf"), "epoch": 0, "state": None}
    if ckpt_path.is_file():
        try:
            ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001
            raise TrainError(f"{ckpt_path}: unreadable checkpoint ({exc}); delete {work} to start over") from None
        if ck.get("fingerprint") != fp:
            diff = [k for k in fp if ck.get("fingerprint", {}).get(k) != fp[k]]
            raise TrainError(
                f"{work} holds an interrupted run with different settings ({', '.join(diff)}); "
                f"rerun it with the same ones, or delete {work} to start over"
            )
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start, history, best = ck["epoch"], ck["history"], ck["best"]
        log(f"resuming from {ckpt_path} after epoch {start}")
    work.mkdir(parents=True, exist_ok=True)
    log(f"training on {device}")

    try:
        with _Interrupt():
            for epoch in range(start, cfg.epochs):
                t0 = time.monotonic()
                lr = cfg.learning_rate * (0.1 if epoch >= cfg.epochs - cfg.final_epochs else 1.0)
                for group in opt.param_groups:
                    group["lr"] = lr
                model.train()
                order = np.random.default_rng([cfg.seed, epoch]).permutation(train_idx)
                n_batches = (len(order) + cfg.batch_size - 1) // cfg.batch_size
                bar = tqdm(
                    total=n_batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", file=sys.stderr,
                    disable=not cfg.progress, leave=False, mininterval=1.0, dynamic_ncols=True,
                )  # fmt: skip
                run_loss, seen, run_hinge = 0.0, 0, 0.0
                gen = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + epoch)
                for s in range(0, len(order), cfg.batch_size):
                    b = order[s : s + cfg.batch_size]
                    x = torch.from_numpy(corpus.frames[b].astype(np.float32)).to(device)
                    c = torch.from_numpy(one_hot(corpus.labels[b])).to(device)
                    mse = torch.mean((model(x, c) - x) ** 2)
                    loss = mse
                    if consistency is not None:
                        hinge = consistency.loss(model.decoder, len(b), gen)
                        loss = mse + cfg.chroma_weight * hinge
                        run_hinge += float(hinge.detach()) * len(b)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if not torch.isfinite(loss.detach()):
                        raise TrainError(f"the loss became {float(loss)} in epoch {epoch + 1}; try a lower learning rate")
                    run_loss += float(mse.detach()) * len(b)
                    seen += len(b)
                    bar.update(1)
                    bar.set_postfix(mse=f"{run_loss / seen:.3g}", chroma=f"{run_hinge / seen:.3g}", refresh=False)
                bar.close()
                train_loss = run_loss / max(seen, 1)
                hinge_loss = run_hinge / max(seen, 1)
                val_loss = mean_loss(model, corpus, val_idx, device=device)
                secs = time.monotonic() - t0
                history.append({"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "chroma_hinge": hinge_loss,
                                "val_loss": val_loss, "seconds": round(secs, 2)})  # fmt: skip
                marker = ""
                if val_loss < best["val"]:
                    best = {"val": val_loss, "epoch": epoch + 1, "state": copy.deepcopy(model.state_dict())}
                    marker = "  (best)"
                _atomic_torch_save(
                    {"fingerprint": fp, "config": asdict(cfg), "model": model.state_dict(), "optimizer": opt.state_dict(),
                     "epoch": epoch + 1, "history": history, "best": best},
                    ckpt_path,
                )  # fmt: skip
                log(
                    f"epoch {epoch + 1}/{cfg.epochs}: train MSE {train_loss:.4g}  chroma hinge {hinge_loss:.3g}  "
                    f"validation MSE {val_loss:.4g}  {secs:.1f} s{marker}"
                )
    except KeyboardInterrupt:
        done = len(history)
        raise TrainError(
            f"interrupted: {done} epoch(s) saved in {work}; rerun the same command to resume"
        ) from None

    # ---- export the best weights (from the CPU, whatever trained them)
    model.load_state_dict(best["state"])
    model.to("cpu").eval()
    with torch.no_grad():
        emb = []
        for x, c in _batches(corpus.frames, corpus.labels, train_idx, 2000):
            emb.append(model.encoder(x, c).numpy())
        emb = np.concatenate(emb)
    default_latent = np.clip(emb.mean(axis=0), 0.0, 1.0)
    seconds = [h["seconds"] for h in history]
    man = corpus.manifest
    record = {
        "corpus": man.get("description", str(corpus.path)),
        "corpus_path": str(corpus.path),
        "frames": man.get("frames", {}),
        "epochs": len(history),
        "best_epoch": best["epoch"],
        "loss": history[best["epoch"] - 1]["train_loss"],
        "validation_loss": best["val"],
        "test_mse": None,
        "chroma_accuracy": None,
        "seconds_per_epoch": round(float(np.mean(seconds)), 2),
        "training_seconds": round(float(np.sum(seconds)), 1),
        "optimizer": f"Adam lr {cfg.learning_rate} (x0.1 for the last {min(cfg.final_epochs, cfg.epochs)} epochs), "
        f"L2 {cfg.weight_decay}, batch {cfg.batch_size}, MSE"
        + (f" + {cfg.chroma_weight:g} x chroma-consistency hinge (margin {cfg.chroma_margin:g})" if consistency else ""),
        "chroma_weight": cfg.chroma_weight,
        "threads": cfg.threads,
        "device": device,
        "latent_embedding_range": [[round(float(a), 4) for a in emb.min(0)], [round(float(a), 4) for a in emb.max(0)]],
        "history": history,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed": cfg.seed,
        "command": cfg.command,
        "torch": torch.__version__,
    }
    meta = base_meta(
        name,
        cfg.latent_size,
        default_latent.tolist(),
        f"chroma-conditioned autoencoder (Colonel & Keene 2020), {cfg.latent_size} latent units, trained on "
        + man.get("description", str(corpus.path)),
        record,
        int(man.get("reference_note", 60)),
    )
    probe = val_idx[: min(256, len(val_idx))]

    def enc(x, c):
        with torch.no_grad():
            return model.encoder(torch.from_numpy(x), torch.from_numpy(c)).numpy()

    def dec(z, c):
        with torch.no_grad():
            return model.decoder(torch.from_numpy(z), torch.from_numpy(c)).numpy()

    try:
        with _Interrupt():
            info = export_bundle(
                out,
                linear_layers(model.encoder.net),
                linear_layers(model.decoder.net),
                meta,
                dec,
                enc,
                corpus.frames[probe].astype(np.float32),
                one_hot(corpus.labels[probe]),
                seed=cfg.seed,
            )
    except KeyboardInterrupt:
        raise TrainError(
            f"interrupted while exporting: nothing written to {out}; the training is saved in {work}, "
            "rerun the same command to export"
        ) from None
    shutil.rmtree(work, ignore_errors=True)
    log(
        f"wrote {out} (best epoch {best['epoch']}, validation loss {best['val']:.4g}, "
        f"{record['seconds_per_epoch']} s/epoch, decoder {info['decoder_bytes'] / 1e6:.1f} MB, "
        f"ONNX parity {max(info['decoder_parity_max_abs'], info['encoder_parity_max_abs']):.2g})"
    )
    record.update(info)
    from .quantize import QuantizeError, quantize_bundle

    try:
        record["int8_decoder"] = quantize_bundle(out, log=log)
    except QuantizeError as exc:  # the float32 bundle is written and plays: a warning, not a failed run
        log(f"warning: {exc}")
    return record
