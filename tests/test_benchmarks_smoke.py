"""The benchmark scripts still run (`make bench`): quick mode, figures printed, no timing asserted
(performance is measured by the benchmarks, not judged by the tests)."""

from __future__ import annotations

import json
import subprocess
import sys

from daemon_harness import REPO, ensure_jackd


def test_bench_render_quick_prints_every_section(tmp_path):
    out = tmp_path / "render.json"
    res = subprocess.run(
        [sys.executable, "benchmarks/bench_render.py", "--quick", "--model", str(tmp_path / "none"), "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    for section in ("seed CANNe loop", "offline render", "spectral convergence"):
        assert section in res.stdout
    figures = json.loads(out.read_text())
    assert set(figures["per_hop_us"]) >= {"aedaemon rtpghi", "aedaemon noise", "aedaemon canne", "seed CANNe loop"}
    assert all(v["static"] > 0 and v["changing"] > 0 for v in figures["per_hop_us"].values())


def test_bench_midi_quick_runs_against_virtual_ports():
    ensure_jackd()
    res = subprocess.run([sys.executable, "benchmarks/bench_midi.py", "--quick"], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "bridge (state - transport)" in res.stdout and "goal:" in res.stdout


def test_bench_sound_quick_prints_every_goal(tmp_path):
    out = tmp_path / "sound.json"
    res = subprocess.run([sys.executable, "benchmarks/bench_sound.py", "--quick", "--json", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    for section in ("pitch:", "transpose on", "loudness at gain 1", "phase methods", "dips at abrupt changes", "onsets:"):
        assert section in res.stdout
    assert json.loads(out.read_text())["quick"] is True
