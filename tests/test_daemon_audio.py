"""Audio path: the ring, device selection and its error message, null clock, systemd
notifications (READY, WATCHDOG while audio runs, STOPPING)."""

from __future__ import annotations

import os
import signal
import socket
import time

import numpy as np
import pytest

from aedaemon.audio import Ring
from aedaemon.client import Client
from daemon_harness import Daemon, ensure_jackd, run_cli


def test_ring_wraps_and_reports_short_reads():
    r = Ring(100)
    assert r.size == 128
    out = np.zeros(64, np.float32)
    x = np.arange(1000, dtype=np.float32)
    pos = 0
    for _ in range(20):
        r.write(x[pos : pos + 50])
        assert r.read_into(out, 50) == 50
        assert np.array_equal(out[:50], x[pos : pos + 50])
        pos += 50
    r.write(x[:10])
    assert r.read_into(out, 64) == 10 and r.fill() == 0


def test_unknown_device_lists_devices(tmp_path, models_dir):
    ensure_jackd()
    r = run_cli("run", "--device", "no-such-card", "--models-dir", str(models_dir), "--model", "synthetic",
                "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert r.returncode == 2
    assert "no output device matches 'no-such-card'; output devices: [0] system (JACK Audio Connection Kit" in r.stderr
    r = run_cli("run", "--device", "42", "--models-dir", str(models_dir), "--model", "synthetic",
                "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert r.returncode == 2 and "output device 42 does not exist" in r.stderr


@pytest.mark.parametrize("device", ["system", "0"])
def test_device_by_name_or_index(tmp_path, models_dir, device):
    with Daemon(tmp_path, models_dir, "--fresh", "--device", device) as d:
        assert "portaudio [0] system (JACK Audio Connection Kit)" in d.stderr()
        with Client(port=d.port) as c:
            c.play()
            time.sleep(0.5)
            st = c.status()
            assert st["model"] == "synthetic"  # underflow counts are measured by benchmarks/bench_daemon.py


def test_null_audio_runs_on_software_clock(tmp_path, models_dir):
    with Daemon(tmp_path, models_dir, "--fresh", audio="null") as d:
        with Client(port=d.port) as c:
            c.play()
            time.sleep(0.5)
            c.sync()
            assert c.meter()[0] > -60.0
            assert "audio null" in d.stderr()


def test_bad_model_is_one_line(tmp_path, models_dir):
    r = run_cli("run", "--audio", "null", "--models-dir", str(models_dir), "--model", "nonexistent",
                "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert r.returncode == 2
    assert "unknown model 'nonexistent'" in r.stderr and "Traceback" not in r.stderr


def test_sd_notify_ready_watchdog_stopping(tmp_path, models_dir):
    sock_path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(5)
    d = Daemon(tmp_path, models_dir, "--fresh", env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "200000"})
    try:
        msgs = [s.recv(1000).decode()]
        assert msgs[0].startswith("READY=1")
        t0 = time.monotonic()
        n_dog = 0
        while time.monotonic() - t0 < 1.0:
            if s.recv(1000) == b"WATCHDOG=1":
                n_dog += 1
        assert 5 <= n_dog <= 15  # every WATCHDOG_USEC/2 = 0.1 s
        d.proc.send_signal(signal.SIGTERM)
        while True:
            m = s.recv(1000)
            if m == b"STOPPING=1":
                break
        assert d.proc.wait(3) == 0
    finally:
        d.kill()
        s.close()


def test_abstract_notify_socket(tmp_path, models_dir):
    name = f"aedaemon-test-{os.getpid()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(5)
    with Daemon(tmp_path, models_dir, "--fresh", audio="null", env={"NOTIFY_SOCKET": "@" + name}):
        assert s.recv(1000).startswith(b"READY=1")
    s.close()


# A stalled or vanished device no longer stops the watchdog: the daemon recovers by itself
# (software clock, a new device process when the device is back): tests/test_device_loss.py.


def test_aedaemon_run_entry_point(tmp_path, models_dir):
    with Daemon(tmp_path, models_dir, "--fresh", entry="cli") as d:
        with Client(port=d.port) as c:
            assert c.status()["model"] == "synthetic"
            assert d.ready_s < 3.0
    assert d.proc.returncode == 0


def test_audio_auto_plays_on_a_software_clock_when_no_device(tmp_path, models_dir):
    # a device that does not exist stands in for a machine without a sound card (yet: the
    # output keeps looking for it, tests/test_device_loss.py)
    with Daemon(tmp_path, models_dir, "--fresh", "--device", "no-such-card", audio="auto") as d:
        assert "playing on a software clock until a device appears" in d.stderr()
        assert "no output device matches 'no-such-card'" in d.stderr()
        with Client(port=d.port) as c:
            assert c.status()["model"] == "synthetic"
