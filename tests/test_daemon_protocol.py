"""Every address of docs/protocol.md against the real daemon (subprocess, PortAudio on jackd dummy)."""

from __future__ import annotations

import math
import time
import wave

import pytest

from aedaemon.client import Client
from daemon_harness import Daemon


def fail_reason(c: Client, address: str, *args) -> str:
    c._send(address, list(args))
    m = c.wait_for(lambda m: m.address == "/fail" and m.args[0] == address, what=address)
    return m.args[1]


def test_status_and_version(c, daemon):
    st = c.status()
    assert list(st) == ["playing", "model", "sample_rate", "block", "hop", "cpu_load", "underflows",
                        "late_bundles", "dropped_packets", "clients", "uptime", "midi_messages", "audio",
                        "failed_hops"]
    # hop: the daemon's live default, 256 (the model's own is 1024)
    assert st["model"] == "synthetic" and st["sample_rate"] == 44100.0 and st["block"] == 256 and st["hop"] == 256
    assert isinstance(st["cpu_load"], float) and st["uptime"] > 0 and st["clients"] >= 1
    assert st["midi_messages"] == 0  # extension (appended): MIDI is off here
    assert st["audio"] == "ok" and st["failed_hops"] == 0  # extensions: the device is playing
    assert c.version()[0] == "aedaemon"


def test_sound_parameters_set_and_get(c):
    c.latent([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    c.sync()
    assert c.get("/latent") == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], abs=1e-6)
    c.latent(3, 1.25)
    c.sync()
    assert c.get("/latent/3") == pytest.approx([1.25])
    c.latent(3, 99.0)  # clamped to the control range (synthetic: 0..2)
    c.sync()
    assert c.get("/latent/3") == pytest.approx([2.0])
    c.scale(2, 3.0)
    c.mute(1, True)
    c.transpose(-7.5)
    c.freq_shift(12)
    c.gain(0.8)
    c.glide(0.0)
    c.tilt(-3.0)
    c.sync()
    assert c.get("/scale/2") == pytest.approx([3.0])
    assert c.get("/mute/1") == [1]
    assert c.get("/transpose") == pytest.approx([-7.5])
    assert c.get("/freq_shift") == [12]
    assert c.get("/gain") == pytest.approx([0.8])
    assert c.get("/glide") == pytest.approx([0.0])
    c.mute(1, False)
    c.scale(2, 1.0)
    c.transpose(0)
    c.freq_shift(0)
    c.sync()


def test_chroma_forms(c):
    c.chroma(4)
    c.sync()
    assert c.get("/chroma") == [4]
    c.chroma("Db")
    c.sync()
    assert c.get("/chroma") == [1]
    c.chroma([1.0] + [0.0] * 10 + [1.0])
    c.sync()
    v = c.get("/chroma")
    assert len(v) == 12 and v[0] == pytest.approx(0.5) and v[11] == pytest.approx(0.5)
    assert "pitch class" in fail_reason(c, "/chroma", "H")


def test_pure_data_floats_and_booleans(c):
    # Pd sends every number as float32; T/F for booleans
    c._send("/mute/0", [1.0])
    c._send("/freq_shift", [3.0])
    c._send("/play", [True])
    c._send("/chroma", [7.0])
    c.sync()
    assert c.get("/mute/0") == [1]
    assert c.get("/freq_shift") == [3]
    assert c.get("/play") == [1]
    assert c.get("/chroma") == [7]
    c._send("/mute/0", [False])
    c._send("/freq_shift", [0.0])
    c.sync()
    assert c.get("/mute/0") == [0]


