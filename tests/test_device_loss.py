"""Issue 10 item 4: the audio device goes away and comes back. A private jackd (its own server
name, so the shared one the other tests use is untouched) is killed (SIGKILL), stopped
(SIGSTOP) and restarted under a playing daemon; the daemon must say so, keep answering OSC,
keep its state, and sound again within 2 s of the device returning — no systemd involved.
Sound is checked from outside: a capture process on the same JACK server records the
daemon's output port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aedaemon.client import Client
from daemon_harness import Daemon

CAPTURE = textwrap.dedent("""
    import os, subprocess, sys, time
    import numpy as np, pyaudio
    seconds = float(sys.argv[1])
    pa = pyaudio.PyAudio()
    # the JACK host API's input explicitly: the default input may be another API's (or none)
    dev = next(i for i in range(pa.get_device_count())
               if pa.get_device_info_by_index(i)["maxInputChannels"] > 0
               and "JACK" in pa.get_host_api_info_by_index(pa.get_device_info_by_index(i)["hostApi"])["name"])
    frames = []
    def cb(data, n, info, status):
        frames.append(np.frombuffer(data, np.float32).copy())
        return (None, pyaudio.paContinue)
    st = pa.open(format=pyaudio.paFloat32, channels=1, rate=44100, input=True, frames_per_buffer=256,
                 input_device_index=dev, stream_callback=cb)
    time.sleep(0.2)
    ports = subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout.split()
    src = [p for p in ports if p.startswith("PortAudio") and ":out" in p]
    ins = [p for p in ports if p.startswith("PortAudio") and ":in" in p]
    for p in ports:
        if p.startswith("system:capture"):
            for i in ins:
                subprocess.run(["jack_disconnect", p, i], capture_output=True)
    for s in src:
        for i in ins:
            subprocess.run(["jack_connect", s, i], capture_output=True)
    frames.clear()
    time.sleep(seconds)
    st.stop_stream()
    x = np.concatenate(frames) if frames else np.zeros(1, np.float32)
    print(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))), len(x), flush=True)  # (os._exit skips flushing)
    os._exit(0)
