"""The in-daemon MIDI bridge end to end: a virtual nanoKONTROL2 on the jackd dummy server sends
the factory-scene CCs; a real Engine (synthetic ONNX bundle) and the protocol table apply them.
"""

from __future__ import annotations

import logging
import time

import pytest

from aedaemon import protocol
from aedaemon.engine import Engine
from aedaemon.model import load_bundle
from aedaemon.midi import DaemonMidi
from aedaemon.midi.mapping import parse_mapping
from aedaemon.synthetic import make_synthetic_bundle
from midi_rig import NanoKontrol2, RecordingServices, state_dir, wait_until

K = NanoKontrol2


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory):
    """12 units: two banks of 8 (the second half full)."""
    root = tmp_path_factory.mktemp("midi_models")
    make_synthetic_bundle(root / "wide", name="wide", latent_size=12, seed=5)
    return root / "wide"


class Rig:
    def __init__(self, model_path, tmp_path, mapping=None, presets=(), allow_quit=False, leds=True, port=None):
        self.bundle = load_bundle(model_path)
        self.engine = Engine(self.bundle)
        self.services = RecordingServices(presets=presets, allow_quit=allow_quit)
        self.state_dir = state_dir(tmp_path)
        self.ctl = NanoKontrol2(leds=leds)
        settings = {"enabled": True, "port": port if port is not None else "nanoKONTROL2*", "mapping": mapping}
        self.settings = settings
        self.midi = DaemonMidi(settings, lambda: self.engine, self.services, self.state_dir)
        self.services.learn_hook = self.midi.learn
        self.midi.start()
        assert wait_until(lambda: self.midi.bridge.connected, 2.0), "bridge did not connect"

    @property
    def t(self):
        return self.engine.targets

    def sent(self, n: int, timeout: float = 2.0) -> None:
        """Wait until the bridge has received n messages in all."""
        assert wait_until(lambda: self.midi.messages >= n, timeout), (self.midi.messages, n)

    def close(self) -> None:
        self.midi.stop()
        self.ctl.close()


@pytest.fixture()
def rig(wide_model, tmp_path):
    r = Rig(wide_model, tmp_path)
    yield r
    r.close()


def test_faders_and_knobs_set_units_and_echo(rig):
    lo, hi = rig.bundle.meta.latent_range
    rig.ctl.cc(K.FADER + 0, 127)
    rig.ctl.cc(K.FADER + 3, 0)
    rig.ctl.cc(K.KNOB + 2, 127)
    rig.ctl.cc(K.KNOB + 5, 64)
    rig.sent(4)
    assert rig.t.latent[0] == pytest.approx(hi)
    assert rig.t.latent[3] == pytest.approx(lo)
    assert rig.t.scale[2] == pytest.approx(2.0)
    assert rig.t.scale[5] == pytest.approx(2.0 * 64 / 127)
    assert rig.services.echoed("/latent/0") == [(pytest.approx(hi),)]
    assert rig.services.echoed("/scale/5") == [(pytest.approx(2.0 * 64 / 127),)]
    assert rig.midi.status()["actions"] == 4


def test_midi_move_equals_the_osc_message(rig, wide_model):
    """One path: the same effects and the same echoes as the equivalent OSC messages."""
    lo, hi = rig.bundle.meta.latent_range
    rig.ctl.cc(K.FADER + 1, 100)
    rig.ctl.press(K.M + 4)
    rig.ctl.press(K.PLAY)
    rig.sent(5)
    assert wait_until(lambda: rig.t.playing)
    other = Engine(load_bundle(wide_model))
    svc = RecordingServices()
    for address, args in (("/latent/1", [lo + (hi - lo) * 100 / 127]), ("/mute/4", [1]), ("/play", [1])):
        protocol.dispatch(address, args, engine=other, services=svc)
    assert rig.t == other.targets
    assert rig.services.echoes == svc.echoes


