"""Mapping files: the shipped ones load; each malformed file is refused with one message that
names the file, the entry and the field."""

from __future__ import annotations

import pytest

from aedaemon.cli import main as cli_main
from aedaemon.midi.mapping import MappingError, dump_mapping, load_mapping, parse_mapping, shipped_mappings
from aedaemon.midi.bridge import pick_port, port_matches


def test_shipped_mappings_load():
    assert {"nanokontrol2", "sarroff2014", "keyboard"} <= set(shipped_mappings())
    nk = load_mapping("nanokontrol2")
    ccs = {(b.name, b.cc) for b in nk.binds}
    assert ("fader", 0) in ccs and ("knob", 16) in ccs and ("M", 48) in ccs and ("record", 45) in ccs
    assert {led.cc for led in nk.leds} == {41, 45, 48}
    assert load_mapping(None).name == nk.name
    assert any(b.address == "/quit" for b in load_mapping("sarroff2014").binds)


def test_dump_and_parse_round_trip(tmp_path):
    for name in shipped_mappings():
        m = load_mapping(name)
        f = tmp_path / f"{name}.toml"
        f.write_text(dump_mapping(m.data))
        again = parse_mapping(f)
        assert again.bind == m.data.bind and again.led == m.data.led


BAD = {
    # file text → (entry, field) the message must name
    "unknown_field": ('[[bind]]\nname = "fader"\ncc = 0\nadress = "/latent/0"\nrange = [0, 1]\n', "bind[0] ('fader')", "adress"),
    "cc_range": ('[[bind]]\ncc = 0\naddress = "/gain"\nrange = [0, 2]\n\n[[bind]]\nname = "x"\ncc = 200\naddress = "/gain"\nrange = [0, 2]\n',
                 "bind[1] ('x')", "cc"),
    "no_address": ('[[bind]]\nname = "knob"\ncc = 16\nrange = [0, 2]\n', "bind[0] ('knob')", "address"),
    "unknown_address": ('[[bind]]\nname = "k"\ncc = 16\naddress = "/volume"\nrange = [0, 2]\n', "bind[0] ('k')", "address"),
    "query_address": ('[[bind]]\ncc = 16\nmode = "momentary"\naddress = "/status"\n', "bind[0]", "address"),
    "bad_range": ('[[bind]]\ncc = 16\naddress = "/gain"\nrange = [0]\n', "bind[0]", "range"),
    "no_range": ('[[bind]]\ncc = 16\naddress = "/gain"\n', "bind[0]", "range"),
    "two_sources": ('[[bind]]\ncc = 16\nnote = 40\naddress = "/stop"\nmode = "momentary"\n', "bind[0]", "note"),
    "bad_mode": ('[[bind]]\ncc = 16\nmode = "latch"\naddress = "/stop"\n', "bind[0]", "mode"),
    "bad_channel": ('[device]\nchannel = 17\n', "[device]", "channel"),
    "bind_channel": ('[[bind]]\ncc = 1\nchannel = 0\naddress = "/gain"\nrange = [0, 2]\n', "bind[0]", "channel"),
    "placeholder": ('[[bind]]\ncc = 1\nstrips = 8\naddress = "/latent/{unti}"\nrange = "latent"\n', "bind[0]", "address"),
    "strips_overflow": ('[[bind]]\ncc = 125\nstrips = 8\naddress = "/latent/{unit}"\nrange = "latent"\n', "bind[0]", "strips"),
    "step_missing": ('[[bind]]\ncc = 43\nmode = "step"\naddress = "/transpose"\nrange = [-24, 24]\n', "bind[0]", "step"),
    "led_state": ('[[led]]\nname = "p"\ncc = 41\nstate = "/stop"\n', "led[0] ('p')", "state"),
    "led_cc": ('[[led]]\ncc = -1\nstate = "/play"\n', "led[0]", "cc"),
    "wrong_type": ('[[bind]]\ncc = "one"\naddress = "/gain"\nrange = [0, 2]\n', "bind[0]", "cc"),
    "top_level": ('[[binding]]\ncc = 1\n', "top level", "binding"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_mapping_names_file_entry_and_field(tmp_path, case):
    text, entry, field = BAD[case]
    f = tmp_path / f"{case}.toml"
    f.write_text(text)
    with pytest.raises(MappingError) as err:
        load_mapping(str(f))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(str(f) + ": "), msg
    assert entry in msg, msg
    assert f"'{field}'" in msg, msg


def test_not_toml_and_missing_files(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("[[bind]\ncc = 1\n")
    with pytest.raises(MappingError, match=r"broken.toml: not valid TOML"):
        load_mapping(str(f))
    with pytest.raises(MappingError, match="not found"):
        load_mapping(str(tmp_path / "nope.toml"))
    with pytest.raises(MappingError, match="no mapping named 'nanokontrol3'"):
        load_mapping("nanokontrol3")


def test_cli_refuses_a_bad_mapping_in_one_line(tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text('[[bind]]\nname = "fader"\ncc = 0\naddress = "/latnt/{unit}"\nrange = "latent"\n')
    rc = cli_main(["midi-bridge", "--to", "osc.udp://127.0.0.1:9", "--mapping", str(f)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and "bind[0] ('fader')" in err and "'address'" in err and str(f) in err


def test_port_patterns():
    real = ["a2j:nanoKONTROL2 [24] (capture): nanoKONTROL2 MIDI 1", "nanoKONTROL2:nanoKONTROL2 SLIDER/KNOB",
            "system:midi_capture_1"]
    assert port_matches("nanoKONTROL2*", real[1])
    assert port_matches("nanokontrol2", real[0])  # no wildcard: substring, any case
    assert port_matches("*nanoKONTROL2*", real[0])
    assert not port_matches("Launchpad*", real[1])
    assert port_matches("", real[2])
    assert pick_port("nanoKONTROL2*", real) == 0  # the a2jmidid name of the hardware
    assert pick_port("nanoKONTROL2:*", real) == 1
    assert pick_port("*", ["aedaemon:in", "x:y"], exclude_client="aedaemon") == 1
