"""`aedaemon render` paper cuts, run as a user runs them: every refusal is one
`... error: ...` line with exit code 2, no traceback and no file left behind; output formats
from the extension; warnings for score events after the end; address patterns in scores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from aedaemon.cli import main
from aedaemon.engine import Engine
from aedaemon.errors import AedaemonError, ParameterError
from aedaemon.render import OutputFormat, read_wav, write_audio

AEDAEMON = Path(sys.executable).parent / "aedaemon"  # the installed console script
SHIPPED = Path(__file__).resolve().parent.parent / "models" / "default"


def render(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(AEDAEMON), "render", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def render_here(capsys, *args: str) -> tuple[int, str]:
    """The same command in this process (faster; for renders that succeed): exit code, stderr."""
    rc = main(["render", *args])
    return rc, capsys.readouterr().err


def refused_line(proc: subprocess.CompletedProcess) -> str:
    """The one error line of a refused command (exit code 2, no traceback)."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "error: " in lines[0]
    return lines[0]


def assert_refused(proc: subprocess.CompletedProcess, *needles: str) -> None:
    line = refused_line(proc)
    for needle in needles:
        assert needle in line, line


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture()
def work(tmp_path) -> Path:
    """An empty working folder for the command (so any stray file shows)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def write_score(folder: Path, events: list, name: str = "score") -> Path:
    path = folder.parent / f"{name}.json"  # beside the working folder, which stays empty
    path.write_text(json.dumps(events))
    return path


# ---- 1. seeds ------------------------------------------------------------------------------


def test_a_negative_seed_is_refused_at_parsing(synthetic_model, work):
    proc = render("--model", str(synthetic_model), "--seed", "-1", "--out", "x.wav", cwd=work)
    assert_refused(proc, "--seed", ">= 0")
    assert files_in(work) == []


# ---- 2. and 4. the output path -------------------------------------------------------------


@pytest.mark.parametrize(
    "out, needle",
    [
        ("somedir", "somedir: it is a folder"),
        ("", "output file name is empty"),
        ("   ", "output file name is empty"),
        ("no-such-dir/x.wav", "folder no-such-dir does not exist"),
        ("afile/x.wav", "afile is not a folder"),
    ],
)
def test_an_output_path_that_cannot_be_a_file_is_refused_before_rendering(synthetic_model, work, out, needle):
    (work / "somedir").mkdir()
    (work / "afile").write_text("keep me")
    proc = render("--model", str(synthetic_model), "--seconds", "0.2", "--out", out, cwd=work)
    assert_refused(proc, needle)
    assert "_file" not in proc.stderr  # the old stray Wave_write traceback
    assert files_in(work) == ["afile", "somedir"]  # nothing created: no folder, no file
    assert files_in(work / "somedir") == [] and (work / "afile").read_text() == "keep me"


# ---- 3. the hop ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hop, needles",
    [
        ("4096", ["--hop 4096 is too large for n_fft 4096", "at most 2048"]),  # hop = n_fft: no overlap
        ("0", ["--hop", ">= 1"]),  # refused, not taken as "the model's"
        ("-512", ["--hop", ">= 1"]),
        ("1000", ["--hop 1000 must be a positive divisor of n_fft 4096"]),
    ],
)
def test_a_hop_the_overlap_add_cannot_use_is_refused(work, hop, needles):
    proc = render("--model", str(SHIPPED), "--seconds", "0.2", "--hop", hop, "--out", "x.wav", cwd=work)
    assert_refused(proc, *needles)
    assert files_in(work) == []


def test_the_largest_accepted_hop_renders_sound(synthetic_model, work):
    proc = render("--model", str(synthetic_model), "--seconds", "0.5", "--hop", "2048", "--out", "x.wav", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "hop 2048" in proc.stderr
    x, _ = read_wav(work / "x.wav")
    assert np.all(np.isfinite(x)) and np.max(np.abs(x)) > 0.05


@pytest.mark.parametrize("hop, needle", [(4096, "too large"), (0, "positive divisor"), (1000, "positive divisor")])
def test_the_engine_refuses_the_same_hops(bundle, hop, needle):
    """The daemon builds its Engine with the configured hop: it gets the same rule."""
    with pytest.raises(ParameterError, match=needle):
        Engine(bundle, hop=hop)
    assert Engine(bundle, hop=None).hop == bundle.meta.hop


def test_the_daemon_refuses_a_hop_equal_to_n_fft(models_dir, tmp_path):
    proc = subprocess.run(
        [str(AEDAEMON), "run", "--model", "synthetic", "--models-dir", str(models_dir), "--audio", "null",
         "--port", "0", "--state-dir", str(tmp_path / "state"), "--fresh", "--hop", "4096"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert_refused(proc, "hop 4096 is too large for n_fft 4096")


# ---- 5. formats, subtypes, atomic writes ---------------------------------------------------

LOSSY = [ext for ext, fmt in ((".ogg", "OGG"), (".mp3", "MP3")) if fmt in sf.available_formats()]


@pytest.mark.parametrize(
    "name, flags, fmt, subtype",
    [
        ("x.wav", [], "WAV", "PCM_16"),
        ("x.wav", ["--subtype", "PCM_24"], "WAV", "PCM_24"),
        ("x.wav", ["--subtype", "float"], "WAV", "FLOAT"),
        ("x.flac", [], "FLAC", "PCM_16"),
        ("x.flac", ["--subtype", "PCM_24"], "FLAC", "PCM_24"),
        ("x.aiff", [], "AIFF", "PCM_16"),
        ("x.AIF", ["--subtype", "FLOAT"], "AIFF", "FLOAT"),
    ]
    + [(f"x{ext}", [], ext[1:].upper(), sf.default_subtype(ext[1:].upper())) for ext in LOSSY],
)
def test_the_extension_names_the_format_written(capsys, synthetic_model, work, name, flags, fmt, subtype):
    rc, err = render_here(capsys, "--model", str(synthetic_model), "--seconds", "0.5", "--chroma", "E", *flags,
                          "--out", str(work / name))  # fmt: skip
    assert rc == 0, err
    assert f"({fmt} {subtype})" in err
    assert files_in(work) == [name]  # no temp file left over
    info = sf.info(str(work / name))
    assert (info.format, info.subtype, info.samplerate, info.channels) == (fmt, subtype, 44100, 1)
    x, _ = read_wav(work / name)
    assert np.max(np.abs(x)) > 0.05
    if subtype.startswith("PCM") or subtype == "FLOAT":
        assert info.frames == 22050


@pytest.mark.parametrize(
    "name, flags, needles",
    [
        ("x.xyz", [], ["'.xyz' files are not supported", ".wav, .flac, .aiff, .aif"]),
        ("x", [], ["without an extension", ".wav"]),
        ("x.flac", ["--subtype", "FLOAT"], ["--subtype FLOAT is not available for FLAC", "PCM_16, PCM_24"]),
    ]
    + [(f"x{ext}", ["--subtype", "PCM_24"], ["is not available", "leave --subtype out"]) for ext in LOSSY],
)
def test_unsupported_formats_and_subtypes_are_refused(synthetic_model, work, name, flags, needles):
    proc = render("--model", str(synthetic_model), "--seconds", "0.2", *flags, "--out", name, cwd=work)
    assert_refused(proc, *needles)
    assert files_in(work) == []


def test_integer_output_is_dithered_float_output_is_not(capsys, synthetic_model, work):
    for subtype in ("PCM_16", "PCM_24", "FLOAT"):
        rc, err = render_here(capsys, "--model", str(synthetic_model), "--seconds", "0.3", "--gain", "0",
                              "--subtype", subtype, "--out", str(work / f"{subtype}.wav"))  # fmt: skip
        assert rc == 0, err
    silent = {s: read_wav(work / f"{s}.wav")[0] for s in ("PCM_16", "PCM_24", "FLOAT")}
    assert not np.any(silent["FLOAT"])
    for subtype, lsb in (("PCM_16", 2.0**-15), ("PCM_24", 2.0**-23)):
        x = silent[subtype]
        assert np.any(x) and np.max(np.abs(x)) <= 2 * lsb  # TPDF: at most ±1 LSB after rounding


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.flac"
    target.write_bytes(b"the previous render")

    def blocks():
        yield np.zeros(1024, dtype=np.float32)
        raise KeyboardInterrupt  # Ctrl-C halfway

    with pytest.raises(KeyboardInterrupt):
        write_audio(target, OutputFormat("FLAC", "PCM_16"), 44100, blocks())
    assert files_in(tmp_path) == ["x.flac"] and target.read_bytes() == b"the previous render"


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(AedaemonError, match="cannot write"):
        write_audio(tmp_path / "afile" / "x.wav", OutputFormat("WAV", "PCM_16"), 44100, iter(()))


# ---- 6. score events after the end ----------------------------------------------------------


def test_score_events_after_the_end_are_named_in_a_warning(synthetic_model, work):
    score = write_score(work, [
        {"time": 0.0, "address": "/chroma", "args": ["C"]},
        {"time": 2.5, "address": "/stop"},
        {"time": 1.5, "address": "/transpose", "args": [12]},
        {"time": 1.0, "address": "/chroma", "args": ["E"]},  # exactly at the end: never heard
    ])  # fmt: skip
    proc = render("--model", str(synthetic_model), "--score", str(score), "--seconds", "1", "--out", "x.wav", cwd=work)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert warnings == ["aedaemon: warning: 3 score events at or after the end (--seconds 1) not rendered, the first at 1 s"]
    assert sf.info(str(work / "x.wav")).frames == 44100


def test_no_warning_when_the_score_fits(synthetic_model, work):
    score = write_score(work, [{"time": 0.5, "address": "/chroma", "args": ["E"]}])
    proc = render("--model", str(synthetic_model), "--score", str(score), "--seconds", "1", "--out", "x.wav", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr


# ---- 7. address patterns in scores ----------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, concrete",
    [
        ("/latent/[0-3]", [f"/latent/{i}" for i in range(4)]),
        ("/mute/*", [f"/mute/{i}" for i in range(8)]),
        ("/scale/{1,6}", ["/scale/1", "/scale/6"]),
    ],
)
def test_a_pattern_in_a_score_renders_as_its_matches_would(capsys, synthetic_model, work, pattern, concrete):
    value = 1 if pattern.startswith("/mute") else 0.9
    base = [{"time": 0.0, "address": "/chroma", "args": ["G"]}]
    scores = {
        "pattern": base + [{"time": 0.25, "address": pattern, "args": [value]}],
        "spelled": base + [{"time": 0.25, "address": a, "args": [value]} for a in concrete],
        "untouched": base,
    }
    for name, events in scores.items():
        rc, err = render_here(capsys, "--model", str(synthetic_model), "--seconds", "0.6",
                              "--score", str(write_score(work, events, name)), "--out", str(work / f"{name}.wav"))  # fmt: skip
        assert rc == 0, err
    x, y, z = (read_wav(work / f"{name}.wav")[0] for name in scores)
    assert np.array_equal(x, y)  # bit-identical: the same messages at the same sample
    assert not np.array_equal(x, z)  # and they did something


@pytest.fixture(scope="module")
def live(tmp_path_factory, models_dir):
    """A live daemon (null audio clock) to ask what OSC refuses, and why."""
    from aedaemon.client import Client
    from daemon_harness import Daemon

    with Daemon(tmp_path_factory.mktemp("live"), models_dir, "--fresh", audio="null") as d:
        with Client(port=d.port, timeout=3.0) as client:
            yield client


def live_reason(client, address: str, args: list) -> str:
    client._send(address, args)
    m = client.wait_for(lambda m: m.address == "/fail" and m.args[:1] == [address])
    return str(m.args[1])


@pytest.mark.parametrize(
    "pattern, args",
    [
        ("/{gain,mute/0}", [1]),  # two kinds of parameter
        ("/qu?t", []),  # patterns never reach actions or sessions
        ("/pre*/*", ["x"]),
        ("/mute/[", [1]),
        ("/latent/1[0-9]", [0.5]),  # no such unit in an 8-unit model
        ("/scale/*", [9.0]),  # out of range at the first match
    ],
)
def test_a_pattern_live_osc_refuses_is_refused_in_a_score_for_the_same_reason(live, synthetic_model, work, pattern, args):
    reason = live_reason(live, pattern, args)
    score = write_score(work, [{"time": 0.5, "address": pattern, "args": args}])
    line = refused_line(render("--model", str(synthetic_model), "--score", str(score), "--out", "x.wav", cwd=work))
    assert line == f"aedaemon: error: score event 0 ({pattern} at 0.5 s): {reason}"
    assert files_in(work) == []


def test_a_pattern_live_osc_accepts_is_accepted_in_a_score(live, synthetic_model, work):
    live._send("/latent/[0-3]", [0.5])
    assert live.get("/latent/2") == [0.5]
    score = write_score(work, [{"time": 0.1, "address": "/latent/[0-3]", "args": [0.5]}])
    proc = render("--model", str(synthetic_model), "--score", str(score), "--seconds", "0.3", "--out", "x.wav", cwd=work)
    assert proc.returncode == 0, proc.stderr