def test_banks_wrap_and_address_units_past_eight(rig):
    rig.ctl.press(K.TRACK_NEXT)
    rig.ctl.cc(K.FADER + 0, 127)  # bank 1, strip 0 → unit 8
    rig.ctl.cc(K.KNOB + 3, 0)  # unit 11
    rig.ctl.cc(K.FADER + 5, 127)  # unit 13 does not exist (12 units): ignored
    rig.sent(5)
    assert rig.midi.router.bank == 1
    assert rig.t.latent[8] == pytest.approx(rig.bundle.meta.latent_range[1])
    assert rig.t.scale[11] == 0.0
    assert rig.t.latent[0] == pytest.approx(rig.bundle.meta.default_latent[0])
    assert rig.midi.status()["refused"] == 0
    rig.ctl.press(K.TRACK_NEXT)  # wraps to bank 0
    rig.sent(7)
    assert rig.midi.router.bank == 0
    rig.ctl.press(K.TRACK_PREV)  # wraps back to the last bank
    rig.sent(9)
    assert rig.midi.router.bank == 1
    rig.ctl.press(K.M + 2)  # mute unit 10
    rig.sent(11)
    assert rig.t.mute[10] and not rig.t.mute[2]


def test_banks_are_a_no_op_for_eight_units(synthetic_model, tmp_path):
    r = Rig(synthetic_model, tmp_path, leds=False)
    try:
        assert r.bundle.meta.latent_size == 8
        r.ctl.press(K.TRACK_NEXT)
        r.ctl.press(K.TRACK_PREV)
        r.ctl.cc(K.FADER + 7, 0)
        r.sent(5)
        assert r.midi.router.bank == 0
        assert r.t.latent[7] == pytest.approx(r.bundle.meta.latent_range[0])
    finally:
        r.close()


def test_toggles_follow_the_state_set_over_osc(rig):
    rig.ctl.press(K.M + 1)
    rig.sent(2)
    assert rig.t.mute[1]
    rig.ctl.press(K.M + 1)
    rig.sent(4)
    assert not rig.t.mute[1]
    # muted over OSC: the next M press unmutes (the toggle reads the state, not a private flag)
    protocol.dispatch("/mute/6", [1], engine=rig.engine, services=rig.services)
    rig.ctl.press(K.M + 6)
    rig.sent(6)
    assert not rig.t.mute[6]
    assert rig.services.echoed("/mute/6") == [(1,), (0,)]
    # play toggles; stop stops
    rig.ctl.press(K.PLAY)
    rig.sent(8)
    assert rig.t.playing
    rig.ctl.press(K.PLAY)
    rig.sent(10)
    assert not rig.t.playing
    rig.ctl.press(K.PLAY)
    rig.ctl.press(K.STOP)
    rig.sent(14)
    assert not rig.t.playing


def test_record_toggle_r_buttons_and_s_presets(wide_model, tmp_path):
    r = Rig(wide_model, tmp_path, presets=("slot2",), leds=False)
    try:
        r.ctl.press(K.REC)
        r.sent(2)
        assert r.services.recorder.active
        r.ctl.press(K.REC)
        r.sent(4)
        assert not r.services.recorder.active
        assert [c[0] for c in r.services.calls] == ["record_start", "record_stop"]
        # R: back to the default latent and scale 1
        r.ctl.cc(K.FADER + 2, 0)
        r.ctl.cc(K.KNOB + 2, 127)
        r.ctl.press(K.R + 2)
        r.sent(8)
        assert r.t.latent[2] == pytest.approx(r.bundle.meta.default_latent[2])
        assert r.t.scale[2] == 1.0
        # S2 loads slot2; S1 has no preset: refused, counted, nothing breaks
        r.ctl.press(K.S + 1)
        r.ctl.press(K.S + 0)
        r.sent(12)
        assert ("preset_load", "slot2") in r.services.calls
        assert r.midi.status()["refused"] == 1
        assert "slot1" in r.midi.router.stats.last_refusal
    finally:
        r.close()


