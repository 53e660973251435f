"""Offline rendering to a sound file, and scores: JSON lists of timed OSC messages.

A score is scheduled OSC: each event goes through the same address table as a live
message (address patterns included), with its time turned into an audio sample time, so a
score renders exactly as the same messages sent in timetagged bundles would play.

Sound files are written with soundfile (libsndfile) in the format the file's extension names,
atomically: a failed or interrupted render leaves no file behind.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from .engine import Engine
from .errors import AedaemonError, ParameterError, ScoreError
from .files import atomic_path, read_json
from .protocol import OfflineServices, dispatch, is_pattern, resolve

# extension → libsndfile major format; offered when the installed libsndfile has the format
EXTENSIONS = {".wav": "WAV", ".flac": "FLAC", ".aiff": "AIFF", ".aif": "AIFF", ".ogg": "OGG", ".mp3": "MP3"}
SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")  # what --subtype offers; PCM formats default to PCM_16
DITHER_BITS = {"PCM_16": 16, "PCM_24": 24}  # integer subtypes get TPDF dither; FLOAT and codecs none


@dataclass(frozen=True)
class ScoreEvent:
    time: float
    address: str
    args: tuple


def parse_score(raw: Any, source: str = "score") -> list[ScoreEvent]:
    """Validate the structure of a score.

    A concrete address is checked here; a pattern (`/mute/*`) and the arguments when the event
    is scheduled, by `dispatch` as for a live message (what a pattern matches depends on the
    model's number of units).
    """
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
        if not isinstance(addr, str) or not (is_pattern(addr) or resolve(addr)[0] is not None):
            raise ScoreError(f"{where}: unknown address {json.dumps(addr)}")
        args = ev.get("args", [])
        if not isinstance(args, list):
            args = [args]
        events.append(ScoreEvent(float(t), addr, tuple(args)))
    return events


def load_score(path: Path) -> list[ScoreEvent]:
    return parse_score(read_json(path, ScoreError, "score"), str(path))


def sample_time(seconds: float, sample_rate: int) -> int:
    return int(round(seconds * sample_rate))


def schedule_score(engine: Engine, events: Sequence[ScoreEvent], services: Any = None) -> None:
    services = services or OfflineServices()
    for k, ev in enumerate(events):
        at = sample_time(ev.time, engine.sample_rate)
        try:
            dispatch(ev.address, ev.args, engine=engine, services=services, at=at)
        except ParameterError as exc:
            raise ScoreError(f"score event {k} ({ev.address} at {ev.time:g} s): {exc}") from None


def events_after(events: Sequence[ScoreEvent], seconds: float, sample_rate: int) -> list[ScoreEvent]:
    """The events at or after the end of a render `seconds` long: they are never heard."""
    end = sample_time(seconds, sample_rate)
    return [ev for ev in events if sample_time(ev.time, sample_rate) >= end]


def apply_settings(engine: Engine, messages: Sequence[tuple[str, Sequence]]) -> None:
    """Apply initial settings (from CLI flags) through the address table, at once."""
    services = OfflineServices()
    for address, args in messages:
        try:
            dispatch(address, args, engine=engine, services=services)
        except ParameterError as exc:
            raise AedaemonError(f"{address}: {exc}") from None


# ---- sound files ---------------------------------------------------------------------------


def _soundfile() -> Any:
    """soundfile, imported on first use: a missing libsndfile is one line, not a traceback."""
    try:
        import soundfile
    except (ImportError, OSError) as exc:  # OSError: the module is there, libsndfile is not
        raise AedaemonError(f"cannot load soundfile ({exc}): install libsndfile1, or pip install soundfile") from None
    return soundfile


@dataclass(frozen=True)
class OutputFormat:
    format: str  # libsndfile major format: WAV, FLAC, AIFF, OGG, MP3
    subtype: str  # PCM_16, PCM_24, FLOAT; VORBIS or MPEG_LAYER_III for the lossy codecs


def check_output_path(text: str) -> Path:
    """The output path, refused before rendering when it cannot become a file there."""
    if not text.strip():
        raise AedaemonError("the output file name is empty (e.g. --out out.wav)")
    path = Path(text)
    if path.is_dir():
        raise AedaemonError(f"cannot write {text}: it is a folder (name a file in it, e.g. {path / 'out.wav'})")
    if path.exists() and not path.is_file():
        raise AedaemonError(f"cannot write {text}: it exists and is not a regular file")
    if not path.parent.exists():
        raise AedaemonError(f"cannot write {text}: folder {path.parent} does not exist")
    if not path.parent.is_dir():
        raise AedaemonError(f"cannot write {text}: {path.parent} is not a folder")
    return path


def supported_extensions() -> list[str]:
    available = _soundfile().available_formats()
    return [ext for ext, fmt in EXTENSIONS.items() if fmt in available]


def output_format(path: Path, subtype: Optional[str] = None) -> OutputFormat:
    """The format `path`'s extension names, with `subtype` checked against it.

    No subtype means PCM_16 where the format has it, else the format's codec (OGG: VORBIS).
    """
    sf = _soundfile()
    supported = supported_extensions()
    ext = path.suffix.lower()
    if ext not in supported:
        named = f"'{ext}' files" if ext else "a file without an extension"
        raise AedaemonError(f"cannot write {path}: {named} are not supported (use {', '.join(supported)})")
    fmt = EXTENSIONS[ext]
    allowed = [s for s in SUBTYPES if sf.check_format(fmt, s)]
    if subtype is None:
        return OutputFormat(fmt, "PCM_16" if "PCM_16" in allowed else sf.default_subtype(fmt))
    if subtype not in allowed:
        instead = f"use one of {', '.join(allowed)}" if allowed else f"it is always {sf.default_subtype(fmt)}: leave --subtype out"
        raise AedaemonError(f"--subtype {subtype} is not available for {fmt} ({path.name}): {instead}")
    return OutputFormat(fmt, subtype)


class Quantiser:
    """Float blocks as the file stores them: TPDF-dithered integers for 16/24-bit, else floats.

    Integers are returned as full-scale int32 (libsndfile keeps the top bits), so one path
    serves both widths.
    """

    def __init__(self, subtype: str, seed: int = 0) -> None:
        self.bits = DITHER_BITS.get(subtype)
        self._rng = np.random.default_rng(seed)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        if self.bits is None:
            return np.asarray(block, dtype=np.float32)
        top = 2 ** (self.bits - 1)
        dither = (self._rng.random(len(block)) - self._rng.random(len(block))) / top
        q = np.clip(np.round((block + dither) * (top - 1)), -top, top - 1).astype(np.int32)
        return q << (32 - self.bits)


def write_audio(path: Path, fmt: OutputFormat, sample_rate: int, blocks: Iterator[np.ndarray]) -> int:
    """Write mono float blocks to `path` atomically; returns the frames written."""
    sf = _soundfile()
    quantise = Quantiser(fmt.subtype)
    frames = 0
    try:
        with atomic_path(path) as tmp, sf.SoundFile(str(tmp), "w", sample_rate, 1, fmt.subtype, format=fmt.format) as f:
            for block in blocks:
                f.write(quantise(block))
                frames += len(block)
    except (OSError, sf.SoundFileError) as exc:
        raise AedaemonError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return frames


def _hops(engine: Engine, n_samples: int) -> Iterator[np.ndarray]:
    """Rendered hops, the last one cut so that they add up to n_samples."""
    left = n_samples
    while left > 0:
        block = engine.render_hop()[:left]
        left -= len(block)
        yield block


def render_to_file(
    engine: Engine,
    seconds: float,
    out: Path,
    events: Optional[Sequence[ScoreEvent]] = None,
    fmt: Optional[OutputFormat] = None,
) -> dict:
    """Render `seconds` of audio to `out` (format from its extension unless given).

    Returns figures: seconds, wall time, real-time factor, decodes, late events.
    """
    out = Path(out)
    fmt = fmt or output_format(out)
    if events:
        schedule_score(engine, events)
    started = time.perf_counter()
    written = write_audio(out, fmt, engine.sample_rate, _hops(engine, sample_time(seconds, engine.sample_rate)))
    wall = time.perf_counter() - started
    return {
        "seconds": written / engine.sample_rate,
        "wall": wall,
        "realtime_factor": (written / engine.sample_rate) / wall if wall > 0 else float("inf"),
        "decodes": engine.stats.decodes,
        "late_events": engine.stats.late_events,
    }


render_to_wav = render_to_file  # the earlier name (benchmarks/bench_render.py)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read any sound file libsndfile reads (WAV, FLAC, ...): channel 0 as float32, and the rate."""
    sf = _soundfile()
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, sf.SoundFileError) as exc:
        raise AedaemonError(f"cannot read {path}: {exc}") from None
    return data[:, 0], int(sr)
