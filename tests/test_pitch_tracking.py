"""Issue 9 item 1: the note sets the pitch, for every timbre (the shipped model, judged from outside).

Rendered through the address table (scores scheduled as `aedaemon render --score` does) and
heard with benchmarks/sound_analysis.py's YIN, which shares no code with dsp/pitch.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import sound_analysis as sa  # noqa: E402

from aedaemon.dsp.pitch import PitchEstimator  # noqa: E402
from aedaemon.engine import Engine  # noqa: E402
from aedaemon.errors import ParameterError  # noqa: E402
from aedaemon.model import load_bundle  # noqa: E402
from aedaemon.protocol import OfflineServices, dispatch  # noqa: E402
from aedaemon.render import ScoreEvent, schedule_score  # noqa: E402

SHIPPED = ROOT / "models" / "default"
SR = 44100
NOTE = 0.45  # seconds per scored note; the last 0.25 s are judged
# three timbres: the default latent and two far from it (corners of the trained range)
TIMBRES = {
    "default": None,
    "bright": [0.2, 0.8, 0.3, 0.7, 0.2, 0.6, 0.1, 0.8],
    "halton": [0.62, 0.27, 0.44, 0.58, 0.71, 0.35, 0.3, 0.52],
}


@pytest.fixture(scope="module")
def shipped():
    return load_bundle(SHIPPED)


def send(engine: Engine, address: str, *args) -> None:
    dispatch(address, list(args), engine=engine, services=OfflineServices())


def play_score(bundle, events: list[tuple[float, str, list]], seconds: float, latent=None) -> np.ndarray:
    engine = Engine(bundle)
    send(engine, "/glide", 0)
    if latent is not None:
        send(engine, "/latent", *latent)
    schedule_score(engine, [ScoreEvent(t, a, tuple(args)) for t, a, args in events])
    return engine.render(int(seconds * SR))


def heard(x: np.ndarray, start: float, end: float, a4: float = 440.0) -> tuple[float, int]:
    """(cents from nothing: the heard MIDI pitch, pitch class) of the steady part x[start:end]."""
    p = sa.note_pitch(x[int(start * SR) : int(end * SR)], SR)
    return float(sa.hz_to_midi(p.f0, a4)), sa.pitch_class(p.f0, a4)


# ---- the estimator on synthetic frames ---------------------------------------------------------


def harmonic_frame(f0: float, partials: int = 10, odd_db: float = 0.0) -> np.ndarray:
    """A decoded-looking frame: Hann main lobes at k·f0, 1/k amplitudes, zeros elsewhere."""
    mag = np.zeros(2049)
    for k in range(1, partials + 1):
        centre = k * f0 * 4096 / SR
        bins = np.arange(int(centre) - 2, int(centre) + 3)
        lobe = np.maximum(0.0, np.cos(np.pi * (bins - centre) / 4.0)) ** 2
        gain = 10 ** (odd_db / 20) if k % 2 else 1.0
        ok = (bins > 0) & (bins < 2049)
        mag[bins[ok]] += lobe[ok] * gain / k
    return mag


@pytest.mark.parametrize("f0", [98.0, 146.83, 261.63, 440.0, 987.77])
def test_estimator_finds_f0_with_and_without_the_pitch_class(f0):
    est = PitchEstimator(4096, SR)
    pc = sa.pitch_class(f0)
    for found in (est.estimate(harmonic_frame(f0), pc), est.estimate(harmonic_frame(f0), None)):
        assert found is not None and abs(sa.cents(found, f0)) < 5


def test_estimator_octave_follows_periodicity():
    est = PitchEstimator(4096, SR)
    # odd partials 40 dB down: the sound repeats at 2·f0 (what YIN hears)
    assert abs(sa.cents(est.estimate(harmonic_frame(130.81, odd_db=-40.0), 0), 261.63)) < 5
    # odd partials 12 dB down: still periodic at f0
    assert abs(sa.cents(est.estimate(harmonic_frame(130.81, odd_db=-12.0), 0), 130.81)) < 5


def test_estimator_returns_none_for_silence_and_noise():
    est = PitchEstimator(4096, SR)
    assert est.estimate(np.zeros(2049), 0) is None
    noise = np.abs(np.random.default_rng(0).standard_normal(2049))
    assert est.estimate(noise, 0) is None and est.estimate(noise, None) is None


# ---- the shipped model over the keyboard -------------------------------------------------------


# 'bright' A# decodes at A#6 (3729 Hz): /note 46 asks the shaper for -48 semitones and sounds
# 60 cents sharp (a transposition limit, not the tracker's: the tracked f0 is within 5 cents);
# its octave-ambiguous C# and F# frames now track as YIN hears them (see dsp/pitch.py)
FOUR_OCTAVES_DOWN = pytest.mark.xfail(strict=True, reason="bright A#: a -48 semitone shift sounds 60 cents sharp")


@pytest.mark.parametrize("timbre", [pytest.param(t, marks=FOUR_OCTAVES_DOWN) if t == "bright" else t for t in TIMBRES])
def test_notes_over_the_keyboard_sound_their_pitch(shipped, timbre):
    """36…96 step 5: the pitch class always right, in tune (±25 cents) up to whole octaves; in the
    right octave wherever the note is within the ±24 semitones of shaping from the decoded
    register (48…83 for every register the model decodes, C3…B5), but for at most one note per
    timbre (a frame whose octave is ambiguous: odd partials at the edge of what a periodicity
    tracker still counts); beyond, the documented fallback: the right class in the nearest octave."""
    notes = list(range(36, 97, 5))
    x = play_score(shipped, [(k * NOTE, "/note", [n, 127]) for k, n in enumerate(notes)], len(notes) * NOTE,
                   TIMBRES[timbre])
    octave_off = []
    for k, n in enumerate(notes):
        midi, pc = heard(x, k * NOTE + 0.2, (k + 1) * NOTE)
        assert pc == n % 12, (timbre, n, midi)
        cents = 100.0 * (midi - n)
        assert abs(cents - 1200 * round(cents / 1200)) <= 25, (timbre, n, cents)
        if 48 <= n <= 83 and abs(cents) > 25:
            octave_off.append((n, round(cents)))
    assert len(octave_off) <= 1, (timbre, octave_off)


def test_a_held_note_keeps_its_pitch_while_the_latent_sweeps_across_the_register_fold(shipped):
    """/note 60 held while unit 6 steps 0 → 1 (the default timbre's register jumps C5 → C3 on the
    way): every steady segment within ±25 cents of C4."""
    steps = np.linspace(0.0, 1.0, 9)
    seg = 0.3
    events = [(0.0, "/note", [60, 127])] + [(k * seg, "/latent/6", [float(v)]) for k, v in enumerate(steps)]
    x = play_score(shipped, events, len(steps) * seg)
    for k, v in enumerate(steps):
        midi, _ = heard(x, k * seg + 0.12, (k + 1) * seg)
        assert abs(100.0 * (midi - 60)) <= 25, (v, midi)


def test_tune_432_moves_every_note_by_the_same_cents(shipped):
    events = [(0.0, "/tune", [432.0]), (0.0, "/note", [57, 127]), (NOTE, "/note", [69, 127])]
    x = play_score(shipped, events, 2 * NOTE)
    for k, n in enumerate((57, 69)):
        midi, _ = heard(x, k * NOTE + 0.2, (k + 1) * NOTE)
        assert abs(100.0 * (midi - n) - 1200.0 * np.log2(432.0 / 440.0)) <= 10, (n, midi)


def test_tune_out_of_range_is_refused_and_every_midi_note_is_accepted(shipped):
    engine = Engine(shipped)
    with pytest.raises(ParameterError, match=r"tune \(A4 in Hz\) 300 is out of range 400..480"):
        send(engine, "/tune", 300)
    assert engine.note_range() == (0, 127)  # four octaves of correction reach the whole keyboard
    for note in range(128):
        send(engine, "/note", note, 100)
    with pytest.raises(ParameterError, match="note 128 is out of range 0..127"):
        send(engine, "/note", 128, 100)
    assert engine.targets.pitch == 127 and engine.targets.tune == 440.0


def test_transpose_is_an_offset_from_the_played_note(shipped):
    x = play_score(shipped, [(0.0, "/note", [60, 127]), (0.0, "/transpose", [7.0])], NOTE)
    midi, _ = heard(x, 0.2, NOTE)
    assert abs(100.0 * (midi - 67)) <= 25


def test_plain_play_sounds_the_chroma_in_the_reference_octave(shipped):
    engine = Engine(shipped)
    send(engine, "/chroma", "E")
    send(engine, "/play")
    x = engine.render(int(NOTE * SR))
    midi, _ = heard(x, 0.2, NOTE)
    assert abs(100.0 * (midi - 64)) <= 25  # E4: reference note 60's octave


# a bench timbre (bench_sound's 'halton2', rounded) whose A# frame is periodic a fifth lower: the
# conditioned class is the 3rd harmonic of D#3 (YIN hears D#3 on the raw frame)
OFF_CLASS_TIMBRE = [0.9775, 0.2756, 0.1245, 0.6414, 0.0644, 0.2536, 0.1092, 0.3428]


def test_a_frame_periodic_off_its_chroma_class_is_tracked_by_the_full_search(shipped):
    n = shipped.meta.latent_size
    chroma = np.zeros(12, np.float32)
    chroma[10] = 1.0
    frame = shipped.decode(np.asarray(OFF_CLASS_TIMBRE[:n], np.float32), chroma).astype(np.float64)
    f0 = PitchEstimator(shipped.meta.n_fft, SR).estimate(frame, 10)
    assert f0 is not None and sa.pitch_class(f0) == 3  # D#, not the chroma's A#
    notes = (46, 58, 70)
    x = play_score(shipped, [(k * NOTE, "/note", [n, 127]) for k, n in enumerate(notes)], len(notes) * NOTE,
                   OFF_CLASS_TIMBRE)
    for k, n in enumerate(notes):
        midi, _ = heard(x, k * NOTE + 0.2, (k + 1) * NOTE)
        assert abs(100.0 * (midi - n)) <= 25, (n, midi)  # was -7 semitones: the chroma's class shifted


# ---- every bench timbre over the whole keyboard (issue 9's goal) -------------------------------


@pytest.fixture(scope="module")
def bench_sound_module():
    import bench_sound

    return bench_sound


@pytest.mark.parametrize("hop", [None, 256])  # the model's hop (1024) and the daemon's default
def test_the_five_bench_timbres_play_in_tune_over_the_keyboard(shipped, bench_sound_module, hop):
    """bench_sound's pitch goal, as it measures it (the public render path, YIN from
    sound_analysis, which shares nothing with dsp/pitch.py): /note 36…96 on the default latent
    and four Halton points, >= 98 % within ±25 cents, the pitch class always right, median
    <= 5 cents. Before the class-keeping tracker, the harmonic emphasis and the high-register
    stage: halton2 96.7 %, halton3 70.5 %, halton4 18.0 % (no pitch in 10 of its 12 classes)."""
    bs = bench_sound_module
    old_hop, bs.SYNTH_HOP = bs.SYNTH_HOP, hop
    try:
        for name, latent in bs.timbres(shipped, 5):
            rows = bs.keyboard(shipped, latent, list(range(36, 97)))
            s = bs.pitch_summary(rows)
            assert s["refused"] == 0, name
            assert s["within_25_pct"] >= 98.0, (name, bs.strip(rows))
            assert s["pitch_class_pct"] == 100.0, (name, bs.strip(rows))
            assert s["median_abs_cents"] <= 5.0, (name, s["median_abs_cents"])
            assert s["peak_max"] <= 0.8, (name, s["peak_max"])
    finally:
        bs.SYNTH_HOP = old_hop


def test_a_breathy_frame_keeps_its_class_and_gets_its_partials(shipped):
    """halton4 (bench_sound's breathiest timbre), D: the frame's series is buried in noise
    (d ~ 0.77, was None); the tracker keeps the class, and the shaper's emphasis puts the
    partials on its harmonics while each harmonic band keeps its energy."""
    from aedaemon.dsp.shaping import SpectralShaper, harmonic_emphasis

    import bench_sound as bs

    latent = dict(bs.timbres(shipped, 5))["halton4"]
    chroma = np.zeros(12, np.float32)
    chroma[2] = 1.0
    frame = shipped.decode(np.asarray(latent, np.float32), chroma).astype(np.float64)
    est = PitchEstimator(shipped.meta.n_fft, SR)
    f0, d = est.estimate_periodicity(frame, 2)
    assert sa.pitch_class(f0) == 2 and d > 0.6
    assert est.estimate(frame, 2) == f0
    bin_hz = SR / shipped.meta.n_fft
    out = harmonic_emphasis(frame, f0 / bin_hz, 0.9)
    f0b = f0 / bin_hz
    for k in range(1, 8):  # band energy kept, the partial at k f0 the band's maximum
        lo, hi = int(round((k - 0.5) * f0b)), int(round((k + 0.5) * f0b))
        assert np.isclose(np.sum(out[lo:hi] ** 2), np.sum(frame[lo:hi] ** 2), rtol=1e-9)
        assert abs(lo + int(np.argmax(out[lo:hi])) - k * f0b) <= 1.0
    # what the engine plays: YIN hears D where it heard nothing (aperiodicity > 0.5) before
    shaped = SpectralShaper(shipped.meta.n_fft, SR).apply(frame, tracked=(f0, d)).copy()
    assert not np.array_equal(shaped, frame)
    x = play_score(shipped, [(0.0, "/note", [62, 127])], NOTE, latent)
    midi, pc = heard(x, 0.2, NOTE)
    assert pc == 2 and abs(100.0 * (midi - 62)) <= 25, midi
