"""Issue 9 item 4: even loudness with headroom (the shipped model, judged by BS.1770 from outside)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import sound_analysis as sa  # noqa: E402
from test_pitch_tracking import SR, TIMBRES, play_score, shipped  # noqa: E402,F401

from aedaemon.dsp.dynamics import LIMIT_KNEE  # noqa: E402
from aedaemon.dsp.loudness import KWeighting, k_weighting_power  # noqa: E402

TONE = 0.4


def test_k_weighting_shape():
    db = 10 * np.log10(k_weighting_power(np.array([20.0, 100.0, 1000.0, 4000.0, 10000.0])))
    assert db[0] < -10 and abs(db[1]) < 1.5 and abs(db[2]) < 1.0 and 3.0 < db[3] < 4.5 and 3.5 < db[4] < 4.5


def test_gain_brings_frames_to_the_target_and_is_zero_for_silence():
    kw = KWeighting(4096, SR)
    mag = np.zeros(2049)
    mag[24] = 1.0
    assert kw.loudness(mag * kw.gain(mag)) == pytest.approx(-18.0, abs=0.01)
    assert kw.gain(np.zeros(2049)) == 0.0


def levels(x: np.ndarray, count: int) -> tuple[list[float], float]:
    """K-weighted loudness of each tone's steady part, and the peak sample of the whole render."""
    out = [sa.loudness_lufs(x[int((k * TONE + 0.15) * SR) : int((k + 1) * TONE * SR)], SR, gated=False)
           for k in range(count)]
    return out, sa.peak(x)


def test_twelve_pitch_classes_on_three_timbres_within_4_db_and_limiter_idle(shipped):
    lufs, peak = [], 0.0
    for latent in TIMBRES.values():
        events = [(0.0, "/play", [1])] + [(k * TONE, "/chroma", [k]) for k in range(12)]
        x = play_score(shipped, events, 12 * TONE, latent)
        lv, pk = levels(x, 12)
        lufs += lv
        peak = max(peak, pk)
    assert max(lufs) - min(lufs) <= 4.0, lufs
    assert peak <= LIMIT_KNEE


def test_notes_36_to_96_within_4_db_at_full_velocity_and_limiter_idle(shipped):
    notes = list(range(36, 97, 4))
    x = play_score(shipped, [(k * TONE, "/note", [n, 127]) for k, n in enumerate(notes)], len(notes) * TONE)
    lufs, peak = levels(x, len(notes))
    assert max(lufs) - min(lufs) <= 4.0, lufs
    assert peak <= LIMIT_KNEE
