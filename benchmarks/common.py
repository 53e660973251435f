"""What the benchmark scripts share: their three flags and the model they measure."""

from __future__ import annotations

import argparse
import atexit
import tempfile
from pathlib import Path

from aedaemon.synthetic import make_synthetic_bundle


def bench_arguments(doc: str, quick_help: str, hop: bool = False) -> argparse.Namespace:
    """--model (default models/default), --quick and --json (and --hop when asked), with the
    script's first doc line; a model folder that does not exist is replaced by a synthetic
    decoder (and says so)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    if hop:
        ap.add_argument("--hop", type=int, default=None, help="synthesis hop (default: the model's)")
    ap.add_argument("--model", type=Path, default=Path("models/default"))
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if not (args.model / "model.json").exists():
        tmp = tempfile.TemporaryDirectory()
        atexit.register(tmp.cleanup)
        missing, args.model = args.model, make_synthetic_bundle(Path(tmp.name) / "synthetic")
        print(f"(no model at {missing}: using a synthetic decoder)")
    return args
