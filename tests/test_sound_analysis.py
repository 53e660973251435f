"""The measuring instrument of issue 9 (benchmarks/sound_analysis.py) on synthetic signals whose
answers are known: pitch, harmonicity, levels, dips, clicks and onsets."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import sound_analysis as sa  # noqa: E402

SR = 44100


def tone(f0: float, seconds: float, partials: int = 1, amp: float = 0.3, sr: int = SR) -> np.ndarray:
    """A harmonic tone: partials 1/k in amplitude, each with its own phase, all below 0.45·sr."""
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t)
    for k in range(1, partials + 1):
        if k * f0 < 0.45 * sr:
            x += (amp / k) * np.sin(2 * np.pi * k * f0 * t + 0.7 * k)
    return x


# ---- pitch -----------------------------------------------------------------------------------


def test_midi_cents_and_pitch_class():
    assert sa.midi_to_hz(69) == pytest.approx(440.0)
    assert sa.midi_to_hz(60) == pytest.approx(261.6256, abs=1e-4)
    assert sa.hz_to_midi(880.0) == pytest.approx(81.0)
    assert sa.cents_error(440.0 * 2 ** (7 / 1200), 69) == pytest.approx(7.0)
    assert sa.cents_error(130.8128, 60) == pytest.approx(-1200.0, abs=0.01)
    assert sa.pitch_class(466.16) == 10 and sa.pitch_class(32.70) == 0 and sa.pitch_class(float("nan")) == -1
    assert np.isnan(sa.cents_error(float("nan"), 60))
    assert sa.note_name(61) == "C#4" and sa.note_name(36) == "C2"


@pytest.mark.parametrize("f0", [40.0, 61.74, 110.0, 261.63, 440.0, 1000.0, 2093.0, 3000.0, 4000.0])
@pytest.mark.parametrize("partials", [1, 8])
def test_yin_within_one_cent_from_40_hz_to_4_khz(f0, partials):
    x = tone(f0, 0.3, partials)
    p = sa.note_pitch(x, SR)
    assert abs(sa.cents(p.f0, f0)) < 1.0
    assert p.aperiodicity < 0.05 and p.voiced > 0.9
    assert sa.pitch_class(p.f0) == sa.pitch_class(f0)


def test_yin_missing_fundamental_and_octave_are_heard_as_the_period():
    # partials 2..6 of 110 Hz: the period (and a listener's pitch) is still 110 Hz
    t = np.arange(int(0.3 * SR)) / SR
    x = sum(0.2 / k * np.sin(2 * np.pi * 110 * k * t + k) for k in range(2, 7))
    assert abs(sa.cents(sa.note_pitch(x, SR).f0, 110.0)) < 1.0
    # a note an octave low reads -1200 cents, not "right pitch class, fine"
    assert sa.note_pitch(tone(130.81, 0.3, 6), SR).error(60) == pytest.approx(-1200.0, abs=1.0)


def test_yin_on_noise_finds_no_steady_pitch():
    x = np.random.default_rng(1).normal(0, 0.1, int(0.3 * SR))
    tr = sa.yin(x, SR)
    assert np.median(tr.aperiodicity) > 0.5
    assert np.isnan(sa.note_pitch(x, SR).f0)
    assert np.isnan(sa.note_pitch(np.zeros(SR // 2), SR).f0)


def test_yin_tracks_a_pitch_change():
    x = np.concatenate([tone(220.0, 0.3, 4), tone(330.0, 0.3, 4)])
    tr = sa.yin(x, SR)
    early, late = tr.f0[tr.times < 0.2], tr.f0[tr.times > 0.4]
    assert np.allclose(early, 220.0, rtol=1e-3) and np.allclose(late, 330.0, rtol=1e-3)


# ---- spectrum, harmonicity ---------------------------------------------------------------------


def test_spectrum_peaks_are_precise_in_frequency_and_amplitude():
    t = np.arange(int(0.2 * SR)) / SR
    x = 0.5 * np.sin(2 * np.pi * 1234.5 * t) + 0.05 * np.sin(2 * np.pi * 3456.7 * t + 1)
    pk = sa.spectrum_peaks(x, SR, floor_db=-30)
    assert len(pk.freq) == 2
    assert pk.freq == pytest.approx([1234.5, 3456.7], abs=0.05)
    assert pk.amp == pytest.approx([0.5, 0.05], rel=0.01)
    assert pk.rel_db[1] == pytest.approx(-20.0, abs=0.1)


def test_harmonicity_of_harmonic_and_detuned_partials():
    f0, t = 196.0, np.arange(int(0.3 * SR)) / SR
    assert sa.harmonicity(sa.spectrum_peaks(tone(f0, 0.3, 10), SR), f0).rms_cents < 0.5
    # partial k detuned by d_k cents: the energy-weighted RMS of d_k is what must come out
    amps = np.array([1.0, 0.7, 0.5, 0.4, 0.3, 0.2])
    detune = np.array([0.0, 15.0, -30.0, 25.0, 40.0, -10.0])
    freqs = f0 * np.arange(1, 7) * 2 ** (detune / 1200)
    x = sum(0.1 * a * np.sin(2 * np.pi * f * t + k) for k, (a, f) in enumerate(zip(amps, freqs)))
    expected = np.sqrt(np.sum(amps**2 * detune**2) / np.sum(amps**2))
    h = sa.harmonicity(sa.spectrum_peaks(x, SR), f0, refine=False)
    assert h.partials == 6
    assert h.rms_cents == pytest.approx(expected, abs=0.5)
    assert h.max_cents == pytest.approx(40.0, abs=0.5)
    # an f0 a few cents off is re-fitted, not read as inharmonicity
    h = sa.harmonicity(sa.spectrum_peaks(tone(f0, 0.3, 10), SR), f0 * 2 ** (8 / 1200))
    assert h.rms_cents < 0.5 and h.f0 == pytest.approx(f0, rel=1e-4)


# ---- level ---------------------------------------------------------------------------------


def test_rms_and_peak():
    x = np.sin(2 * np.pi * 100 * np.arange(SR) / SR)
    assert sa.rms_db(x) == pytest.approx(-3.01, abs=0.01)
    assert sa.peak(0.5 * x) == pytest.approx(0.5, abs=1e-4) and sa.peak_db(0.5 * x) == pytest.approx(-6.02, abs=0.01)
    assert sa.rms_db(np.zeros(10)) == -200.0


def test_k_weighting_reproduces_the_standards_48_khz_coefficients():
    sos = sa.k_weighting(48000)  # ITU-R BS.1770-4, tables 1 and 2
    assert sos[0] == pytest.approx([1.53512485958697, -2.69169618940638, 1.19839281085285,
                                    1.0, -1.69065929318241, 0.73248077421585], abs=1e-8)  # fmt: skip
    assert sos[1] == pytest.approx([1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621], abs=1e-8)


def test_loudness_of_a_997_hz_sine():
    # BS.1770, one channel of weight 1: -0.691 + 10·log10(A²/2 · |K(997 Hz)|²); the K gain at
    # 997 Hz (+0.69 dB) cancels the -0.691, so a -20 dBFS-peak sine reads -23.01 LUFS (mono;
    # the same sine in both channels of a stereo file would read -20.0, as EBU Tech 3341 has it)
    x = 0.1 * np.sin(2 * np.pi * 997 * np.arange(2 * SR) / SR)
    assert sa.loudness_lufs(x, SR) == pytest.approx(-23.01, abs=0.05)
    assert sa.loudness_lufs(x, SR, gated=False) == pytest.approx(-23.01, abs=0.05)
    # 48 kHz too; the gates drop the silent blocks around a tone (only the blocks straddling its
    # ends count, partly filled: -0.13 dB over 10 s), where the ungated mean square falls 4 dB
    y = 0.1 * np.sin(2 * np.pi * 997 * np.arange(10 * 48000) / 48000)
    padded = np.concatenate([np.zeros(5 * 48000), y, np.zeros(10 * 48000)])
    assert sa.loudness_lufs(y, 48000) == pytest.approx(-23.01, abs=0.05)
    assert sa.loudness_lufs(padded, 48000) == pytest.approx(-23.01 - 0.13, abs=0.05)
    assert sa.loudness_lufs(padded, 48000, gated=False) == pytest.approx(-23.01 + 10 * np.log10(10 / 25), abs=0.05)
    # the bass is weighted down: 40 Hz reads lower than 997 Hz at the same RMS
    low = 0.1 * np.sin(2 * np.pi * 40 * np.arange(2 * SR) / SR)
    assert sa.loudness_lufs(low, SR) < -24.0


# ---- envelope, dips, clicks, onsets ------------------------------------------------------------


def test_dip_measures_a_gap_and_ignores_smooth_changes():
    x = tone(440.0, 2.0, 6, amp=0.2)
    gain = np.ones_like(x)
    gap = slice(int(1.04 * SR), int(1.07 * SR))  # 30 ms at -9 dB, 40 ms after the change
    gain[gap] = 10 ** (-9 / 20)
    d = sa.dip(x * gain, SR, change=1.0)
    assert d.dip_db == pytest.approx(9.0, abs=0.5)
    assert 0.035 < d.at < 0.075
    assert d.ripple_db < 0.5
    # a step up by 6 dB with no gap: the lower steady level is never undercut
    step = np.where(np.arange(len(x)) < SR, 1.0, 2.0)
    d = sa.dip(x * step, SR, change=1.0)
    assert d.dip_db < 0.5 and d.after_db - d.before_db == pytest.approx(6.02, abs=0.05)
    assert sa.dip(x, SR, change=1.0).dip_db < 0.5


def test_rms_envelope_of_a_sine():
    env = sa.rms_envelope(tone(1000.0, 0.1), SR, 0.005)
    assert np.allclose(env[500:-500], 0.3 / np.sqrt(2), rtol=0.01)


def test_clicks_found_at_a_discontinuity_and_not_in_clean_tones():
    x = tone(440.0, 1.0, 6, amp=0.2)
    assert sa.clicks(x, SR) == []
    assert sa.clicks(tone(110.0, 1.0, 1, amp=0.5), SR) == []
    # a buzz (65 Hz, partials up to 20 kHz: a spike every period) is a sound, not clicks
    assert sa.clicks(tone(65.0, 1.0, 300, amp=0.3), SR) == []
    y = x.copy()
    y[20000:] = tone(440.0, 1.0, 6, amp=0.2)[: len(y) - 20000]  # restarts the wave: a jump
    found = sa.clicks(y, SR)
    assert len(found) == 1 and abs(found[0][0] - 20000) <= 5


@pytest.mark.parametrize("fade_ms", [0.0, 5.0, 30.0])
def test_onset_found_to_half_a_millisecond(fade_ms):
    start = 12345
    x = np.zeros(int(0.5 * SR))
    body = tone(261.63, 0.5, 6, amp=0.2)[: len(x) - start]
    ramp = np.minimum(1.0, np.arange(len(body)) / max(1.0, fade_ms * 1e-3 * SR))
    x[start:] = body * ramp
    x += np.random.default_rng(2).normal(0, 1e-5, len(x))  # a dither-like floor
    found = sa.onset(x, SR)
    assert found is not None and abs(found - start) <= 22  # ±0.5 ms
    assert sa.onset(np.zeros(1000), SR) is None
