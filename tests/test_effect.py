"""The effect chain offline (issue 11): `aedaemon process IN --out OUT`, aedaemon/effect.py and
ModelBundle.encode, on real files (written here, or rendered with fluidsynth) and real ONNX
models (the shipped one; synthetic bundles with and without an encoder)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from aedaemon.cli import main
from aedaemon.effect import EffectChain, EffectSettings, frame_chroma, frame_labels, read_input
from aedaemon.errors import ModelError, ParameterError
from aedaemon.model import load_bundle
from aedaemon.synthetic import make_synthetic_bundle, sawtooth, write_synthetic_encoder

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "default"
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
AEDAEMON = Path(sys.executable).parent / "aedaemon"


def db(v: float) -> float:
    return 20.0 * np.log10(v)


def spectral_convergence(mag: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(mag - ref) / np.linalg.norm(ref))


def analysis(chain: EffectChain, y: np.ndarray) -> np.ndarray:
    """|STFT| of y on the chain's own frames (the same padding, window and hop)."""
    frames = np.lib.stride_tricks.sliding_window_view(chain.padded(y), chain.n_fft)[:: chain.hop] * chain.window
    return np.abs(np.fft.rfft(frames.astype(np.float64), axis=1))


def reference(bundle, x: np.ndarray, chain: EffectChain, change=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's own encode → decode of every sounding frame of x, done here from scratch:
    (input |STFT|, reconstruction, which frames sound). `change` edits the encoded latents."""
    a = analysis(chain, x).astype(np.float32)
    sounding = np.concatenate([blk.sounding for blk in EffectChain(bundle).blocks(x)])
    peak = a.max(axis=1)
    norm = a[sounding] / peak[sounding, None]
    own = frame_labels(norm, bundle.meta.sample_rate, bundle.meta.n_fft)
    z = bundle.encode(norm, own)
    if change is not None:
        z = change(z.copy())
    rec = np.zeros_like(a)
    rec[sounding] = np.maximum(bundle.decode_batch(z, own), 0.0) * peak[sounding, None]
    return a, rec, sounding


@pytest.fixture(scope="module")
def shipped():
    return load_bundle(SHIPPED, precision="float32")


@pytest.fixture(scope="module")
def trumpet(tmp_path_factory) -> Path:
    """Four trumpet notes (GM 56) rendered by fluidsynth at 48 kHz, stereo: the command has to
    resample and mix down."""
    # `make test` installs both (.ci/setup dev,train): missing means the install path is broken
    assert shutil.which("fluidsynth") is not None and SOUNDFONT.is_file(), \
        "fluidsynth and FluidR3_GM are needed to render the test file: run .ci/setup dev,train"
    import mido

    folder = tmp_path_factory.mktemp("trumpet")
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.Message("program_change", program=56, time=0))
    for i, n in enumerate((60, 64, 67, 72)):
        tr.append(mido.Message("note_on", note=n, velocity=100, time=0 if i == 0 else 120))
        tr.append(mido.Message("note_off", note=n, velocity=0, time=480))
    mid.save(str(folder / "t.mid"))
    wav = folder / "trumpet.wav"
    subprocess.run(
        ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", "48000", "-F", str(wav),
         str(SOUNDFONT), str(folder / "t.mid")], check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    info = sf.info(str(wav))
    assert info.samplerate == 48000 and info.channels == 2
    return wav


@pytest.fixture(scope="module")
def encoder_models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("enc-models")
    make_synthetic_bundle(root / "withenc", name="withenc", encoder=True)
    make_synthetic_bundle(root / "plain", name="plain", encoder=True, conditioned=False, seed=2)
    make_synthetic_bundle(root / "noenc", name="noenc")
    return root


def process(*args: str) -> int:
    return main(["process", *args])


def test_reconstruction_adds_no_error_of_its_own(shipped, trumpet, tmp_path):
    """scale 1, morph 0, mix 1, the input's phase: every wet frame is the model's own encode →
    decode of the input frame (the chain adds nothing), and the output file's spectrum is as
    close to the input as that reconstruction is, within 1 dB of spectral convergence."""
    x, _ = read_input(trumpet, 44100)
    chain = EffectChain(shipped)
    a, rec, sounding = reference(shipped, x, chain)
    assert sounding.sum() > 50
    wet = chain.wet_magnitudes(x)
    assert db(spectral_convergence(wet[sounding], rec[sounding])) < -100.0
    assert not wet[~sounding].any()
    sc_model = db(spectral_convergence(rec[sounding], a[sounding]))
    for phase in ("input", "rtpghi"):
        out = tmp_path / f"{phase}.wav"
        assert process(str(trumpet), "--out", str(out), "--subtype", "FLOAT", "--phase", phase) == 0
        y, sr = sf.read(str(out), dtype="float32")
        assert sr == 44100 and len(y) == len(x)
        b = analysis(chain, y)
        sc_effect = db(spectral_convergence(b[sounding], a[sounding]))
        assert sc_effect <= sc_model + 1.0, (phase, sc_effect, sc_model)
        # and the output is that reconstruction, heard (not the input passed through)
        assert db(spectral_convergence(b[sounding], rec[sounding])) < -12.0


def test_mix_zero_is_the_input_aligned(shipped, trumpet, tmp_path):
    """mix 0: the output is the input, resampled and mixed to mono, at latency 0."""
    x, _ = read_input(trumpet, 44100)
    out = tmp_path / "dry.wav"
    assert process(str(trumpet), "--out", str(out), "--subtype", "FLOAT", "--mix", "0") == 0
    y, _ = sf.read(str(out), dtype="float32")
    assert len(y) == len(x)
    assert np.max(np.abs(y - x)) <= 1e-4
    # the same through 16-bit PCM (dither: at most ~1.5 LSB)
    assert process(str(trumpet), "--out", str(out), "--mix", "0") == 0
    y16, _ = sf.read(str(out), dtype="float32")
    assert np.max(np.abs(y16 - x)) <= 1e-4


def identity(chain: EffectChain) -> None:
    """Make the chain's model give every frame back unchanged (no encoder, no decoder)."""
    chain._encode = lambda norm: (None, np.zeros((len(norm), 8), np.float32))
    chain._decode = lambda norm, own, z, frames: (norm.astype(np.float32), z)


def test_wet_path_is_aligned_with_the_dry(shipped):
    """With a model that returns each frame unchanged, the wet path (analysis, level, the
    input's phase, dual-window OLA) rebuilds the input sample for sample: wet and dry are aligned,
    so a dry/wet mix cannot comb-filter, and the offline latency is 0."""
    rng = np.random.default_rng(4)
    x = (sawtooth(196.0, 1.5, 44100) + 0.02 * rng.standard_normal(int(1.5 * 44100))).astype(np.float32)
    for hop in (1024, 512, 256):
        chain = EffectChain(shipped, EffectSettings(hop=hop))
        identity(chain)
        wet = chain.resynthesise(x)
        assert len(wet) == len(x)
        assert np.max(np.abs(wet - x)) < 1e-5, hop
    half = EffectChain(shipped, EffectSettings(mix=0.5))
    identity(half)
    assert np.max(np.abs(half.process(x) - x)) < 1e-5


def test_scaling_a_unit_is_the_same_change_on_the_encoded_latents(shipped, trumpet, tmp_path):
    x, _ = read_input(trumpet, 44100)
    chain = EffectChain(shipped)

    def change(z):
        z[:, 3] *= 0.3
        z[:, 6] *= 2.5
        z[:, 5] = 0.0
        return z

    a, rec, sounding = reference(shipped, x, chain)
    _, rec_scaled, _ = reference(shipped, x, chain, change)
    scaled = EffectChain(shipped, EffectSettings(scale=(1, 1, 1, 0.3, 1, 1, 2.5, 1), mute=(False,) * 5 + (True, False, False)))
    wet = scaled.wet_magnitudes(x)
    assert db(spectral_convergence(wet[sounding], rec_scaled[sounding])) < -100.0
    # it is a real change of the sound
    assert db(spectral_convergence(rec_scaled[sounding], rec[sounding])) > -20.0
    # and the file says the same: the output of the CLI follows the changed reconstruction
    out = tmp_path / "scaled.wav"
    assert process(str(trumpet), "--out", str(out), "--subtype", "FLOAT", "--scale", "3=0.3,6=2.5", "--mute", "5") == 0
    y, _ = sf.read(str(out), dtype="float32")
    b = analysis(chain, y)
    near_changed = db(spectral_convergence(b[sounding], rec_scaled[sounding]))
    near_unchanged = db(spectral_convergence(b[sounding], rec[sounding]))
    assert near_changed < near_unchanged - 3.0, (near_changed, near_unchanged)


def test_morph_and_held_chroma_decode_equal_inputs_once(shipped, trumpet):
    """morph 1: every frame decodes the --latent values; with a held chroma every decoder input
    is the same, so a block decodes once."""
    x, _ = read_input(trumpet, 44100)
    g = np.zeros(12)
    g[7] = 1.0
    chain = EffectChain(shipped, EffectSettings(morph=1.0, chroma=tuple(g)))
    wet = chain.wet_magnitudes(x)
    st = chain.stats
    blocks = -(-st.frames // 512)
    assert st.encodes == st.frames - st.silent
    assert st.decodes <= blocks
    one = np.maximum(shipped.decode_batch(np.asarray([shipped.meta.default_latent], np.float32), g[None].astype(np.float32)), 0)[0]
    sounding = wet.max(axis=1) > 0
    norm = wet[sounding] / wet[sounding].max(axis=1, keepdims=True)
    assert np.allclose(norm, one / one.max(), atol=1e-5)
    # auto chroma, morph 1: one decode per pitch class found in a block at most
    auto = EffectChain(shipped, EffectSettings(morph=1.0))
    auto.wet_magnitudes(x)
    assert auto.stats.decodes <= 12 * blocks


def test_shaping_is_the_shaper_on_the_decoded_frames(shipped, trumpet):
    """transpose, freq_shift and tilt act on each decoded frame (normalised), before its level
    goes back: the synthesizer's shaper without its synth-only stages."""
    from aedaemon.dsp.shaping import SpectralShaper

    x, _ = read_input(trumpet, 44100)
    x = x[: 2 * 44100]
    plain = EffectChain(shipped)
    blocks = list(plain.blocks(x))
    shaped = EffectChain(shipped, EffectSettings(transpose=7.0, freq_shift=3, tilt=-2.0)).wet_magnitudes(x)
    shaper = SpectralShaper(4096, 44100, emphasis=False)
    k = 0
    for blk in blocks:
        for wet, level, on in zip(blk.wet, blk.level, blk.sounding):
            want = shaper.apply(wet, transpose=7.0, freq_shift=3, tilt=-2.0) * level if on else np.zeros_like(wet)
            assert np.allclose(shaped[k], want, rtol=1e-5, atol=1e-6 * max(level, 1e-9))
            k += 1
    assert k == len(shaped)


def test_int8_decoder_and_auto_chroma_flag(shipped, trumpet, tmp_path, capsys):
    out = tmp_path / "o.flac"
    assert process(str(trumpet), "--out", str(out), "--precision", "int8", "--chroma", "auto", "--hop", "512") == 0
    err = capsys.readouterr().err
    assert "hop 512" in err and "FLAC" in err
    y, sr = sf.read(str(out), dtype="float32")
    assert sr == 44100 and np.abs(y).max() > 1e-3


def test_two_threads_give_the_same_output(shipped, trumpet):
    x, _ = read_input(trumpet, 44100)
    for phase in ("input", "rtpghi"):
        one = EffectChain(shipped, EffectSettings(phase=phase), threads=1, block=64).process(x)
        two = EffectChain(shipped, EffectSettings(phase=phase), threads=2, block=64).process(x)
        assert np.array_equal(one, two)


def test_silence_costs_no_encode_or_decode(shipped, tmp_path):
    sr = 44100
    tone = sawtooth(220.0, 1.0, sr)
    x = np.concatenate([tone, np.zeros(2 * sr, np.float32), tone])
    chain = EffectChain(shipped)
    y = chain.process(x)
    st = chain.stats
    assert st.silent > 70 and st.encodes == st.frames - st.silent and st.decodes <= st.encodes
    mid = slice(sr + 4096, 3 * sr - 4096)
    assert not y[mid].any()  # silent frames' wet output is silence
    zero = EffectChain(shipped)
    assert not zero.process(np.zeros(sr, np.float32)).any()
    assert zero.stats.encodes == 0 and zero.stats.decodes == 0


def test_any_rate_and_channels_written_here(encoder_models, tmp_path):
    """A 22.05 kHz stereo FLAC written by the test, through a synthetic model with an encoder
    (conditioned) and one without chroma: the output is at the model's rate, as long as the
    resampled input, finite; mix 0 gives the resampled mono mix."""
    from scipy.signal import resample_poly

    sr = 22050
    t = np.arange(int(1.2 * sr)) / sr
    left = 0.3 * np.sin(2 * np.pi * 330 * t)
    right = 0.2 * np.sign(np.sin(2 * np.pi * 220 * t))
    src = tmp_path / "in.flac"
    sf.write(str(src), np.stack([left, right], axis=1), sr, subtype="PCM_24")
    stored, _ = sf.read(str(src), dtype="float32", always_2d=True)
    expect = resample_poly(stored.mean(axis=1), 2, 1).astype(np.float32)
    for model in ("withenc", "plain"):
        out = tmp_path / f"{model}.wav"
        rc = process(str(src), "--out", str(out), "--model", model, "--models-dir", str(encoder_models),
                     "--subtype", "FLOAT", "--phase", "rtpghi", "--transpose", "3", "--tilt", "-2")
        assert rc == 0
        y, osr = sf.read(str(out), dtype="float32")
        assert osr == 44100 and len(y) == len(expect) and np.all(np.isfinite(y)) and np.abs(y).max() > 1e-3
    dry = tmp_path / "dry.wav"
    assert process(str(src), "--out", str(dry), "--model", "withenc", "--models-dir", str(encoder_models),
                   "--subtype", "FLOAT", "--mix", "0") == 0
    y, _ = sf.read(str(dry), dtype="float32")
    assert np.max(np.abs(y - expect)) <= 1e-4


def test_encode(shipped, encoder_models, models_dir, tmp_path):
    frames = np.abs(np.random.default_rng(0).standard_normal((5, 2049))).astype(np.float32)
    frames /= frames.max(axis=1, keepdims=True)
    assert shipped.has_encoder and shipped.encoder_takes_chroma
    z = shipped.encode(frames, frame_labels(frames, 44100, 4096))
    assert z.shape == (5, 8) and z.dtype == np.float32 and np.all((z >= 0) & (z <= 1))
    plain = load_bundle(encoder_models / "plain")
    assert not plain.encoder_takes_chroma and plain.encode(frames).shape == (5, 8)
    with pytest.raises(ModelError, match="has no encoder.onnx"):
        load_bundle(models_dir / "synthetic").encode(frames)
    # an encoder whose output does not fit model.json is refused with the reason
    bad = tmp_path / "bad"
    make_synthetic_bundle(bad, name="bad")
    write_synthetic_encoder(bad / "encoder.onnx", latent_size=4, n_bins=2049)
    with pytest.raises(ModelError, match=r"output 'latent' has shape \[batch, 4\].*latent_size"):
        load_bundle(bad).encode(frames)
    (bad / "encoder.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="onnxruntime cannot load it"):
        load_bundle(bad).encode(frames)


def test_frame_chroma_is_the_corpus_label():
    from aedaemon.train.corpus import frame_chroma as corpus_chroma

    m = np.abs(np.random.default_rng(1).standard_normal((200, 2049))).astype(np.float32)
    ours, theirs = frame_chroma(m, 44100, 4096), corpus_chroma(m)
    assert np.allclose(ours, theirs, rtol=1e-5, atol=1e-4)
    assert np.array_equal(ours.argmax(axis=1), theirs.argmax(axis=1))


def test_settings_refused(shipped):
    for settings, needle in (
        (EffectSettings(mix=1.5), "mix 1.5 is out of range 0..1"),
        (EffectSettings(morph=-0.1), "morph"),
        (EffectSettings(scale=(1.0,) * 7), "scale expects 8 values"),
        (EffectSettings(scale=(5.0,) + (1.0,) * 7), "scale of unit 0 5 is out of range 0..4"),
        (EffectSettings(hop=1000), "hop 1000 must be a positive divisor of n_fft 4096"),
        (EffectSettings(hop=4096), "too large"),
        (EffectSettings(phase="noise"), "phase must be one of input, rtpghi"),
        (EffectSettings(gain=3.0), "gain 3 is out of range 0..2"),
    ):
        with pytest.raises(ParameterError, match=needle):
            EffectChain(shipped, settings)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(AEDAEMON), "process", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_bad_input_exits_2_with_one_line(tmp_path, models_dir):
    work = tmp_path / "work"
    work.mkdir()
    good = work / "in.wav"
    sf.write(str(good), sawtooth(220.0, 0.5, 44100), 44100)
    junk = work / "junk.wav"
    junk.write_bytes(b"RIFF this is not a sound file at all")
    empty = work / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), 44100)
    model = ["--model", str(SHIPPED)]
    cases = [
        ((str(work / "missing.wav"), "--out", "o.wav", *model), "missing.wav: no such file"),
        ((str(junk), "--out", "o.wav", *model), "cannot read"),
        ((str(empty), "--out", "o.wav", *model), "holds no audio samples"),
        ((str(work), "--out", "o.wav", *model), "is a folder"),
        ((str(good), "--out", "o.wav", "--model", str(models_dir / "synthetic")), "has no encoder.onnx"),
        ((str(good), "--out", "o.wav", "--model", "nosuchmodel"), "unknown model"),
        ((str(good), "--out", "o.wav", *model, "--scale", "9=1"), "unit 9 is out of range 0..7"),
        ((str(good), "--out", "o.wav", *model, "--scale", "3"), "expected UNIT=VALUE"),
        ((str(good), "--out", "o.wav", *model, "--mute", "x"), "--mute 'x'"),
        ((str(good), "--out", "o.wav", *model, "--mix", "2"), "mix 2 is out of range 0..1"),
        ((str(good), "--out", "o.wav", *model, "--hop", "1000"), "hop 1000"),
        ((str(good), "--out", "o.wav", *model, "--chroma", "H"), "--chroma"),
        ((str(good), "--out", "o.wav", *model, "--latent", "0.5,0.5"), "latent expects 8 values"),
        ((str(good), "--out", "o.xyz", *model), "not supported"),
        ((str(good), "--out", "o.wav", *model, "--phase", "canne"), "invalid choice"),
    ]
    for args, needle in cases:
        line = one_error_line(run_cli(*args, cwd=work))
        assert needle in line, (args, line)
    assert sorted(p.name for p in work.iterdir()) == ["empty.wav", "in.wav", "junk.wav"]  # no output left behind


def test_process_reports_figures(shipped, tmp_path, capsys):
    src = tmp_path / "in.wav"
    sf.write(str(src), sawtooth(262.0, 1.0, 44100), 44100)
    assert process(str(src), "--out", str(tmp_path / "o.wav")) == 0
    err = capsys.readouterr().err
    assert "x real time" in err and "latency 0 (aligned)" in err and "encoded" in err
    # over full scale: soft-limited, and said so
    assert process(str(src), "--out", str(tmp_path / "loud.wav"), "--gain", "2", "--mix", "0") == 0
    assert "soft limiter" not in capsys.readouterr().err  # the saw peaks at 0.3: 0.6 fits
    loud = tmp_path / "loud-in.wav"
    sf.write(str(loud), 0.9 * sawtooth(262.0, 1.0, 44100) / 0.3, 44100, subtype="FLOAT")
    assert process(str(loud), "--out", str(tmp_path / "loud.wav"), "--gain", "2", "--mix", "0", "--subtype", "FLOAT") == 0
    assert "soft limiter" in capsys.readouterr().err
    y, _ = sf.read(str(tmp_path / "loud.wav"), dtype="float32")
    assert np.abs(y).max() < 1.0


def test_score_changes_the_controls_at_frame_centres(shipped, trumpet, tmp_path, capsys):
    """--score: a frame takes the settings in force at its centre; the same events through the
    address table (patterns, /reset); the gain moves over a hop; non-effect addresses refused."""
    import json

    x, _ = read_input(trumpet, 44100)
    sr = 44100
    plain = EffectChain(shipped)
    scaled_settings = EffectSettings(scale=(1, 1, 1, 0.2, 1, 1, 1, 1))
    scaled = EffectChain(shipped, scaled_settings)
    at = int(1.0 * sr)
    both = EffectChain(shipped, schedule=[(at, scaled_settings)])
    w0, w1, wb = plain.wet_magnitudes(x), scaled.wet_magnitudes(x), both.wet_magnitudes(x)
    seg = both.segment_of(np.arange(len(wb)))
    assert set(seg) == {0, 1}
    assert np.array_equal(wb[seg == 0], w0[seg == 0]) and np.array_equal(wb[seg == 1], w1[seg == 1])
    centres = np.arange(len(wb)) * plain.hop - plain.pad + plain.n_fft // 2
    assert np.all((centres >= at) == (seg == 1))
    # the gain: dry only, 0.5 from 1 s on, reached over a hop
    dry = EffectChain(shipped, EffectSettings(mix=0.0), schedule=[(at, EffectSettings(mix=0.0, gain=0.5))])
    y = dry.process(x)
    assert np.array_equal(y[:at], x[:at]) and np.allclose(y[at + 1024 :], 0.5 * x[at + 1024 :])
    # through the command line, events through the OSC address table
    score = tmp_path / "score.json"
    score.write_text(json.dumps([
        {"time": 1.0, "address": "/scale/3", "args": [0.2]},
        {"time": 2.0, "address": "/mute/*", "args": [1]},
        {"time": 3.0, "address": "/reset"},
    ]))  # fmt: skip
    out = tmp_path / "scored.wav"
    assert process(str(trumpet), "--out", str(out), "--subtype", "FLOAT", "--score", str(score)) == 0
    capsys.readouterr()
    muted = EffectChain(shipped, EffectSettings(mute=(True,) * 8))
    ref = EffectChain(shipped, schedule=[(sr, scaled_settings), (2 * sr, EffectSettings(scale=scaled_settings.scale,
                      mute=(True,) * 8)), (3 * sr, EffectSettings())]).process(x)
    got, _ = sf.read(str(out), dtype="float32")
    assert np.max(np.abs(got - ref)) < 1e-6
    assert muted.c.scale.sum() == 0.0
    for events, needle in (
        ([{"time": 1.0, "address": "/play", "args": [1]}], "not an effect control"),
        ([{"time": 1.0, "address": "/scale/3", "args": [9]}], "scale 9 is out of range 0..4"),
        ([{"time": 1.0, "address": "/nope"}], "unknown address"),
    ):
        score.write_text(json.dumps(events))
        assert process(str(trumpet), "--out", str(tmp_path / "x.wav"), "--score", str(score)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "x.wav").exists()
