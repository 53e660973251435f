"""The router without a MIDI transport: raw MIDI bytes in, a real Engine and the protocol table
behind EngineHost (as in the daemon). Encodings, pitch-bend arithmetic, learn's binding table."""

from __future__ import annotations

import pytest

from aedaemon.engine import Engine
from aedaemon.midi import EngineHost
from aedaemon.midi.learn import Learner, binding_for
from aedaemon.midi.mapping import Bind, Device, Mapping, MappingFile, parse_mapping
from aedaemon.midi.router import Event, Router, decode
from midi_rig import RecordingServices


def make(bundle, *binds: Bind, channel="any") -> tuple[Router, Engine, RecordingServices]:
    engine = Engine(bundle)
    svc = RecordingServices()
    mapping = Mapping(MappingFile(device=Device(channel=channel), bind=list(binds)), None, "test")
    return Router(mapping, EngineHost(lambda: engine, svc)), engine, svc


def test_decode():
    assert decode([0xB2, 7, 100]) == Event("cc", 3, 7, 100)
    assert decode([0x90, 60, 0]) == Event("note_off", 1, 60, 0)
    assert decode([0x8F, 60, 10]) == Event("note_off", 16, 60, 10)
    assert decode([0xE0, 0x00, 0x40]).value == 0
    assert decode([0xE0, 0x7F, 0x7F]).value == 8191
    assert decode([0xE0, 0x00, 0x00]).value == -8192
    assert decode([0xF8]) is None and decode([]) is None


@pytest.mark.parametrize("encoding,up,down", [("twos", 1, 127), ("signed", 1, 65), ("offset", 65, 63)])
def test_relative_encodings(bundle, encoding, up, down):
    r, e, _ = make(bundle, Bind(cc=10, mode="relative", encoding=encoding, address="/gain", range=[0, 2], step=0.1))
    r.handle([0xB0, 10, up])
    r.handle([0xB0, 10, up])
    assert e.targets.gain == pytest.approx(1.2)
    r.handle([0xB0, 10, down])
    assert e.targets.gain == pytest.approx(1.1)


def test_pitch_bend_is_exact_at_the_ends_and_centre(bundle):
    r, e, _ = make(bundle, Bind(pitchbend=True, address="/tilt", range=[-6, 6]))
    for msg, want in (([0xE0, 0, 0], -6.0), ([0xE0, 0x7F, 0x7F], 6.0), ([0xE0, 0, 0x40], 0.0)):
        r.handle(msg)
        assert e.targets.tilt == want


def test_offset_keeps_the_base_and_clamps(bundle):
    r, e, svc = make(bundle, Bind(pitchbend=True, mode="offset", address="/transpose", range=[-2, 2]))
    e.update(transpose=23.0)
    r.handle([0xE0, 0x7F, 0x7F])  # +2 → 25, clamped to 24
    assert e.targets.transpose == 24.0
    r.handle([0xE0, 0x00, 0x00])  # -2 from the base 23 (the clamp does not move the base)
    assert e.targets.transpose == 21.0
    r.handle([0xE0, 0x00, 0x40])
    assert e.targets.transpose == 23.0
    e.update(transpose=-5.0)  # moved elsewhere (a note, an OSC client): the new base
    r.handle([0xE0, 0x7F, 0x7F])
    assert e.targets.transpose == -3.0
    assert r.stats.refused == 0


def test_integer_invert_threshold_and_channel(bundle):
    r, e, _ = make(
        bundle,
        Bind(cc=1, address="/chroma", range=[0, 11], integer=True, invert=True),
        Bind(cc=2, mode="momentary", threshold=64, address="/play", args=[1], channel=2),
        channel=1,
    )
    r.handle([0xB0, 1, 0])
    assert e.targets.chroma.index(1.0) == 11
    r.handle([0xB1, 2, 63])  # below the threshold
    assert not e.targets.playing
    r.handle([0xB0, 2, 127])  # wrong channel
    assert not e.targets.playing and r.stats.unmapped == 1
    r.handle([0xB1, 2, 64])
    assert e.targets.playing


def test_a_broken_action_never_raises(bundle):
    r, e, _ = make(bundle, Bind(cc=3, mode="momentary", address="/preset/load", args=["nope"]))
    r.handle([0xB0, 3, 127])  # RecordingServices refuses: counted, no exception
    assert r.stats.refused == 1 and r.stats.messages == 1
    r.handle([0xB0])  # truncated message: ignored
    r.handle([0xF0, 1, 2, 0xF7])  # sysex: ignored


@pytest.mark.parametrize("address,msg,want", [
    ("/latent/2", [0xB0, 7, 1], ("cc", "absolute", "latent")),
    ("/scale/0", [0xB0, 7, 1], ("cc", "absolute", [0.0, 2.0])),
    ("/chroma", [0xB0, 7, 1], ("cc", "absolute", [0.0, 11.0])),
    ("/mute/1", [0xB0, 7, 127], ("cc", "toggle", None)),
    ("/play", [0x90, 60, 90], ("note", "toggle", None)),
    ("/reset", [0xB0, 7, 127], ("cc", "momentary", None)),
    ("/transpose", [0xE0, 0, 0x50], ("pitchbend", "offset", [-2.0, 2.0])),
    ("/note", [0x90, 60, 90], ("note", "note", None)),
])  # fmt: skip
def test_learn_makes_the_expected_binding(address, msg, want):
    b = binding_for(address, decode(msg))
    assert (b.kind, b.mode, b.range) == want
    assert b.learned and b.channel == (msg[0] & 0x0F) + 1


def test_learn_replaces_an_earlier_learned_binding_of_the_same_control(bundle, tmp_path):
    r, e, _ = make(bundle)
    f = tmp_path / "mine.toml"
    learner = Learner(r, f)
    learner.arm("/gain")
    r.handle([0x80, 60, 0])  # a note-off does not bind
    assert learner.pending == "/gain"
    r.handle([0xB0, 9, 5])
    learner.arm("/tilt")
    r.handle([0xB0, 9, 5])
    binds = parse_mapping(f).bind
    assert [(b.cc, b.address) for b in binds] == [(9, "/tilt")]
    r.handle([0xB0, 9, 127])
    assert e.targets.tilt == 12.0 and e.targets.gain == 1.0
