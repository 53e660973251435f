"""RTPGHI on the frames the shipped model emits (issue 9 item 3): spectral convergence near the
offline bound, no level dip at abrupt changes, phase methods at one level.

Figures are measured with benchmarks/bench_phase.py's own STFT and FGLA and with
benchmarks/sound_analysis.py (dip), which share no code with the phase implementation.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_phase as bp  # noqa: E402
import sound_analysis as sa  # noqa: E402

from aedaemon.dsp.phase import RTPGHI, transition_gains  # noqa: E402
from aedaemon.dsp.stft import dual_window, hann  # noqa: E402

MODEL = ROOT / "models" / "default"


@pytest.fixture(scope="module")
def bundle():
    from aedaemon.model import load_bundle

    return load_bundle(MODEL)


@pytest.fixture(scope="module")
def frames(bundle):
    return bp.decoded_frames(bundle, latents=4)  # 12 of the benchmark's 30 frames


def _held_sc(frame, **kw):
    an = bp.Analysis(4096, 1024)
    tgt = np.tile(frame, (bp.HELD, 1))
    return an.sc_db(tgt, bp.render(tgt, 4096, 1024, **kw), 8, bp.HELD - 4), tgt, an


def test_steady_decoded_frames_reach_the_goal_and_beat_the_old_defaults(frames):
    new = np.array([_held_sc(f)[0] for f in frames])
    old = np.array([_held_sc(f, **bp.BASELINE)[0] for f in frames])
    assert new.mean() <= -17.0, new
    assert np.all(new <= old + 0.5), (new, old)
    assert new.max() <= -10.0, new  # the broad-run (noisy) frames: -5.9 dB before


def test_the_hardest_frames_stay_near_fast_griffin_lim(frames):
    # frames 9-11: latent 3, broad spectral runs (the baseline's worst, gap up to 9.7 dB)
    for f in frames[9:12]:
        sc, tgt, an = _held_sc(f)
        bound = an.sc_db(tgt, bp.fgla(tgt, 4096, 1024, iters=100), 8, bp.HELD - 4)
        assert sc - bound <= 6.0, (sc, bound)


def test_a_new_latent_every_frame(bundle):
    an = bp.Analysis(4096, 1024)
    mv = bp.moving(bundle, 4096, 1024, an, 24, walk=True)
    assert np.mean([v["rtpghi"] for v in mv.values()]) <= -16.0, mv


def test_transition_gains_make_an_incoherent_crossfade_power_complementary():
    g = np.array(transition_gains(4096, 1024))
    w = hann(4096)
    h = w * dual_window(w, 1024)
    t = np.arange(3 * 1024)
    alpha = sum(np.interp(t + k * 1024, np.arange(4096), h) for k in range(1, 4))
    beta = sum(gj * np.interp(t - j * 1024, np.arange(4096), h, left=0.0) for j, gj in enumerate(g))
    p = 10 * np.log10(alpha**2 + beta**2)
    assert p.min() > -1.7 and p.max() < 1.7
    assert 10 * np.log10((alpha**2 + (1 - alpha) ** 2).min()) < -2.9  # what it corrects


def _engine_dip(bundle, change, phase="rtpghi"):
    from aedaemon.engine import Engine

    e = Engine(bundle, phase=phase, seed=0)
    sr, hop = e.sample_rate, e.hop
    e.update(glide=0.0, latent=tuple(float(v) for v in bundle.meta.default_latent), playing=True)
    at = round(1.0 * sr / hop) * hop
    first = e.render(at)
    e.update(**change)
    x = np.concatenate([first, e.render(sr)])
    return sa.dip(x, sr, at / sr)


def test_no_dip_at_a_latent_jump(bundle):
    other = bp.halton_latents(bundle, 2)[1]
    d = _engine_dip(bundle, {"latent": tuple(other)})
    assert d.dip_db <= 2.0, d


def test_no_dip_at_a_chroma_change(bundle):
    from aedaemon.engine import one_hot

    d = _engine_dip(bundle, {"chroma": one_hot(7)})
    assert d.dip_db <= 2.0, d


def test_noise_phase_plays_at_the_rtpghi_level(bundle):
    from aedaemon.engine import Engine

    levels = {}
    for m in ("rtpghi", "noise"):
        got = []
        for c in (0, 4, 9):
            e = Engine(bundle, phase=m, seed=0)
            from aedaemon.engine import one_hot

            e.update(playing=True, chroma=one_hot(c))
            x = e.render(int(0.8 * e.sample_rate))[int(0.3 * e.sample_rate) :]
            got.append(sa.rms_db(x))
        levels[m] = np.mean(got)
    assert abs(levels["noise"] - levels["rtpghi"]) <= 1.0, levels


# ---- every decoded frame of the benchmark, held (issue 9 item 3's goal) --------------------------


@pytest.fixture(scope="module")
def all_frames(bundle):
    return bp.decoded_frames(bundle, latents=10)  # the benchmark's 30 frames


def test_every_decoded_frame_is_within_4_db_of_fast_griffin_lim(all_frames):
    """bench_phase's goal on all 30 frames: mean <= -17 dB and within 4 dB of FGLA-300 on every
    frame (before the held-frame stages: -16.5 dB, 22 of 30, the broad noisy frames 7 dB away)."""
    rows = []
    for f in all_frames:
        sc, tgt, an = _held_sc(f)
        rows.append((sc, an.sc_db(tgt, bp.fgla(tgt, 4096, 1024, iters=300), 8, bp.HELD - 4)))
    sc, bound = np.array(rows).T
    assert sc.mean() <= -17.0, sc.mean()
    assert np.all(sc - bound <= 4.0), [(k, round(g, 2)) for k, g in enumerate(sc - bound) if g > 4.0]


def test_held_noise_bands_play_at_their_level_and_stay_noise(all_frames):
    """The broad noisy frames (latent 4): the band's STFT energy comes back within 1 dB of the
    held magnitude's (bin-centred sinusoids keep 2/3 of their amplitude at their bin: -1.6 dB
    measured without the noise gain), and the waveform is no more peaky than the old defaults' (the
    quadrature pattern alone is a pulse train: crest factor about twice)."""
    for f in all_frames[12:15]:
        tgt = np.tile(f, (bp.HELD, 1))
        an = bp.Analysis(4096, 1024)
        x = bp.render(tgt, 4096, 1024)
        got = an.mag(x)[8 : bp.HELD - 4]
        level = 10 * np.log10(np.sum(got**2) / np.sum(tgt[8 : bp.HELD - 4] ** 2))
        assert abs(level) <= 1.0, level
        old = bp.render(tgt, 4096, 1024, **bp.BASELINE)
        crest = [np.abs(y[8192:20480]).max() / np.sqrt(np.mean(y[8192:20480] ** 2)) for y in (x, old)]
        assert crest[0] <= 1.25 * crest[1], crest