@pytest.mark.parametrize(
    "address,args,reason",
    [
        ("/gain", [math.nan], "finite"),
        ("/gain", [math.inf], "finite"),
        ("/gain", ["loud"], "number"),
        ("/gain", [5.0], "range"),
        ("/gain", [], "argument"),
        ("/latent", [0.1, 0.2], "8 values"),
        ("/latent/8", [0.5], "out of range"),
        ("/scale/0", [9.0], "range"),
        ("/mute/0", [2], "0 or 1"),
        ("/freq_shift", [1.5], "whole"),
        ("/nope", [], "unknown address"),
        ("/note", [200], "range"),
        ("/get", ["/status"], "not a state address"),
        ("/preset/save", ["../etc/passwd"], "not valid"),
        ("/preset/load", ["missing_preset"], "no preset"),
        ("/model/load", ["../../etc"], "not valid"),
        ("/model/load", ["nosuchmodel"], "no model"),
        ("/record/start", ["/tmp/x"], "not valid"),
        ("/quit", [], "disabled"),
        ("/play", [1, 2], "argument"),
    ],
)
def test_refusals_fail_and_change_nothing(c, address, args, reason):
    before = c.get("/gain")
    assert reason in fail_reason(c, address, *args)
    assert c.get("/gain") == before


def test_transport_and_actions(c, daemon):
    c.play()
    c.sync()
    assert c.get("/play") == [1]
    c.play(False)
    c.sync()
    assert c.get("/play") == [0]
    c.play()
    c.stop()
    c.sync()
    assert c.get("/play") == [0]
    c.play()
    c.panic()
    c.sync()
    assert c.get("/play") == [0]
    c.zero()
    c.sync()
    assert c.get("/latent") == [0.0] * 8
    c.scale(0, 2.0)
    c.mute(5, True)
    c.reset()
    c.sync()
    assert c.get("/latent") == pytest.approx([0.5] * 8)
    assert c.get("/scale/0") == [1.0] and c.get("/mute/5") == [0]


def test_note_and_note_off(c):
    c.note(64, 100)  # E: pitch class 4
    c.sync()
    assert c.get("/chroma") == [4]
    assert c.get("/play") == [1]
    c.note_off(65)  # not the sounding note: ignored
    c.sync()
    assert c.get("/play") == [1]
    c.note_off(64)
    c.sync()
    assert c.get("/play") == [0]
    c.note(64, 0)  # velocity 0 = note off (nothing sounding: stays off)
    c.sync()
    assert c.get("/play") == [0]


def test_sounds_when_playing(c):
    c.reset()
    c.gain(1.0)
    c.play()
    c.sync()
    time.sleep(0.3)
    rms, peak = c.meter()
    assert rms > -60.0 and peak <= 0.0
    c.stop()
    c.sync()
    time.sleep(0.3)
    assert c.meter()[0] < -100.0


def test_presets(c):
    c.latent(0, 1.5)
    c.gain(0.7)
    c.sync()
    assert c.preset_save("bright_1") == "bright_1"
    assert "bright_1" in c.preset_list()
    c.latent(0, 0.1)
    c.gain(1.0)
    c.sync()
    assert c.preset_load("bright_1") == "bright_1"
    c.sync()
    assert c.get("/latent/0") == pytest.approx([1.5])
    assert c.get("/gain") == pytest.approx([0.7])
    c.latent(0, 0.1)
    assert c.preset_load("bright_1", 0.5) == "bright_1"  # morph over 0.5 s
    c.sync()
    assert c.get("/latent/0") == pytest.approx([1.5])
    assert c.preset_delete("bright_1") == "bright_1"
    assert "bright_1" not in c.preset_list()
    assert "no preset" in fail_reason(c, "/preset/delete", "bright_1")
    c.gain(1.0)


def test_models_list_and_hot_swap(c):
    assert c.model_list() == ["small", "synthetic"]
    c.play()
    assert c.model_load("small") == "small"
    c.sync()
    time.sleep(0.2)
    assert c.status()["model"] == "small"
    assert len(c.get("/latent")) == 4
    assert c.model_load("synthetic") == "synthetic"
    time.sleep(0.2)
    assert c.status()["model"] == "synthetic"
    c.stop()