def test_transport_transpose_chroma_zero_reset(rig):
    protocol.dispatch("/transpose", [5.0], engine=rig.engine, services=rig.services)
    rig.ctl.press(K.FF)  # +12 from where it is
    rig.sent(2)
    assert rig.t.transpose == 17.0
    rig.ctl.press(K.FF)  # clamps at 24
    rig.sent(4)
    assert rig.t.transpose == 24.0
    rig.ctl.press(K.REW)
    rig.ctl.press(K.REW)
    rig.ctl.press(K.REW)
    rig.sent(10)
    assert rig.t.transpose == -12.0
    rig.ctl.press(K.MARKER_PREV)  # C → B (wraps)
    rig.sent(12)
    assert rig.t.chroma.index(1.0) == 11
    rig.ctl.press(K.MARKER_NEXT)
    rig.ctl.press(K.MARKER_NEXT)  # B → C → C#
    rig.sent(16)
    assert rig.t.chroma.index(1.0) == 1
    assert rig.services.echoed("/chroma")[-1] == (1,)
    rig.ctl.press(K.MARKER_SET)  # /zero
    rig.sent(18)
    lo, hi = rig.bundle.meta.control_range
    assert rig.t.latent == (min(hi, max(lo, 0.0)),) * 12
    rig.ctl.cc(K.KNOB, 0)
    rig.ctl.press(K.M)
    rig.ctl.press(K.CYCLE)  # /reset
    rig.sent(23)
    assert rig.t.latent == tuple(rig.bundle.meta.default_latent)
    assert rig.t.scale[0] == 1.0 and not rig.t.mute[0]


def test_led_feedback_for_play_record_and_mute(rig):
    assert wait_until(lambda: rig.ctl.led(K.PLAY) == 0 and rig.ctl.led(K.M + 7) == 0), rig.ctl.leds
    rig.ctl.press(K.PLAY)
    assert wait_until(lambda: rig.ctl.led(K.PLAY) == 127)
    rig.ctl.press(K.M + 3)
    assert wait_until(lambda: rig.ctl.led(K.M + 3) == 127)
    assert rig.ctl.led(K.M + 2) == 0
    rig.ctl.press(K.REC)
    assert wait_until(lambda: rig.ctl.led(K.REC) == 127)
    # a change made over OSC lights the LED too
    protocol.dispatch("/play", [0], engine=rig.engine, services=rig.services)
    assert wait_until(lambda: rig.ctl.led(K.PLAY) == 0)
    # the M LEDs show the current bank: units 8..11 are not muted
    rig.ctl.press(K.TRACK_NEXT)
    assert wait_until(lambda: rig.ctl.led(K.M + 3) == 0)
    rig.ctl.press(K.TRACK_PREV)
    assert wait_until(lambda: rig.ctl.led(K.M + 3) == 127)


def test_learn_binds_saves_atomically_and_works_at_once(rig, wide_model, tmp_path):
    replies, _ = protocol.dispatch("/midi/learn", ["/latent/3"], engine=rig.engine, services=rig.services)
    assert replies == [protocol.Reply("/done", ("/midi/learn", "/latent/3"))]
    rig.ctl.cc(K.KNOB + 5, 10)  # the control moved: bound, not applied
    rig.sent(1)
    assert wait_until(lambda: rig.services.echoed("/midi/learned"))
    assert rig.services.echoed("/midi/learned") == [("/latent/3", "CC 21 channel 1")]
    saved = rig.state_dir / "midi" / "nanokontrol2.toml"
    data = parse_mapping(saved)
    assert [(b.cc, b.address, b.mode) for b in data.bind] == [(21, "/latent/3", "absolute")]
    assert data.device.extends == "nanokontrol2"
    assert not list(saved.parent.glob(".*.tmp")), "temp file left behind"
    scale5 = rig.t.scale[5]
    rig.ctl.cc(K.KNOB + 5, 127)  # works at once, and replaces the knob's default action
    rig.sent(2)
    assert rig.t.latent[3] == pytest.approx(rig.bundle.meta.latent_range[1])
    assert rig.t.scale[5] == scale5
    # learn again on another control: the file keeps both
    protocol.dispatch("/midi/learn", ["/mute/0"], engine=rig.engine, services=rig.services)
    rig.ctl.press(K.R + 7)
    rig.sent(4)
    assert len(parse_mapping(saved).bind) == 2
    rig.ctl.press(K.R + 7)  # a toggle now
    rig.sent(6)
    assert rig.t.mute[0]
    # and it is there after a restart
    rig.midi.stop()
    again = DaemonMidi(rig.settings, lambda: rig.engine, rig.services, rig.state_dir)
    again.start()
    try:
        assert wait_until(lambda: again.bridge.connected)
        rig.ctl.cc(K.KNOB + 5, 0)
        assert wait_until(lambda: again.messages >= 1)
        assert rig.t.latent[3] == pytest.approx(rig.bundle.meta.latent_range[0])
    finally:
        again.stop()
        rig.midi = again  # the fixture stops it again: harmless


