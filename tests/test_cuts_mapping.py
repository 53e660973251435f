"""Paper cut: a mapping file is checked against the address table on load, address first, and
a binding's range against the values its address accepts (so the top of a fader is never
refused on stage). Real files, the real CLI, the real daemon."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aedaemon.midi.mapping import MappingError, load_mapping, value_limits
from aedaemon.protocol import ADDRESSES, GAIN_RANGE

GOOD = {
    # ranges inside what the address accepts, or where the address clamps, or not sent as the value
    "gain_full": 'cc = 7\naddress = "/gain"\nrange = [0, 2]',
    "gain_inverted": 'cc = 7\naddress = "/gain"\nrange = [2, 0]',
    "latent_clamps": 'cc = 0\nstrips = 8\naddress = "/latent/{unit}"\nrange = [0, 5]',
    "freq_shift_clamps": 'cc = 1\naddress = "/freq_shift"\nrange = [-9999, 9999]',
    "offset_is_added": 'pitchbend = true\nmode = "offset"\naddress = "/transpose"\nrange = [-2, 2]',
    "model_range": 'cc = 0\naddress = "/latent/0"\nrange = "control"',
    "chroma_wraps": 'cc = 62\nmode = "step"\nstep = 1\nwrap = true\ninteger = true\naddress = "/chroma"\nrange = [0, 11]',
    "value_not_first": 'cc = 3\naddress = "/preset/load"\nargs = ["slot1", "{value}"]\nrange = [0, 60]',
}

BAD = {
    # binding text → what the one-line message must say
    "gain_past_top": ('name = "fader"\ncc = 7\naddress = "/gain"\nrange = [0, 5]',
                      "bind[0] ('fader'): field 'range': [0, 5] reaches past what /gain accepts, 0..2"),
    "scale_below": ('cc = 16\nstrips = 8\naddress = "/scale/{unit}"\nrange = [-1, 2]',
                    "field 'range': [-1, 2] reaches past what /scale/{unit} accepts, 0..4"),
    "transpose_relative": ('cc = 20\nmode = "relative"\naddress = "/transpose"\nrange = [-48, 48]',
                           "what /transpose accepts, -24..24"),
    "chroma_step": ('cc = 62\nmode = "step"\nstep = 1\naddress = "/chroma"\nrange = [0, 12]',
                    "what /chroma accepts, 0..11"),
    "glide_pitchbend": ('pitchbend = true\naddress = "/glide"\nrange = [-1, 1]', "what /glide accepts, 0..60"),
    "unknown_before_range": ('name = "k"\ncc = 16\naddress = "/volume"',
                             "bind[0] ('k'): field 'address': unknown address '/volume' (see `aedaemon addresses`)"),
    "did_you_mean": ('cc = 16\naddress = "/gian"\nrange = [0, 2]', "unknown address '/gian'; did you mean '/gain'?"),
    "did_you_mean_template": ('cc = 0\nstrips = 8\naddress = "/latnt/{unit}"',
                              "unknown address '/latnt/{unit}'; did you mean '/latent/{unit}'?"),
    "unknown_release": ('note = 40\naddress = "/play"\nrelease_address = "/stopp"',
                        "field 'release_address': unknown address '/stopp'; did you mean '/stop'?"),
}


def _write(tmp_path: Path, case: str, bind: str) -> Path:
    f = tmp_path / f"{case}.toml"
    f.write_text(f"[[bind]]\n{bind}\n")
    return f


@pytest.mark.parametrize("case", sorted(GOOD))
def test_ranges_the_address_accepts_load(tmp_path, case):
    assert len(load_mapping(str(_write(tmp_path, case, GOOD[case]))).binds) == 1


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_range_or_address_the_table_refuses_is_one_line_naming_file_and_binding(tmp_path, case):
    text, want = BAD[case]
    f = _write(tmp_path, case, text)
    with pytest.raises(MappingError) as err:
        load_mapping(str(f))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{f}: bind[0]"), msg
    assert want in msg, msg
    assert msg.count("'/volume'") <= 1 and "(got" not in msg, msg  # the value is not said twice


def test_limits_follow_the_protocol_table():
    patterns = {e.pattern for e in ADDRESSES if e.kind == "state"}
    assert set(value_limits()) <= patterns
    assert value_limits()["/gain"] == GAIN_RANGE


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("AEDAEMON_")}


def test_midi_bridge_refuses_the_file_in_one_line(tmp_path):
    f = _write(tmp_path, "bridge", BAD["gain_past_top"][0])
    res = subprocess.run([sys.executable, "-m", "aedaemon.cli", "midi-bridge", "--to", "osc.udp://127.0.0.1:9",
                          "--mapping", str(f)], capture_output=True, text=True, timeout=30, env=_env())
    assert res.returncode == 2
    assert res.stderr.strip() == f"aedaemon: error: {f}: {BAD['gain_past_top'][1]}", res.stderr


def test_daemon_refuses_to_start_with_the_file_in_one_line(tmp_path, models_dir):
    f = _write(tmp_path, "daemon", BAD["gain_past_top"][0])
    cfg = tmp_path / "aedaemon.toml"
    cfg.write_text(f'[midi]\nenabled = true\nmapping = "{f}"\n')
    cmd = [sys.executable, "-m", "aedaemon.daemon", "--config", str(cfg), "--model", "synthetic", "--models-dir",
           str(models_dir), "--state-dir", str(tmp_path / "state"), "--audio", "null", "--port", "0", "--fresh"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=tmp_path, env=_env())
    assert res.returncode == 2 and "aedaemon ready" not in res.stdout
    last = res.stderr.strip().splitlines()[-1]
    assert last == f"aedaemon: {f}: {BAD['gain_past_top'][1]}", res.stderr
    assert "Traceback" not in res.stderr
