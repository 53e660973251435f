"""Hardening (issue 10, item 14): an unterminated SysEx must not make MIDI input deaf, and
SIGHUP reloads the MIDI mapping (a malformed one is logged, the old one kept). The real daemon
on the null clock, a virtual controller on jackd (tests/midi_rig.py)."""

from __future__ import annotations

import signal
import uuid

from aedaemon.client import Client
from aedaemon.midi.router import split_stream
from daemon_harness import Daemon
from midi_rig import NanoKontrol2, wait_until

MAPPING = """[device]
name = "{name}"
port = "{port}*"
channel = 1

[[bind]]
name = "one fader"
cc = 0
mode = "absolute"
address = "{address}"
range = [0.0, 1.0]
"""


def test_split_stream():
    assert split_stream([0xF0, 1, 2, 0xB0, 0, 127, 0xB0, 1, 64, 0xF7]) == [[0xF0, 1, 2], [0xB0, 0, 127],
                                                                           [0xB0, 1, 64], [0xF7]]
    assert split_stream([0xF0, 1, 0xF8, 2, 0xF7]) == [[0xF8], [0xF0, 1, 2], [0xF7]]
    assert split_stream([1, 2, 0x90, 60, 100]) == [[0x90, 60, 100]]


def _daemon(tmp_path, models_dir, mapping: str, port: str):
    cfg = tmp_path / "aedaemon.toml"
    cfg.write_text(f'[midi]\nenabled = true\nport = "{port}*"\nmapping = "{mapping}"\n')
    return Daemon(tmp_path / "d", models_dir, "--fresh", audio="null", config=cfg)


def test_an_unterminated_sysex_does_not_make_midi_input_deaf(tmp_path, models_dir):
    client = f"hk{uuid.uuid4().hex[:6]}"
    ctl = NanoKontrol2(client=client, leds=False)
    try:
        with _daemon(tmp_path, models_dir, "nanokontrol2", client) as d:
            with Client(port=d.port) as c:
                assert wait_until(lambda: "MIDI input connected" in d.stderr(), 3.0), d.stderr()
                ctl.cc(NanoKontrol2.FADER + 0, 127)
                assert wait_until(lambda: c.get("/latent/0") == [1.0], 2.0)
                ctl.send([0xF0, 0x01, 0x02])  # a SysEx that never ends (no F7)
                ctl.cc(NanoKontrol2.FADER + 0, 0)
                ctl.cc(NanoKontrol2.FADER + 1, 127)
                # today: nothing more is heard until a lone F7 arrives
                assert wait_until(lambda: c.get("/latent/0") == [0.0] and c.get("/latent/1") == [1.0], 1.0), \
                    c.get("/latent")
                assert wait_until(lambda: "SysEx without its F7" in d.stderr(), 1.0), d.stderr()
                ctl.cc(NanoKontrol2.FADER + 2, 127)  # and input goes on as before
                assert wait_until(lambda: c.get("/latent/2") == [1.0], 1.0)
                ctl.send([0xF0, 0x7E, 0x01, 0xF7])  # a whole SysEx is ignored
                ctl.cc(NanoKontrol2.FADER + 2, 0)
                assert wait_until(lambda: c.get("/latent/2") == [0.0], 1.0)
    finally:
        ctl.close()


def test_sighup_reloads_the_midi_mapping_and_keeps_it_when_malformed(tmp_path, models_dir):
    client = f"hk{uuid.uuid4().hex[:6]}"
    ctl = NanoKontrol2(client=client, leds=False)
    mapping = tmp_path / "mine.toml"
    mapping.write_text(MAPPING.format(name="mine", port=client, address="/latent/0"))
    try:
        with _daemon(tmp_path, models_dir, str(mapping), client) as d:
            with Client(port=d.port) as c:
                assert wait_until(lambda: "MIDI input connected" in d.stderr(), 3.0), d.stderr()
                ctl.cc(0, 127)
                assert wait_until(lambda: c.get("/latent/0") == [1.0], 2.0)
                mapping.write_text(MAPPING.format(name="mine", port=client, address="/latent/5"))
                d.proc.send_signal(signal.SIGHUP)
                assert wait_until(lambda: "MIDI mapping 'mine' reloaded" in d.stderr(), 2.0), d.stderr()
                ctl.cc(0, 0)
                assert wait_until(lambda: c.get("/latent/5") == [0.0], 2.0)  # today: /latent/0 still
                assert c.get("/latent/0") == [1.0]
                mapping.write_text("[device\nname = ")  # malformed
                d.proc.send_signal(signal.SIGHUP)
                assert wait_until(lambda: "MIDI mapping not reloaded" in d.stderr(), 2.0), d.stderr()
                ctl.cc(0, 127)
                assert wait_until(lambda: c.get("/latent/5") == [1.0], 2.0)  # the old mapping is kept
                assert d.alive()
    finally:
        ctl.close()