def test_learn_refuses_what_no_control_can_drive(rig):
    from aedaemon.errors import ParameterError

    for bad in ("/latent", "/note_off", "/status", "/nope"):
        with pytest.raises(ParameterError):
            protocol.dispatch("/midi/learn", [bad], engine=rig.engine, services=rig.services)


def test_hot_plug_reconnects_within_two_seconds_and_logs(rig, caplog):
    caplog.set_level(logging.INFO, logger="aedaemon.midi")
    rig.ctl.cc(K.FADER, 0)
    rig.sent(1)
    rig.ctl.unplug()
    assert wait_until(lambda: not rig.midi.bridge.connected, 2.0)
    time.sleep(0.2)
    t0 = time.monotonic()
    rig.ctl.plug()
    assert wait_until(lambda: rig.midi.bridge.connected, 2.0)
    assert time.monotonic() - t0 < 2.0
    time.sleep(0.05)
    rig.ctl.cc(K.FADER, 127)
    rig.sent(2)
    assert rig.t.latent[0] == pytest.approx(rig.bundle.meta.latent_range[1])
    text = caplog.text
    assert "disappeared" in text and "reconnected" in text
    assert rig.midi.status()["reconnects"] == 1


def test_unknown_port_is_a_warning_not_a_failure(wide_model, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="aedaemon.midi")
    engine = Engine(load_bundle(wide_model))
    midi = DaemonMidi({"port": "Launchpad*"}, lambda: engine, RecordingServices(), state_dir(tmp_path))
    midi.start()
    try:
        time.sleep(0.1)
        assert not midi.bridge.connected
        assert "no port matches 'Launchpad*'" in caplog.text
    finally:
        midi.stop()


def test_no_midi_system_at_all_is_a_warning(wide_model, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="aedaemon.midi")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "aedaemon-no-such-server")
    engine = Engine(load_bundle(wide_model))
    midi = DaemonMidi({"port": "nanoKONTROL2*", "backend": "jack"}, lambda: engine, RecordingServices(),
                      state_dir(tmp_path))
    midi.start()
    try:
        assert not midi.bridge.connected
        assert "no MIDI system available" in caplog.text
    finally:
        midi.stop()


def test_sarroff_mapping_record_resets_cycle_quit_refused(wide_model, tmp_path):
    r = Rig(wide_model, tmp_path, mapping="sarroff2014", leds=False)
    try:
        r.ctl.cc(K.FADER + 1, 0)
        r.ctl.press(K.M + 1)
        r.ctl.press(K.REC)  # reset every unit
        r.sent(5)
        assert r.t.latent == tuple(r.bundle.meta.default_latent) and not any(r.t.mute)
        r.ctl.press(K.CYCLE)  # /quit: refused, the daemon does not allow it
        r.sent(7)
        assert r.midi.status()["refused"] == 1 and "quit" in r.midi.router.stats.last_refusal
        r.ctl.press(K.FF)
        r.sent(9)
        assert r.t.playing
        r.ctl.press(K.REW)
        r.sent(11)
        assert not r.t.playing
    finally:
        r.close()
    r = Rig(wide_model, tmp_path, mapping="sarroff2014", allow_quit=True, leds=False)
    try:
        r.ctl.press(K.CYCLE)
        r.sent(2)
        assert ("quit",) in r.services.calls
    finally:
        r.close()


