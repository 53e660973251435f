"""Offline rendering to WAV, and scores: JSON lists of timed OSC messages.

A score is scheduled OSC: each event goes through the same address table as a live
message, with its time turned into an audio sample time, so a score renders exactly as the
same messages sent in timetagged bundles would play.
"""

from __future__ import annotations

import json
import math
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .engine import Engine
from .files import read_json
from .errors import AedaemonError, ParameterError, ScoreError
from .protocol import OfflineServices, dispatch, resolve


@dataclass(frozen=True)
class ScoreEvent:
    time: float
    address: str
    args: tuple


def parse_score(raw: Any, source: str = "score") -> list[ScoreEvent]:
    """Validate the structure of a score (addresses checked here, arguments when scheduled)."""
    if isinstance(raw, dict) and "events" in raw:
        raw = raw["events"]
    if not isinstance(raw, list):
        raise ScoreError(f"{source}: expected a JSON list of events")
    events = []
    for k, ev in enumerate(raw):
        where = f"{source}: event {k}"
        if not isinstance(ev, dict):
            raise ScoreError(f"{where}: expected an object with time, address, args")
        unknown = set(ev) - {"time", "address", "args"}
        if unknown:
            raise ScoreError(f"{where}: unknown field '{sorted(unknown)[0]}'")
        t = ev.get("time")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise ScoreError(f"{where}: 'time' must be a number of seconds >= 0, got {json.dumps(t)}")
        addr = ev.get("address")
        if not isinstance(addr, str) or resolve(addr)[0] is None:
            raise ScoreError(f"{where}: unknown address {json.dumps(addr)}")
        args = ev.get("args", [])
        if not isinstance(args, list):
            args = [args]
        events.append(ScoreEvent(float(t), addr, tuple(args)))
    return events


def load_score(path: Path) -> list[ScoreEvent]:
    return parse_score(read_json(path, ScoreError, "score"), str(path))


def schedule_score(engine: Engine, events: Sequence[ScoreEvent], services: Any = None) -> None:
    services = services or OfflineServices()
    for k, ev in enumerate(events):
        at = int(round(ev.time * engine.sample_rate))
        try:
            dispatch(ev.address, ev.args, engine=engine, services=services, at=at)
        except ParameterError as exc:
            raise ScoreError(f"score event {k} ({ev.address} at {ev.time:g} s): {exc}") from None


def apply_settings(engine: Engine, messages: Sequence[tuple[str, Sequence]]) -> None:
    """Apply initial settings (from CLI flags) through the address table, at once."""
    services = OfflineServices()
    for address, args in messages:
        try:
            dispatch(address, args, engine=engine, services=services)
        except ParameterError as exc:
            raise AedaemonError(f"{address}: {exc}") from None


class WavWriter:
    """16-bit PCM mono WAV written as it is rendered (TPDF-dithered)."""

    def __init__(self, path: Path, sample_rate: int, seed: int = 0) -> None:
        self.path = Path(path)
        try:
            self._wav = wave.open(str(self.path), "wb")
        except OSError as exc:
            raise AedaemonError(f"cannot write {path}: {exc.strerror or exc}") from None
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._rng = np.random.default_rng(seed)

    def write(self, block: np.ndarray) -> None:
        dither = (self._rng.random(len(block)) - self._rng.random(len(block))) / 32768.0
        pcm = np.clip(np.round((block + dither) * 32767.0), -32768, 32767).astype("<i2")
        self._wav.writeframes(pcm.tobytes())

    def close(self) -> None:
        self._wav.close()


def render_to_wav(engine: Engine, seconds: float, out: Path, events: Optional[Sequence[ScoreEvent]] = None) -> dict:
    """Render `seconds` of audio to `out`; returns figures (seconds, wall time, real-time factor)."""
    if events:
        schedule_score(engine, events)
    n_total = int(round(seconds * engine.sample_rate))
    writer = WavWriter(out, engine.sample_rate)
    written = 0
    started = time.perf_counter()
    try:
        while written < n_total:
            block = engine.render_hop()
            take = min(len(block), n_total - written)
            writer.write(block[:take])
            written += take
    finally:
        writer.close()
    wall = time.perf_counter() - started
    return {
        "seconds": written / engine.sample_rate,
        "wall": wall,
        "realtime_factor": (written / engine.sample_rate) / wall if wall > 0 else float("inf"),
        "decodes": engine.stats.decodes,
        "late_events": engine.stats.late_events,
    }


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV written by WavWriter (for tests and tools)."""
    with wave.open(str(path), "rb") as w:
        sr = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32767.0
        if w.getnchannels() > 1:
            data = data.reshape(-1, w.getnchannels())[:, 0]
    return data, sr