""")


class PrivateJack:
    """A jackd dummy server of our own. Its name is fixed: jackd2's server registry has 8 slots,
    and the slot of a server killed with SIGKILL is only reclaimed by a server of the same name
    (a fresh name per run would fill the registry: "Too many servers already active")."""

    def __init__(self) -> None:
        self.name = "aedaemon-test-private"
        self.env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1", JACK_DEFAULT_SERVER=self.name,
                        JACK_NO_START_SERVER="1")
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        self.proc = subprocess.Popen(["jackd", "-n", self.name, "--no-realtime", "-d", "dummy", "-r", "44100",
                                      "-p", "256"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=self.env)
        for _ in range(100):
            if subprocess.run(["jack_lsp"], env=self.env, capture_output=True).returncode == 0:
                return time.monotonic()
            time.sleep(0.05)
        raise RuntimeError("private jackd did not start")

    def ports(self) -> str:
        return subprocess.run(["jack_lsp"], env=self.env, capture_output=True, text=True).stdout

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(5)
        # a killed server leaves its shared-memory registry; the next one cleans it up itself

    def captured_rms(self, seconds: float = 0.5) -> float:
        out = subprocess.run([sys.executable, "-c", CAPTURE, str(seconds)], env=self.env, capture_output=True,
                             text=True, timeout=20)
        tb = out.stderr[out.stderr.find("Traceback"):] if "Traceback" in out.stderr else out.stderr[-1500:]
        assert out.stdout.split(), f"the capture process failed (exit {out.returncode}): {tb}"
        return float(out.stdout.split()[0])


@pytest.fixture()
def jack():
    j = PrivateJack()
    j.start()
    yield j
    j.kill()


def wait_for(pred, timeout: float, every: float = 0.02) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(every)
    raise AssertionError("timed out")


def test_jackd_killed_and_restarted_the_daemon_recovers_within_two_seconds(tmp_path, jack, models_dir):
    with Daemon(tmp_path, models_dir, "--fresh", env={"JACK_DEFAULT_SERVER": jack.name}) as d:
        with Client(port=d.port, timeout=3.0) as c:
            c.chroma(4)
            c.play()
            c.sync()
            assert jack.captured_rms() > 1e-3  # sounding on the private server
            jack.kill()
            wait_for(lambda: "audio device lost" in d.stderr(), 3.0)
            # still answering, state kept, the clock still running (meters move on a soft clock)
            st = c.status()
            assert st["playing"] == 1 and st["audio"] == "lost" and c.get("/chroma") == [4]
            c.chroma(7)  # changes while the device is gone are kept
            c.sync()
            time.sleep(0.5)
            t_back = jack.start()
            wait_for(lambda: "PortAudio" in jack.ports(), 2.0)
            back = time.monotonic() - t_back
            assert back <= 2.0, back
            assert jack.captured_rms() > 1e-3  # sounding again
            assert c.get("/chroma") == [7] and c.status()["audio"] == "ok"
        log = d.stderr()
        assert "audio device back after" in log
        assert d.alive()


def test_a_stopped_device_is_declared_lost_and_the_watchdog_stays_fed(tmp_path, jack, models_dir):
    import socket

    sock_path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(0.3)

    def pings(seconds: float) -> int:
        n = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                if s.recv(100) == b"WATCHDOG=1":
                    n += 1
            except socket.timeout:
                pass
        return n

    try:
        env = {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "200000", "JACK_DEFAULT_SERVER": jack.name}
        with Daemon(tmp_path, models_dir, "--fresh", env=env) as d:
            assert pings(0.6) >= 3
            jack.proc.send_signal(signal.SIGSTOP)
            wait_for(lambda: "audio device lost (stopped calling back)" in d.stderr(), 3.0)
            # the daemon handles it (software clock, retries): systemd has no reason to restart it
            assert pings(1.0) >= 5
            with Client(port=d.port) as c:
                assert c.status()["model"] == "synthetic"
            jack.proc.send_signal(signal.SIGCONT)
            t0 = time.monotonic()
            assert d.terminate(timeout=3) == 0  # SIGTERM still ends it promptly
            assert time.monotonic() - t0 < 2.0
    finally:
        s.close()


def test_auto_audio_started_while_jackd_is_down_finds_it_later(tmp_path, models_dir):
    j = PrivateJack()  # not started
    try:
        with Daemon(tmp_path, models_dir, "--fresh", audio="auto", env={"JACK_DEFAULT_SERVER": j.name}) as d:
            assert "software clock until a device appears" in d.stderr()
            with Client(port=d.port, timeout=3.0) as c:
                c.play()
                c.sync()
                t_up = j.start()
                wait_for(lambda: "PortAudio" in j.ports(), 3.0)
                assert time.monotonic() - t_up <= 2.5
                assert j.captured_rms() > 1e-3
            assert "audio device back after" in d.stderr()
    finally:
        j.kill()


def test_the_device_process_dies_with_the_daemon(tmp_path, jack, models_dir):
    d = Daemon(tmp_path, models_dir, "--fresh", env={"JACK_DEFAULT_SERVER": jack.name})
    try:
        kids = Path(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children").read_text().split()
        assert kids, "no device process"
        d.proc.kill()
        d.proc.wait(5)
        wait_for(lambda: not any(Path(f"/proc/{k}").exists() and "devicechild" in
                                 Path(f"/proc/{k}/cmdline").read_bytes().decode(errors="replace")
                                 for k in kids), 3.0)
    finally:
        d.kill()


CONTROLLER = textwrap.dedent("""
    import sys, rtmidi
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="nanoKONTROL2")
    out.open_virtual_port("nanoKONTROL2 SLIDER/KNOB")
    print("ready", flush=True)
    for line in sys.stdin:
        cc, value = map(int, line.split())
        out.send_message([0xB0, cc, value])
        print("sent", flush=True)
""")


class Controller:
    """A virtual nanoKONTROL2 in its own process on the private server (it dies with jackd)."""

    def __init__(self, jack: PrivateJack) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", CONTROLLER], env=jack.env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def cc(self, number: int, value: int) -> None:
        self.proc.stdin.write(f"{number} {value}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "sent"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def test_the_midi_bridge_comes_back_after_a_jackd_restart(tmp_path, jack, models_dir):
    cfg = tmp_path / "aedaemon.toml"
    cfg.write_text('[midi]\nenabled = true\nport = "nanoKONTROL2*"\nmapping = "nanokontrol2"\nbackend = "jack"\n')
    ctl = Controller(jack)
    try:
        with Daemon(tmp_path / "d", models_dir, "--fresh", config=cfg, env={"JACK_DEFAULT_SERVER": jack.name}) as d:
            with Client(port=d.port, timeout=3.0) as c:
                wait_for(lambda: "MIDI input connected" in d.stderr(), 5.0)
                ctl.cc(2, 0)  # fader 3 -> /latent/2 at the bottom of the learned range
                wait_for(lambda: c.get("/latent/2") == [0.0], 3.0)
                ctl.close()
                jack.kill()
                wait_for(lambda: "audio device lost" in d.stderr(), 3.0)
                jack.start()
                ctl = Controller(jack)
                wait_for(lambda: "audio device back after" in d.stderr(), 3.0)
                wait_for(lambda: "is back: reconnected" in d.stderr(), 3.0)  # new MIDI clients
                ctl.cc(2, 127)  # the top of the range: the bridge must be listening again
                wait_for(lambda: c.get("/latent/2") == [1.0], 5.0)
            assert d.alive()
    finally:
        ctl.close()
