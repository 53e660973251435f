"""Issue 10, items 1-3 and 5: what used to silence the engine for good — a change that no
longer fits the model, hops that failed without advancing the clock, a model the stream's hop
cannot serve, non-finite numbers in a saved state. Real models (synthetic ONNX decoders), the
real engine and output ring; the faults are injected where they arrive."""

from __future__ import annotations

import json
import logging
import math
import signal
import time

import numpy as np
import pytest

from aedaemon.audio import NullOutput
from aedaemon.client import Client
from aedaemon.engine import Engine
from aedaemon.errors import ParameterError
from aedaemon.model import load_bundle
from aedaemon.synthetic import make_synthetic_bundle


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_a_change_queued_before_a_swap_to_fewer_units_is_dropped_not_every_hop(bundle, models_dir, caplog):
    e = Engine(bundle)
    e.update(playing=True)
    e.render(4 * e.hop)
    due = e.sample_time + 2 * e.hop
    e.post_at(due, lambda eng: eng.update(latent=(0.5,) * 8))  # checked against 8 units when sent
    e.post(lambda eng: eng.swap_model(load_bundle(models_dir / "small")))
    out = e.render(20 * e.hop)
    assert e.bundle.meta.name == "small" and len(e.targets.latent) == 4
    assert e.stats.event_errors == 1
    assert np.isfinite(out).all() and rms(out[-4 * e.hop :]) > 1e-3  # still sounding
    assert "dropped a scheduled change" in caplog.text and "4 units" in caplog.text


def test_update_refuses_vectors_that_do_not_fit_the_model(bundle):
    e = Engine(bundle)
    with pytest.raises(ParameterError, match="8 units"):
        e.update(latent=(0.5,) * 4)
    with pytest.raises(ParameterError, match="chroma"):
        e.update(chroma=(1.0,) * 11)
    assert len(e.targets.latent) == 8


def test_failed_hops_keep_the_clock_and_the_sound_comes_back(bundle, caplog):
    e = Engine(bundle)
    out = NullOutput(e, block=256)
    e.update(playing=True)
    real_decode = e.bundle.decode
    failures = {"left": 5}

    def flaky(latent, chroma):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("injected decoder fault")
        return real_decode(latent, chroma)

    e.bundle.decode = flaky  # the fault: a decoder that raises (as a corrupt session would)
    e.update(latent=(0.9,) * 8)  # a new frame: decode runs
    for _ in range(12):
        out._render_one()
    assert out.render_errors == 5 and e.stats.skipped_hops == 5
    assert e.sample_time == 12 * e.hop  # failed hops counted as played: timetags stay on time
    assert out.ring.fill() == 12 * e.hop
    tail = np.zeros(4 * e.hop, np.float32)
    out.ring.read_pos = out.ring.write_pos - len(tail)
    out.ring.read_into(tail, len(tail))
    assert rms(tail) > 1e-3  # sounding again after the faults
    assert "render_hop failed" in caplog.text


def test_a_model_whose_frame_the_hop_cannot_serve_is_refused_and_the_stream_keeps_its_hop(bundle, tmp_path):
    tiny = make_synthetic_bundle(tmp_path / "tiny", name="tiny", n_fft=512, hop=128)
    e = Engine(bundle)  # hop 1024
    with pytest.raises(ParameterError, match="n_fft 512"):
        e.swap_model(load_bundle(tiny))
    e.update(playing=True)
    e.post(lambda eng: eng.swap_model(load_bundle(tiny)))  # as SIGHUP posts it
    x = e.render(8 * e.hop)
    assert e.hop == 1024 and e.bundle.meta.name == "synthetic" and e.n_fft == 4096
    assert len(x) == 8 * 1024 and rms(x[-2048:]) > 1e-3


def test_restore_skips_non_finite_and_mis_sized_fields(bundle, caplog):
    e = Engine(bundle)
    before = e.targets
    t = e.restore({"freq_shift": math.inf, "chroma": [1e999] + [0.0] * 11, "latent": [0.1] * 4,
                   "gain": float("nan"), "transpose": 3, "scale": [1.0] * 8, "mute": "x"})
    assert t.freq_shift == before.freq_shift and t.chroma == before.chroma and t.latent == before.latent
    assert t.gain == before.gain and t.transpose == 3.0
    assert all(math.isfinite(v) for v in t.chroma)
    for key in ("freq_shift", "chroma", "latent", "gain"):
        assert key in caplog.text


