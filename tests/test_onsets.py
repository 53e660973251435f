"""Issue 9 item 5: a note that starts from silence begins at its exact sample (offline, through
`aedaemon render --score`); a change within a sounding note waits for the next frame boundary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import sound_analysis as sa  # noqa: E402
from test_pitch_tracking import SHIPPED, SR, send, shipped  # noqa: E402,F401

from aedaemon.cli import main  # noqa: E402
from aedaemon.engine import Engine  # noqa: E402
from aedaemon.render import read_wav  # noqa: E402

TIMES = [0.2 + k * 0.3123 for k in range(6)]  # never a multiple of the hop


def onset_errors_ms(x: np.ndarray, times: list[float]) -> list[float]:
    errors = []
    for t in times:
        a, want = int(round((t - 0.05) * SR)), int(round(t * SR))
        seg = x[a : int(round((t + 0.2) * SR))]
        steady = sa.rms(x[int((t + 0.1) * SR) : int((t + 0.15) * SR)])
        assert sa.peak(x[a:want]) == 0.0  # silent up to the requested sample
        found = sa.onset(seg, SR, steady=steady)
        errors.append(float("nan") if found is None else (a + found - want) * 1000.0 / SR)
    return errors


def test_scored_notes_from_silence_start_at_their_sample(shipped, tmp_path, capsys):
    score = [{"time": 0.0, "address": "/play", "args": [0]}]  # render plays from 0 unless told
    for t in TIMES:
        score += [{"time": t, "address": "/note", "args": [60, 127]}, {"time": t + 0.15, "address": "/note_off", "args": [60]}]
    path = tmp_path / "score.json"
    path.write_text(json.dumps(score))
    out = tmp_path / "onsets.wav"
    assert main(["render", "--model", str(SHIPPED), "--score", str(path), "--seconds", f"{TIMES[-1] + 0.3:.3f}",
                 "--out", str(out), "--subtype", "FLOAT"]) == 0
    x, sr = read_wav(out)
    assert sr == SR
    errors = onset_errors_ms(x, TIMES)
    assert all(abs(e) <= 0.5 for e in errors), errors


def test_timetagged_play_from_silence_starts_at_its_sample(shipped):
    engine = Engine(shipped)
    t = TIMES[1]
    engine.post_at(int(round(t * SR)), lambda e: e.update(playing=True))
    x = engine.render(int((t + 0.3) * SR))
    assert all(abs(e) <= 0.5 for e in onset_errors_ms(x, [t]))


def test_a_change_within_a_sounding_note_waits_for_the_next_frame_boundary(shipped):
    engine = Engine(shipped)
    send(engine, "/note", 60, 127)
    engine.render(4 * engine.hop)
    at = engine.sample_time + 100  # inside the next hop
    from aedaemon.protocol import OfflineServices, dispatch

    dispatch("/chroma", [7], engine=engine, services=OfflineServices(), at=at)
    engine.render_hop()  # the hop that contains `at`: still C
    assert engine.targets.chroma.index(1.0) == 0
    engine.render_hop()  # applied at the boundary after it
    assert engine.targets.chroma.index(1.0) == 7
