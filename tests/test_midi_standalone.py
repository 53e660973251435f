"""`aedaemon midi-bridge --to osc.udp://HOST:PORT` as a subprocess: a virtual nanoKONTROL2 on
jackd in, real OSC over UDP out — to an independent python-osc peer on 127.0.0.1, and to the
real daemon (`aedaemon run --audio null`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from aedaemon.client import Client
from daemon_harness import Daemon, run_cli
from midi_rig import NanoKontrol2, wait_until

K = NanoKontrol2
REPO = Path(__file__).resolve().parent.parent


class Peer:
    """A minimal OSC 'daemon' written with python-osc only: answers /get from a dict, echoes
    state to the subscriber, records everything received."""

    def __init__(self, units: int = 8) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.state: dict[str, tuple] = {"/latent": (0.5,) * units, "/play": (0,), "/transpose": (0.0,),
                                        "/chroma": (0,)}
        for i in range(units):
            self.state[f"/mute/{i}"] = (0,)
            self.state[f"/scale/{i}"] = (1.0,)
        self.got: list[tuple[str, tuple]] = []
        self.subscriber = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def send(self, to, address: str, args) -> None:
        b = OscMessageBuilder(address=address)
        for a in args:
            b.add_arg(a)
        self.sock.sendto(b.build().dgram, to)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, src = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            for tm in OscPacket(data).messages:
                a, args = tm.message.address, tuple(tm.message.params)
                with self._lock:
                    self.got.append((a, args))
                if a == "/notify":
                    self.subscriber = src if args and args[0] else None
                elif a == "/get":
                    if args[0] in self.state:
                        self.send(src, args[0], self.state[args[0]])
                elif a == "/quit":
                    self.send(src, "/fail", ["/quit", "/quit is disabled"])
                elif len(args) == 1 and a in self.state:
                    self.state[a] = args
                    self.send(src, a, args)  # the echo

    def messages(self, address: str) -> list[tuple]:
        with self._lock:
            return [args for a, args in self.got if a == address]

    def echo(self, address: str, args) -> None:
        """Another client changed something: the subscriber hears about it."""
        self.state[address] = tuple(args)
        self.send(self.subscriber, address, args)

    def close(self) -> None:
        self._stop.set()
        self._t.join(1)
        self.sock.close()


class Bridge:
    def __init__(self, to: str, *extra: str, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AEDAEMON_")}
        env["XDG_CONFIG_HOME"] = str(cwd / "config")
        self.err_path = cwd / "bridge.stderr"
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aedaemon.cli", "midi-bridge", "--to", to, "--port", "nanoKONTROL2*",
             "--client-name", "aedaemon-bridge-test", *extra],
            stdout=subprocess.PIPE, stderr=self._err, text=True, cwd=cwd, env=env)
        box: list[str] = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(15)
        if not box or not box[0].startswith("aedaemon midi-bridge ready"):
            self.close()
            raise RuntimeError(f"bridge not ready: {box!r}\n{self.stderr()}")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(5)
        finally:
            self._err.close()


def test_standalone_sends_osc_and_keeps_its_own_state(tmp_path):
    ctl = NanoKontrol2()
    peer = Peer(units=12)
    bridge = Bridge(f"osc.udp://127.0.0.1:{peer.port}", cwd=tmp_path)
    try:
        assert wait_until(lambda: peer.subscriber is not None, 3.0)
        assert wait_until(lambda: "connected" in bridge.stderr() and len(peer.messages("/get")) > 20, 3.0)
        ctl.cc(K.FADER + 2, 127)
        assert wait_until(lambda: peer.messages("/latent/2") == [(1.0,)]), peer.got
        ctl.cc(K.KNOB, 0)
        assert wait_until(lambda: peer.messages("/scale/0") == [(0.0,)])
        # toggles from the daemon's state: M1 mutes, M1 again unmutes
        ctl.press(K.M)
        assert wait_until(lambda: peer.messages("/mute/0") == [(1,)])
        ctl.press(K.M)
        assert wait_until(lambda: peer.messages("/mute/0") == [(1,), (0,)])
        # another client sets the transpose; fast-forward goes on from there
        peer.echo("/transpose", [5.0])
        time.sleep(0.1)
        ctl.press(K.FF)
        assert wait_until(lambda: peer.messages("/transpose") == [(17.0,)]), peer.got
        # banks: 12 units known from /get /latent → two banks
        ctl.press(K.TRACK_NEXT)
        time.sleep(0.05)
        ctl.cc(K.FADER + 1, 0)
        assert wait_until(lambda: peer.messages("/latent/9") == [(0.0,)])
        # record toggle (bridge's own state) and LEDs: play lights after the echo
        ctl.press(K.PLAY)
        assert wait_until(lambda: peer.messages("/play") == [(1,)])
        assert wait_until(lambda: ctl.led(K.PLAY) == 127)
        ctl.press(K.REC)
        assert wait_until(lambda: len(peer.messages("/record/start")) == 1)
    finally:
        rc = bridge.close()
        peer.close()
        ctl.close()
    assert rc == 0
    assert peer.messages("/notify")[-1] == (0,)  # unsubscribed on the way out


def test_standalone_against_the_real_daemon(tmp_path, models_dir):
    ctl = NanoKontrol2(leds=False)
    with Daemon(tmp_path / "d", models_dir, audio="null") as d:
        bridge = Bridge(f"osc.udp://127.0.0.1:{d.port}", cwd=tmp_path)
        try:
            assert wait_until(lambda: "connected" in bridge.stderr(), 3.0)
            time.sleep(0.3)  # the bridge's first /get answers
            with Client(port=d.port) as c:
                ctl.cc(K.FADER + 4, 0)
                ctl.press(K.M + 1)
                ctl.press(K.PLAY)
                ctl.press(K.MARKER_NEXT)
                assert wait_until(lambda: c.get("/play") == [1], 3.0)
                assert c.get("/latent/4") == [pytest.approx(0.0)]
                assert c.get("/mute/1") == [1]
                assert c.get("/chroma") == [1]
                ctl.press(K.CYCLE)  # /reset
                assert wait_until(lambda: c.get("/mute/1") == [0], 3.0)
        finally:
            assert bridge.close() == 0
        assert d.alive()
    ctl.close()


def test_bad_target_is_a_one_line_error(tmp_path):
    r = run_cli("midi-bridge", "--to", "http://example.com", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "osc.udp://" in r.stderr


def test_standalone_learn_saves_and_works_at_once(tmp_path):
    ctl = NanoKontrol2(leds=False)
    peer = Peer(units=8)
    learned = tmp_path / "learned.toml"
    bridge = Bridge(f"osc.udp://127.0.0.1:{peer.port}", "--learn", "/gain", "--learn-file", str(learned),
                    cwd=tmp_path)
    try:
        assert wait_until(lambda: "connected" in bridge.stderr(), 3.0)
        ctl.cc(K.KNOB + 7, 5)  # binds knob 8 to /gain (consumed)
        assert wait_until(learned.is_file, 2.0), bridge.stderr()
        ctl.cc(K.KNOB + 7, 127)
        assert wait_until(lambda: peer.messages("/gain") == [(2.0,)]), peer.got
        assert peer.messages("/scale/7") == []  # the learned binding shadows the knob's default
        text = learned.read_text()
        assert 'extends = "nanokontrol2"' in text and "cc = 23" in text and 'address = "/gain"' in text
    finally:
        assert bridge.close() == 0
        peer.close()
        ctl.close()
    # the next run loads it on top of the shipped mapping
    ctl = NanoKontrol2(leds=False)
    peer = Peer(units=8)
    bridge = Bridge(f"osc.udp://127.0.0.1:{peer.port}", "--learn-file", str(learned), cwd=tmp_path)
    try:
        assert wait_until(lambda: "connected" in bridge.stderr(), 3.0)
        ctl.cc(K.KNOB + 7, 0)
        assert wait_until(lambda: peer.messages("/gain") == [(0.0,)]), peer.got
    finally:
        bridge.close()
        peer.close()
        ctl.close()