def test_daemon_starts_from_a_last_state_with_infinity_and_keeps_it_finite(tmp_path, models_dir):
    from daemon_harness import Daemon

    state = tmp_path / "state"
    state.mkdir()
    (state / "last_state.json").write_text(json.dumps({"format_version": 1}).replace(
        "}", ', "state": {"freq_shift": Infinity, "chroma": [1e999, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], '
        '"transpose": 2, "playing": true}}'))
    with Daemon(tmp_path, models_dir) as d:
        with Client(port=d.port, timeout=3.0) as c:
            assert all(math.isfinite(v) for v in c.get("/chroma"))
            assert math.isfinite(c.get("/freq_shift")[0])
        assert d.alive()


def test_sighup_onto_a_model_the_hop_cannot_serve_keeps_sounding(tmp_path):
    from daemon_harness import Daemon

    models = tmp_path / "models"
    make_synthetic_bundle(models / "synthetic", name="synthetic")
    make_synthetic_bundle(models / "tiny256", name="tiny256", n_fft=256, hop=64)  # the stream's 256 cannot
    cfg = tmp_path / "aedaemon.toml"
    cfg.write_text('model = "synthetic"\n')
    with Daemon(tmp_path, models, "--fresh", config=cfg, model=None) as d:  # the model from the file
        with Client(port=d.port, timeout=3.0) as c:
            c.play()
            c.sync()
            assert c.status()["hop"] == 256  # the daemon's default hop
            cfg.write_text('model = "tiny256"\n')
            d.proc.send_signal(signal.SIGHUP)
            time.sleep(1.0)
            st = c.status()
            assert st["model"] == "synthetic" and st["hop"] == 256 and st["failed_hops"] == 0
            rms_db, _ = c.meter()
            assert rms_db > -60.0  # still sounding
        assert "n_fft 256" in d.stderr()


def test_the_live_default_hop():
    from aedaemon.engine import live_hop

    assert live_hop(4096, 1024) == 256  # the shipped model: 5.8 ms frames live
    assert live_hop(512, 128) == 128  # a model whose own hop is smaller keeps it
    assert live_hop(256, 64) == 64
    assert live_hop(3000, 750) == 750  # 256 does not divide its frame: the model's hop


def test_an_underrun_widens_the_render_margin_and_a_calm_spell_narrows_it(bundle, monkeypatch, caplog):
    import aedaemon.audio as audio
    from aedaemon.ringbuffer import H_RING_UNDERRUNS

    monkeypatch.setattr(audio, "CALM_SECONDS", 0.3)
    caplog.set_level(logging.INFO, "aedaemon.audio")
    out = NullOutput(Engine(bundle, hop=256), block=256)
    out.start()
    try:
        time.sleep(0.1)
        base = out.ahead
        out.ring.header[H_RING_UNDERRUNS] += 1  # as the clock counts a short read
        deadline = time.monotonic() + 1.0
        while out.ahead == base and time.monotonic() < deadline:
            time.sleep(0.005)
        wide = out.ahead
        assert wide > base
        deadline = time.monotonic() + 2.0
        while out.ahead != base and time.monotonic() < deadline:
            time.sleep(0.01)
        assert out.ahead == base  # back after the calm spell (0.3 s here, a minute by default)
        assert "ring underrun: now rendering" in caplog.text and "no underrun for" in caplog.text
    finally:
        out.close()


def test_a_renderer_that_falls_behind_decodes_every_other_hop_and_recovers(tmp_path, caplog):
    """Issue 14 item 3: a decoder too slow for real time (a real, wide ONNX network, at a hop of
    1.45 ms, standing in for a slow board) makes the live renderer reuse every other decode
    instead of underflowing; offline renders never degrade."""
    heavy = load_bundle(make_synthetic_bundle(tmp_path / "heavy", name="heavy", hidden=4096))

    def walk(engine: Engine, hops: int) -> None:
        for i in range(hops):  # a new latent every hop
            engine.update(latent=tuple(0.3 + 0.4 * ((i * 0.618 + k * 0.1) % 1.0) for k in range(8)))
            engine.render_hop()

    e = Engine(heavy, hop=64)
    e.allow_economy = True
    e.update(playing=True)
    walk(e, 200)
    assert e.stats.economy_spells >= 1 and e.stats.economy_skips > 30
    assert e.stats.decodes < 170
    assert "economy mode" in caplog.text
    offline = Engine(heavy, hop=64)
    offline.update(playing=True)
    walk(offline, 60)
    assert offline.stats.economy_skips == 0 and offline.stats.decodes == 60