def test_record(c, daemon):
    c.play()
    assert c.record_start("take_1") == "take_1.wav"
    assert "already recording" in fail_reason(c, "/record/start")
    time.sleep(0.5)
    name = c.record_stop()
    assert name == "take_1.wav"
    with wave.open(str(daemon.recordings_dir / name)) as w:
        assert w.getframerate() == 44100 and w.getnchannels() == 1 and w.getsampwidth() == 3
        assert w.getnframes() > 0.3 * 44100
    assert "not recording" in fail_reason(c, "/record/stop")
    # default name
    auto = c.record_start()
    assert auto.startswith("rec-") and auto.endswith(".wav")
    assert c.record_stop() == auto
    c.stop()


def test_notify_echoes_and_meter(daemon, c):
    got: list = []
    with Client(port=daemon.port) as sub:
        sub.notify(True, callback=lambda a, args: got.append((a, args)))
        c.gain(0.55)
        c.latent(2, 0.25)
        c.chroma("A")
        c.sync()
        time.sleep(0.3)
        addrs = {a for a, _ in got}
        assert ("/gain", pytest.approx([0.55])) in [(a, args) for a, args in got if a == "/gain"]
        assert any(a == "/latent/2" and args == [0.25] for a, args in got)
        assert any(a == "/chroma" and args == [9] for a, args in got)
        assert "/meter" in addrs
        n_meter = sum(1 for a, _ in got if a == "/meter")
        assert 3 <= n_meter <= 12  # ~20/s over ~0.3-0.5 s
        sub.notify(False)
        time.sleep(0.1)
        got.clear()
        c.gain(1.0)
        c.sync()
        time.sleep(0.2)
        assert not any(a == "/gain" for a, _ in got)


def test_sync_and_midi_learn(c):
    assert c.sync(42) == 42
    # MIDI is off in this daemon: learning is refused with a reason (tests/test_midi_* cover it on)
    assert "MIDI is not enabled" in fail_reason(c, "/midi/learn", "/latent/0")
    assert "cannot be bound" in fail_reason(c, "/midi/learn", "/status")


def test_quit_when_allowed(tmp_path, models_dir):
    with Daemon(tmp_path, models_dir, "--allow-quit", "--fresh") as d:
        with Client(port=d.port) as c:
            c.quit()
        assert d.proc.wait(3) == 0


def test_model_swap_echoes_the_new_units(daemon, c):
    got: list = []
    with Client(port=daemon.port) as sub:
        sub.notify(True, callback=lambda a, args: got.append((a, args)))
        c.model_load("small")
        c.sync()
        time.sleep(0.3)
        lat = [args for a, args in got if a == "/latent"]
        assert lat and len(lat[-1]) == 4
        c.model_load("synthetic")
        c.sync()
        time.sleep(0.3)
        lat = [args for a, args in got if a == "/latent"]
        assert len(lat[-1]) == 8
        sub.notify(False)


def test_notify_with_a_port_delivers_to_that_port_of_the_senders_host(c, daemon):
    """Max's [udpsend] sends from a port it cannot receive on: `/notify 1 PORT` subscribes the
    [udpreceive PORT] on the same host instead."""
    import socket

    from aedaemon.oscwire import encode_message, parse_packet

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(2.0)
    port = listener.getsockname()[1]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # like [udpsend]: never reads
    try:
        sender.sendto(encode_message("/notify", [1, port]), ("127.0.0.1", daemon.port))
        time.sleep(0.2)
        c.glide(0.125)
        c.sync()
        seen = []
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and not any(m.address == "/glide" for m in seen):
            seen += parse_packet(listener.recv(65536))
        assert any(m.address == "/glide" and m.args == [0.125] for m in seen), seen
        sender.sendto(encode_message("/notify", [0, port]), ("127.0.0.1", daemon.port))
        time.sleep(0.3)
        listener.settimeout(0.3)
        try:
            while True:
                listener.recv(65536)  # drain what was in flight
        except socket.timeout:
            pass
        c.glide(0.25)
        c.sync()
        with pytest.raises(socket.timeout):
            listener.recv(65536)
    finally:
        listener.close()
        sender.close()
    assert "out of range" in fail_reason(c, "/notify", 1, 70000)
