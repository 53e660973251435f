"""CLI subcommands `corpus`, `train`, `evaluate` (registered by aedaemon.cli).

Heavy imports (soundfile, torch, matplotlib) happen inside the handlers, so that the main CLI
starts fast and works without the `[train]` extra.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..errors import AedaemonError
from . import DEVICES

EXTRA_HINT = "training needs the optional extra: pip install -e '.[train]'"


def _command_line() -> str:
    prog = Path(sys.argv[0]).name
    if prog in ("__main__.py", "commands.py"):
        prog = "python -m aedaemon.train.commands"
    return " ".join([prog, *map(shlex.quote, sys.argv[1:])])


def _need(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise AedaemonError(EXTRA_HINT) from None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_corpus(args: argparse.Namespace) -> int:
    _need("soundfile")
    from .corpus import build_from_audio, build_from_soundfont

    out = Path(args.out)
    if args.soundfont:
        if args.inputs:
            raise AedaemonError("give either audio files/folders or --soundfont, not both")
        programs = range(0, 112)
        if args.programs:
            try:
                lo, _, hi = args.programs.partition("-")
                programs = range(int(lo), int(hi or lo) + 1)
            except ValueError:
                raise AedaemonError(f"--programs must look like 0-111, got '{args.programs}'") from None
            if not (0 <= programs.start and programs.stop <= 128 and len(programs) > 0):
                raise AedaemonError(f"--programs must lie in 0-127, got '{args.programs}'")
        man = build_from_soundfont(
            Path(args.soundfont), out, seed=args.seed, programs=programs,
            frames_per_note=args.frames_per_note, command=_command_line(),
            progress=_log if not args.quiet else None,
        )  # fmt: skip
    else:
        man = build_from_audio(
            args.inputs, out, seed=args.seed, max_frames_per_file=args.max_frames_per_file,
            command=_command_line(), progress=_log if not args.quiet else None,
        )  # fmt: skip
    f = man["frames"]
    n_files = {k: sum(1 for x in man["files"] if x["split"] == k) for k in f}
    print(
        f"{out}: {man['total_frames']} frames from {len(man['files'])} sources — "
        + ", ".join(f"{k} {f[k]} ({n_files[k]} sources)" for k in f)
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    _need("torch")
    _need("tqdm")
    from .train import TrainConfig, train

    cfg = TrainConfig(
        corpus=args.corpus, out=args.out, epochs=args.epochs, seed=args.seed, latent_size=args.latent_size,
        batch_size=args.batch_size, learning_rate=args.learning_rate, threads=args.threads, name=args.name,
        chroma_weight=args.chroma_weight, final_epochs=args.final_epochs, device=args.device,
        progress=not args.quiet, command=_command_line(),
    )  # fmt: skip
    train(cfg)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    _need("matplotlib")
    from .evaluate import evaluate

    res = evaluate(Path(args.model), corpus=args.corpus, figures=not args.no_figures, log=_log)
    acc = res["chroma_accuracy"]
    print(f"test MSE {res['test_mse']:.3g} over {res['test_frames']} frames of held-out sources")
    print(
        f"mesh chroma accuracy: mean {res['chroma_accuracy_mean']:.3f}, min {min(acc.values()):.3f} — "
        + ", ".join(f"{k} {v:.2f}" for k, v in acc.items())
    )
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    _need("onnx")
    from .quantize import quantize_bundle

    quantize_bundle(Path(args.model), log=print)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "corpus",
        help="build a training corpus from audio files/folders or a GM soundfont",
        description="Audio (WAV/FLAC/AIFF, any channels and rate) or a soundfont rendered with "
        "fluidsynth → normalised 4096-point magnitude frames with per-frame chroma labels, "
        "split by source file into train/validation/test (~88/6/6).",
    )
    p.add_argument("inputs", nargs="*", metavar="FILE_OR_FOLDER", help="audio files or folders (searched recursively)")
    p.add_argument("--soundfont", metavar="SF2", help="render chromatic scales of every sounding melodic GM program")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (corpus.npz + manifest.json)")
    p.add_argument("--seed", type=int, default=1, help="seed of the train/validation/test split (default 1)")
    p.add_argument("--frames-per-note", type=int, default=16, help="soundfont: frames kept per note (default 16)")
    p.add_argument("--programs", metavar="LO-HI", help="soundfont: GM program range (default 0-111, the melodic ones)")
    p.add_argument("--max-frames-per-file", type=int, default=None, help="audio: keep at most this many frames per file")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-source progress lines")
    p.set_defaults(func=cmd_corpus)

    p = subparsers.add_parser(
        "train",
        help="train the chroma-conditioned autoencoder on a corpus and export a model bundle",
        description="Colonel & Keene 2020 autoencoder (PyTorch, on the CPU or a GPU). Resumable: rerun "
        "the same command after an interruption. Needs the [train] extra.",
    )
    p.add_argument("corpus", metavar="CORPUS_DIR")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="bundle folder to write (replaced atomically)")
    p.add_argument("--epochs", type=int, default=150, help="default 150 (the shipped model)")
    p.add_argument("--seed", type=int, default=1, help="default 1")
    p.add_argument("--latent-size", type=int, default=8, help="bottleneck units (default 8)")
    p.add_argument("--batch-size", type=int, default=200, help="default 200")
    p.add_argument("--learning-rate", type=float, default=5e-4, help="Adam learning rate (default 5e-4)")
    p.add_argument(
        "--final-epochs", type=int, default=20,
        help="the last N epochs run at a tenth of the learning rate (default 20; 0 = constant, as the paper)",
    )  # fmt: skip
    p.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads (default 2)")
    p.add_argument(
        "--device", choices=DEVICES, default="auto",
        help="where to train: auto (default: cuda if available, else mps, else cpu), cpu, cuda, mps; "
        "byte-identical results are promised on cpu only",
    )  # fmt: skip
    p.add_argument(
        "--chroma-weight", type=float, default=1e-3,
        help="weight of the chroma-consistency regulariser on random latent points (default 1e-3; "
        "0 = the paper's plain MSE)",
    )  # fmt: skip
    p.add_argument("--name", help="name written in model.json (default: the folder name, which is what the daemon "
                   "calls the model anyway)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "evaluate",
        help="test-set MSE, mesh chroma accuracy and figures of a trained model",
        description="Writes the results into the bundle's model.json and latent.png / "
        "reconstruction.png beside it.",
    )
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("--corpus", metavar="DIR", help="corpus folder (default: the one the model was trained on)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser(
        "quantize",
        help="add an int8-weight decoder (decoder-int8.onnx, ~3x faster decode) to a model bundle",
        description="onnxruntime dynamic quantisation of decoder.onnx; the error against the float32 "
        "decoder is measured and recorded in model.json. `aedaemon train` does this after export.",
    )
    p.add_argument("model", metavar="MODEL_DIR")
    p.set_defaults(func=cmd_quantize)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aedaemon.train.commands")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except AedaemonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