def test_keyboard_notes_mod_wheel_and_pitch_bend(wide_model, tmp_path):
    r = Rig(wide_model, tmp_path, mapping="keyboard", leds=False, port="nanoKONTROL2*")
    try:
        ref = r.bundle.meta.reference_note
        r.ctl.send([0x93, ref + 12, 100])  # note on, channel 4 (the keyboard mapping takes any)
        r.sent(1)
        assert r.t.playing and r.t.note == ref + 12
        expected_chroma, expected_pitch = protocol.note_to_pitch(r.engine, ref + 12)
        assert r.t.pitch == expected_pitch and r.t.chroma == expected_chroma
        expected_tr = r.t.transpose  # the note sets the pitch; /transpose is the offset from it
        r.ctl.send([0xE3, 0x7F, 0x7F])  # pitch bend fully up: +2 on the transpose offset
        r.sent(2)
        assert r.t.transpose == pytest.approx(expected_tr + 2.0)
        r.ctl.send([0xE3, 0x00, 0x40])  # centre: back to the note
        r.sent(3)
        assert r.t.transpose == pytest.approx(expected_tr)
        r.ctl.send([0xB3, 1, 127])  # mod wheel → latent 0
        r.sent(4)
        assert r.t.latent[0] == pytest.approx(r.bundle.meta.latent_range[1])
        r.ctl.send([0x83, ref + 12, 0])  # note off
        r.sent(5)
        assert not r.t.playing
    finally:
        r.close()


def test_relative_encoder_and_channel(wide_model, tmp_path):
    m = tmp_path / "encoders.toml"
    m.write_text(
        '[device]\nname = "encoders"\nchannel = 2\n\n'
        '[[bind]]\nname = "endless"\ncc = 10\nstrips = 2\nmode = "relative"\nencoding = "twos"\n'
        'address = "/scale/{unit}"\nrange = [0.0, 4.0]\nstep = 0.25\n\n'
        '[[bind]]\nname = "gain"\ncc = 20\nchannel = 3\naddress = "/gain"\nrange = [0.0, 2.0]\n'
    )
    r = Rig(wide_model, tmp_path, mapping=str(m), leds=False)
    try:
        r.ctl.send([0xB1, 10, 3])  # +3 ticks on channel 2: 1 + 0.75
        r.ctl.send([0xB1, 11, 127])  # -1 tick on unit 1
        r.ctl.send([0xB0, 10, 3])  # channel 1: not ours
        r.ctl.send([0xB2, 20, 127])  # gain on channel 3
        r.sent(4)
        assert wait_until(lambda: r.t.gain == 2.0)
        assert r.t.scale[0] == pytest.approx(1.75)
        assert r.t.scale[1] == pytest.approx(0.75)
        protocol.dispatch("/scale/0", [3.9], engine=r.engine, services=r.services)
        r.ctl.send([0xB1, 10, 2])  # from where it is (3.9), clamped at 4
        r.sent(5)
        assert r.t.scale[0] == 4.0
        assert r.midi.router.stats.unmapped == 1
    finally:
        r.close()


def test_reload_swaps_the_mapping_live_and_keeps_it_on_errors(rig, tmp_path, caplog):
    mine = tmp_path / "mine.toml"
    mine.write_text('[[bind]]\nname = "gain"\ncc = 0\naddress = "/gain"\nrange = [0.0, 2.0]\n')
    rig.midi.reload({"port": "nanoKONTROL2*", "mapping": str(mine)}, rig.state_dir)
    rig.ctl.cc(K.FADER, 127)
    rig.sent(1)
    assert rig.t.gain == 2.0
    assert rig.t.latent[0] == pytest.approx(rig.bundle.meta.default_latent[0])
    bad = tmp_path / "bad.toml"
    bad.write_text('[[bind]]\ncc = 0\naddress = "/gian"\nrange = [0, 2]\n')
    caplog.set_level(logging.ERROR, logger="aedaemon.midi")
    rig.midi.reload({"port": "nanoKONTROL2*", "mapping": str(bad)}, rig.state_dir)
    assert "not reloaded" in caplog.text and "bad.toml: bind[0]" in caplog.text
    rig.ctl.cc(K.FADER, 0)
    rig.sent(2)
    assert rig.t.gain == 0.0  # the previous mapping still works
    rig.midi.reload({"port": "Launchpad*", "mapping": str(mine)}, rig.state_dir)
    assert not rig.midi.bridge.connected
