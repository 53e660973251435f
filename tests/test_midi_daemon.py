"""The MIDI bridge inside `aedaemon run` (`[midi] enabled = true`), end to end.

It runs the real daemon on the null clock with a virtual nanoKONTROL2 on jackd, and checks
state, the /notify echo, /midi/learn and the /status count.
"""

from __future__ import annotations

import time

from aedaemon.client import Client
from daemon_harness import Daemon
from midi_rig import NanoKontrol2, wait_until

K = NanoKontrol2


def test_daemon_midi_end_to_end(tmp_path, models_dir):
    ctl = NanoKontrol2()
    cfg = tmp_path / "aedaemon.toml"
    cfg.write_text('[midi]\nenabled = true\nport = "nanoKONTROL2*"\nmapping = "nanokontrol2"\n')
    try:
        with Daemon(tmp_path / "d", models_dir, audio="null", config=cfg) as d:
            echoes: list = []
            with Client(port=d.port, callback=lambda a, args: echoes.append((a, list(args)))) as c:
                c.notify(True)
                assert wait_until(lambda: "MIDI input connected" in d.stderr(), 3.0), d.stderr()
                ctl.cc(K.FADER + 2, 0)
                ctl.press(K.M + 1)
                ctl.press(K.PLAY)
                assert wait_until(lambda: c.get("/play") == [1], 3.0)
                assert c.get("/latent/2") == [0.0]
                assert c.get("/mute/1") == [1]
                assert wait_until(lambda: ("/mute/1", [1]) in echoes, 2.0), echoes
                assert wait_until(lambda: ctl.led(K.PLAY) == 127, 2.0)
                # learn: bind knob 6 to /latent/3, saved under state_dir/midi/
                c.midi_learn("/latent/3")
                ctl.cc(K.KNOB + 5, 1)
                assert wait_until(lambda: (d.state_dir / "midi" / "nanokontrol2.toml").is_file(), 2.0)
                ctl.cc(K.KNOB + 5, 0)
                assert wait_until(lambda: c.get("/latent/3") == [0.0], 2.0)
                # sent: fader, M press+release, PLAY press+release, knob 1, knob 0 = 7 messages
                # (a message is counted just after its action lands: wait, do not sample once)
                assert wait_until(lambda: c.status().get("midi_messages") == 7, 2.0), c.status()
            # unplug and plug back: the daemon keeps running and reconnects
            ctl.unplug()
            time.sleep(0.8)
            ctl.plug()
            assert wait_until(lambda: "reconnected" in d.stderr(), 2.5), d.stderr()
            assert d.alive()
    finally:
        ctl.close()
