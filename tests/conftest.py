"""Shared fixtures: real model bundles (a synthetic ONNX decoder built with the onnx helper API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aedaemon.model import load_bundle
from aedaemon.synthetic import make_synthetic_bundle


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A models directory with two synthetic bundles: 'synthetic' (8 units) and 'small' (4 units)."""
    root = tmp_path_factory.mktemp("models")
    make_synthetic_bundle(root / "synthetic", name="synthetic")
    make_synthetic_bundle(root / "small", name="small", latent_size=4, seed=3)
    return root


@pytest.fixture(scope="session")
def synthetic_model(models_dir) -> Path:
    return models_dir / "synthetic"


@pytest.fixture()
def bundle(synthetic_model):
    return load_bundle(synthetic_model)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, models_dir):
    """`aedaemon run` as a subprocess on PortAudio/jackd with the synthetic model, one per module
    (a module may define its own `daemon`, e.g. on the null clock)."""
    from daemon_harness import Daemon

    d = Daemon(tmp_path_factory.mktemp("daemon"), models_dir, "--fresh")
    yield d
    assert d.terminate() == 0


@pytest.fixture()
def c(daemon):
    """A blocking client of this module's daemon."""
    from aedaemon.client import Client

    with Client(port=daemon.port, timeout=3.0) as client:
        yield client
