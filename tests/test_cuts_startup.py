"""Paper cuts at start: a second daemon on a busy port says only that (nothing restored first),
and two daemons never share one state folder (an exclusive lock, released when the holder
exits, even by kill -9). Real daemon subprocesses, real sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aedaemon.client import Client
from daemon_harness import Daemon


def _daemon_fails(workdir: Path, models_dir: Path, port: int) -> list[str]:
    """Start `aedaemon run` expecting it to refuse: its stderr lines (exit code 2 asserted)."""
    cmd = [sys.executable, "-m", "aedaemon.daemon", "--model", "synthetic", "--models-dir", str(models_dir),
           "--state-dir", str(workdir / "state"), "--recordings-dir", str(workdir / "recordings"),
           "--audio", "null", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AEDAEMON_")}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=workdir, env=env)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "aedaemon ready" not in res.stdout
    return [ln for ln in res.stderr.splitlines() if ln.strip()]


def _save_a_sound(workdir: Path, models_dir: Path) -> None:
    with Daemon(workdir, models_dir, "--fresh", audio="null") as d:
        with Client(port=d.port, timeout=3.0) as c:
            c.latent(1, 0.9)
            c.play()
            c.sync()
        assert d.terminate() == 0


def test_busy_port_is_the_first_and_only_thing_said(tmp_path, models_dir):
    first, second = tmp_path / "first", tmp_path / "second"
    _save_a_sound(second, models_dir)  # the second daemon has a last state it would restore
    with Daemon(first, models_dir, "--fresh", audio="null") as d:
        lines = _daemon_fails(second, models_dir, d.port)
        assert lines == [f"aedaemon: cannot listen on 127.0.0.1:{d.port} (UDP+TCP): Address already in use"], lines
        with Client(port=d.port, timeout=3.0) as c:
            assert c.status()["model"] == "synthetic"  # the first one never noticed
    # the refused daemon left its folder as it was: the saved sound is still there
    saved = json.loads((second / "state" / "last_state.json").read_text())["state"]
    assert saved["latent"][1] == pytest.approx(0.9) and saved["playing"] is True


def test_two_daemons_never_share_a_state_folder(tmp_path, models_dir):
    with Daemon(tmp_path, models_dir, "--fresh", audio="null") as d:
        with Client(port=d.port, timeout=3.0) as c:
            c.latent(3, 0.25)
            c.preset_save("mine")
        lines = _daemon_fails(tmp_path, models_dir, 0)  # same folder, any other port
        want = f"aedaemon: {d.state_dir}/ is in use by another aedaemon (pid {d.proc.pid}); use --state-dir"
        assert lines == [want], lines
        assert d.alive()
        with Client(port=d.port, timeout=3.0) as c:
            assert c.preset_list() == ["mine"] and c.get("/latent/3") == [0.25]
        assert d.terminate() == 0
    with Daemon(tmp_path, models_dir, audio="null") as again:  # released on exit: the next one starts
        with Client(port=again.port, timeout=3.0) as c:
            assert c.get("/latent/3") == [0.25]


def test_a_killed_daemon_does_not_leave_its_state_folder_locked(tmp_path, models_dir):
    d = Daemon(tmp_path, models_dir, "--fresh", audio="null")
    d.kill()  # SIGKILL: no clean-up ran; the lock file stays, the kernel dropped the lock
    assert (d.state_dir / "aedaemon.lock").read_text().strip() == str(d.proc.pid)
    with Daemon(tmp_path, models_dir, "--fresh", audio="null") as again:
        assert again.alive()
        assert (again.state_dir / "aedaemon.lock").read_text().strip() == str(again.proc.pid)


def test_the_lock_is_in_the_state_folder_the_flag_names(tmp_path, models_dir):
    with Daemon(tmp_path / "a", models_dir, "--fresh", audio="null") as d:
        other = tmp_path / "a" / "other-state"
        with Daemon(tmp_path / "a", models_dir, "--fresh", "--state-dir", str(other), audio="null") as d2:
            assert d.alive() and d2.alive()  # the hint in the error works
            assert (other / "aedaemon.lock").is_file()
