"""The renderer: targets → glide → decode (cached) → shape → phase → iFFT → overlap-add.

Threading model: control threads (OSC, MIDI) never touch render state. They write *targets*
— an immutable snapshot replaced as a whole under a short control-side lock — and hand
callables to the render thread through a SimpleQueue. The render thread reads the current
snapshot once per hop without locking, so a frame never sees half an update.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn, Optional

import numpy as np

from .dsp.dynamics import LIMIT_KNEE, rms_peak_dbfs, soft_limit, to_dbfs
from .dsp.loudness import KWeighting
from .dsp.phase import PHASE_METHODS, make_phase
from .dsp.pitch import PitchEstimator, midi_to_hz
from .dsp.shaping import SpectralShaper
from .dsp.stft import OverlapAdd, dual_window, hann
from .errors import ParameterError
from .logutil import RateLimitedLog
from .model import CHROMA_SIZE, ModelBundle
from .scheduler import Scheduler

log = logging.getLogger("aedaemon.engine")


def _finite(v: Any) -> float:
    """float(v), refusing NaN and ±inf (a hand-edited state file may hold 1e999)."""
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"{v!r} is not finite")
    return x


def _fail(what: str) -> NoReturn:
    raise ValueError(what)


TRANSPOSE_RANGE = (-24.0, 24.0)
GAIN_RANGE = (0.0, 2.0)
SCALE_RANGE = (0.0, 4.0)
GLIDE_RANGE = (0.0, 60.0)
TILT_RANGE = (-12.0, 12.0)
TUNE_RANGE = (400.0, 480.0)  # A4 reference, Hz
DEFAULT_TUNE = 440.0
# how far the shaping correction (played pitch + /transpose − tracked pitch) may move a decoded
# frame: four octaves either way (peak-locked shifting keeps partials whole; the /transpose
# offset alone stays within ±24); beyond it the note sounds in the nearest octave in reach
CORRECTION_RANGE = (-48.0, 48.0)
ONSET_ATTACK = 0.003  # seconds: raised-cosine attack of a note that starts from silence
DEFAULT_LEVEL = 0.25  # output amplitude of a partial whose normalised magnitude is 1
DEFAULT_FADE = 0.03  # seconds, play/stop
CACHE_FRAMES = 128


def one_hot(pitch_class: int) -> tuple[float, ...]:
    v = [0.0] * CHROMA_SIZE
    v[pitch_class % CHROMA_SIZE] = 1.0
    return tuple(v)


@dataclass(frozen=True)
class Targets:
    """What the performer asked for. Immutable: writers replace it, readers never lock."""

    latent: tuple[float, ...]
    scale: tuple[float, ...]
    mute: tuple[bool, ...]
    chroma: tuple[float, ...] = one_hot(0)
    transpose: float = 0.0
    freq_shift: int = 0
    gain: float = 1.0
    glide: float = 0.0
    tilt: float = 0.0
    playing: bool = False
    velocity: float = 1.0
    note: Optional[int] = None
    # played pitch (MIDI note number, fractional): /note sets it; None = the chroma's pitch
    # class in the octave of the model's reference note (plain /play)
    pitch: Optional[float] = None
    tune: float = DEFAULT_TUNE
    # one-shot glide time for the change this snapshot carries (preset morphs); None = glide
    transition: Optional[float] = None

    @classmethod
    def initial(cls, bundle: ModelBundle) -> "Targets":
        n = bundle.meta.latent_size
        return cls(
            latent=tuple(float(v) for v in bundle.meta.default_latent),
            scale=(1.0,) * n,
            mute=(False,) * n,
        )

    def effective_latent(self) -> np.ndarray:
        eff = np.asarray(self.latent, dtype=np.float64) * np.asarray(self.scale)
        eff[np.asarray(self.mute, dtype=bool)] = 0.0
        return eff

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("transition")
        for k in ("latent", "scale", "mute", "chroma"):
            d[k] = list(d[k])
        return d


_TARGET_FIELDS = frozenset(f.name for f in dataclasses.fields(Targets))


def _replace(t: Targets, changes: dict) -> Targets:
    """dataclasses.replace(t, **changes), without the generic machinery (the render loop's
    control side calls it every hop when everything moves): Targets has no __post_init__ and
    no init=False fields, so a copy of its fields with the changes is the same snapshot."""
    if not changes.keys() <= _TARGET_FIELDS:
        return dataclasses.replace(t, **changes)  # raises the usual TypeError
    new = object.__new__(Targets)
    d = new.__dict__
    d.update(t.__dict__)
    d.update(changes)
    return new


class Glide:
    """Linear approach to a target over a number of frames (0 frames = jump next frame)."""

    def __init__(self, value) -> None:
        self.value = np.array(value, dtype=np.float64)
        self.target = self.value.copy()
        self.remaining = 0

    def set(self, target, frames: int) -> None:
        self.target = np.array(target, dtype=np.float64)
        self.remaining = max(1, int(frames))

    def jump(self, value) -> None:
        self.value = np.array(value, dtype=np.float64)
        self.target = self.value.copy()
        self.remaining = 0

    def step(self) -> bool:
        """Advance one frame; True when the value moved."""
        if self.remaining <= 0:
            return False
        if self.remaining == 1:
            # the last step lands on the target (what the general step ends with, below)
            self.value = self.target.copy()
            self.remaining = 0
            return True
        self.value = self.value + (self.target - self.value) / self.remaining
        self.remaining -= 1
        if self.remaining == 0:
            self.value = self.target.copy()
        return True


@dataclass
class EngineStats:
    frames: int = 0
    decodes: int = 0
    cache_hits: int = 0
    late_events: int = 0
    event_errors: int = 0  # posted/scheduled events that raised (logged; the hop went on)
    repaired_targets: int = 0  # snapshots whose sizes did not fit the model (repaired)
    skipped_hops: int = 0  # hops the output replaced with silence after a render error
    economy_skips: int = 0  # changed frames that reused the previous decode (economy mode)
    economy_spells: int = 0  # times the renderer fell behind and went into economy mode
    nonfinite_frames: int = 0
    render_seconds: float = 0.0
    cpu_load: float = 0.0  # EMA of render time / hop duration
    meter_rms_db: float = -200.0
    meter_peak_db: float = -200.0


@dataclass
class _Seen:
    """The target snapshot the renderer last acted on, to detect what changed."""

    targets: Optional[Targets] = None
    last_inputs: bytes = b""
    shape_key: tuple = ()
    frame_version: int = -1
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Timed:
    """A scheduled event that knows its sample time (for onsets inside a hop)."""

    when: int
    fn: Callable[["Engine"], None]

    def __call__(self, engine: "Engine") -> None:
        self.fn(engine)


def fold_octaves(semitones: float, lo: float, hi: float) -> float:
    """Move a shift into lo..hi by whole octaves (the pitch class stays right)."""
    if semitones > hi:
        semitones -= 12.0 * math.ceil((semitones - hi) / 12.0)
    elif semitones < lo:
        semitones += 12.0 * math.ceil((lo - semitones) / 12.0)
    return semitones


def _reconstructs(n_fft: int, hop: int) -> bool:
    """True when overlap-add at this hop can rebuild the signal: the dual window is finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return bool(np.isfinite(dual_window(hann(n_fft), hop)).all())


def check_hop(n_fft: int, hop: int, name: str = "hop") -> None:
    """Refuse a hop that is not a divisor of n_fft, or too large for the frames to overlap
    (with the Hann window: more than n_fft/2, where the dual window divides by zero)."""
    if hop <= 0 or n_fft % hop:
        raise ParameterError(f"{name} {hop} must be a positive divisor of n_fft {n_fft}")
    if not _reconstructs(n_fft, hop):
        largest = next(d for d in range(hop - 1, 0, -1) if n_fft % d == 0 and _reconstructs(n_fft, d))
        raise ParameterError(f"{name} {hop} is too large for n_fft {n_fft}: overlap-add cannot rebuild the sound (use at most {largest})")


# Economy (live only, Engine.allow_economy): when rendering takes more than ECONOMY_ON of real
# time, a changed frame reuses the previous decode on every other hop (a change lands one hop
# later; glides still move every hop), until the load is back under ECONOMY_OFF.
ECONOMY_ON = 0.8
ECONOMY_OFF = 0.35
LIVE_HOP = 256  # the daemon's default synthesis hop: 5.8 ms at 44.1 kHz, low enough to play live


def live_hop(n_fft: int, model_hop: int) -> int:
    """The daemon's default hop for a model: LIVE_HOP, or the model's own hop when that is
    smaller or LIVE_HOP cannot rebuild its frames (a frame size it does not divide)."""
    if model_hop <= LIVE_HOP or n_fft % LIVE_HOP or not _reconstructs(n_fft, LIVE_HOP):
        return model_hop
    return LIVE_HOP


class Engine:
    def __init__(
        self,
        bundle: ModelBundle,
        *,
        hop: Optional[int] = None,
        phase: str = "rtpghi",
        level: float = DEFAULT_LEVEL,
        fade: float = DEFAULT_FADE,
        seed: int = 0,
    ) -> None:
        if phase not in PHASE_METHODS:
            raise ValueError(f"unknown phase method '{phase}' (choose from {', '.join(PHASE_METHODS)})")
        meta = bundle.meta
        self.bundle = bundle
        self.sample_rate = meta.sample_rate
        self.n_fft = meta.n_fft
        self.hop = int(meta.hop if hop is None else hop)
        check_hop(self.n_fft, self.hop)
        self.phase_method = phase
        self.level = level
        self.fade = fade
        self.seed = seed
        self.sample_time = 0
        self.stats = EngineStats()
        self.control_lock = threading.Lock()
        self.targets = Targets.initial(bundle)
        self._queue: "queue.SimpleQueue[tuple[Optional[int], Callable[[Engine], None]]]" = queue.SimpleQueue()
        self._scheduler = Scheduler()
        self._restore_log = RateLimitedLog(log)  # presets of another model loaded in a loop: a line per 10 s
        self.allow_economy = False  # set by a real-time output; offline renders never degrade
        self.economy = False
        self._last_decode_frame = -2
        self._build_dsp()
        self._reset_render_state()

    # ---- control side (any thread) ------------------------------------------------------

    def update(self, **changes) -> Targets:
        """Replace target fields atomically; returns the new snapshot. Vectors must fit the
        model playing now (a change queued before a model swap may not: ParameterError)."""
        changes.setdefault("transition", None)
        self._check_sizes(changes)
        with self.control_lock:
            self.targets = _replace(self.targets, changes)
            return self.targets

    def modify(self, fn: Callable[[Targets], dict]) -> Targets:
        """Read-modify-write: fn(current) returns the fields to change."""
        with self.control_lock:
            changes = fn(self.targets)
            changes.setdefault("transition", None)
            self._check_sizes(changes)
            self.targets = _replace(self.targets, changes)
            return self.targets

    def _check_sizes(self, changes: dict) -> None:
        n = self.bundle.meta.latent_size
        for key in ("latent", "scale", "mute"):
            v = changes.get(key)
            if v is not None and len(v) != n:
                raise ParameterError(f"{key} has {len(v)} values; model '{self.bundle.meta.name}' has {n} units")
        v = changes.get("chroma")
        if v is not None and len(v) != CHROMA_SIZE:
            raise ParameterError(f"chroma has {len(v)} values, not {CHROMA_SIZE}")

    def post(self, fn: Callable[["Engine"], None]) -> None:
        """Run fn(engine) on the render thread at the next frame boundary."""
        self._queue.put((None, fn))

    def post_at(self, sample_time: int, fn: Callable[["Engine"], None]) -> None:
        """Run fn(engine) at the first frame boundary at or after sample_time (late: at once).

        While the output is silent, events due within the next hop run at its start instead
        (nothing sounds, so nothing is early); the first of them that starts playing makes the
        sound begin at its exact sample (see `_start_within_hop`).
        """
        when = int(sample_time)
        self._queue.put((when, _Timed(when, fn)))

    def clear_scheduled(self) -> None:
        """Forget every event scheduled so far (at the next frame boundary; what is posted
        after this call is kept), as a live /panic does."""
        self.post(lambda e: e._scheduler.clear())

    def played_pitch(self, t: Targets) -> float:
        """The pitch (MIDI, fractional) a snapshot asks for before /transpose: its note's, else
        the chroma's pitch class in the octave of the model's reference note."""
        return float(t.pitch) if t.pitch is not None else self.reference_pitch(t.chroma)

    def reference_pitch(self, chroma) -> float:
        """The chroma's (strongest) pitch class in the octave of the model's reference note;
        the reference note itself for an unconditioned model."""
        ref = self.bundle.meta.reference_note
        if not self.bundle.meta.conditioned:
            return float(ref)
        return float(12 * (ref // 12) + int(np.argmax(chroma)))

    def note_range(self) -> tuple[int, int]:
        """The notes /note accepts: the shaping correction's reach around the registers the
        model decodes (an octave below to two above the reference note's octave: C3…B5 for 60)."""
        base = 12 * (self.bundle.meta.reference_note // 12)
        lo, hi = CORRECTION_RANGE
        return max(0, base - 12 + int(lo)), min(127, base + 23 + int(hi))

    @property
    def meter(self) -> tuple[float, float]:
        return self.stats.meter_rms_db, self.stats.meter_peak_db

    @property
    def model_name(self) -> str:
        return self.bundle.meta.name

    def snapshot(self) -> dict:
        d = self.targets.to_dict()
        d["model"] = self.model_name
        return d

    def restore(self, state: dict, morph: Optional[float] = None) -> Targets:
        """Apply a snapshot (as from `snapshot`), ignoring fields that do not fit this model.

        `morph` glides there over that many seconds instead of the current glide time.
        """
        n = self.bundle.meta.latent_size
        lo, hi = self.bundle.meta.control_range
        changes: dict = {}
        skipped: list[str] = []

        def take(key: str, convert: Callable[[Any], Any]) -> None:
            # one field at a time: a bad value (wrong type, NaN, ±inf) skips that field only
            try:
                changes[key] = convert(state[key])
            except (TypeError, ValueError, OverflowError, KeyError):
                skipped.append(key)

        def vector(size: int, vlo: float, vhi: float):
            def convert(values):
                if len(values) != size:
                    raise ValueError(key)
                return tuple(min(vhi, max(vlo, _finite(v))) for v in values)
            return convert

        for key, (size, vlo, vhi) in (("latent", (n, lo, hi)), ("scale", (n, 0.0, SCALE_RANGE[1])),
                                      ("chroma", (CHROMA_SIZE, 0.0, math.inf))):
            if key in state:
                take(key, vector(size, vlo, vhi))
        if "mute" in state:
            take("mute", lambda v: tuple(bool(x) for x in v) if len(v) == n else _fail("mute"))
        for key, (rlo, rhi) in (
            ("transpose", TRANSPOSE_RANGE),
            ("tune", TUNE_RANGE),
            ("gain", GAIN_RANGE),
            ("glide", GLIDE_RANGE),
            ("tilt", TILT_RANGE),
        ):
            if key in state:
                take(key, lambda v, rlo=rlo, rhi=rhi: min(rhi, max(rlo, _finite(v))))
        if "freq_shift" in state:
            limit = self.n_fft // 2
            take("freq_shift", lambda v: int(min(limit, max(-limit, _finite(v)))))
        if "playing" in state:
            take("playing", lambda v: bool(v))
        if skipped:
            self._restore_log(logging.WARNING, "state: ignored %s (wrong size, not a number, or not finite)",
                         ", ".join(skipped))
        changes["transition"] = morph
        return self.update(**changes)

    def panic(self, at: Optional[int] = None) -> None:
        """A hard cut to silence: no fade, the overlap-add tail dropped, the note released.

        Without `at` (a live panic, the emergency button): the targets stop at once, and at the
        next frame boundary the output is cut and every scheduled event is forgotten. With `at`
        (a timetagged or scored panic): the same cut at the first frame boundary at or after
        that sample, keeping the events scheduled after it, so that a sequence renders the same
        whenever its bundles arrived (a panic that dropped what is scheduled later would drop
        more or less of it depending on how far ahead the sender sends).
        """

        def _cut(e: "Engine") -> None:
            e._env = 0.0
            e._amp = 0.0
            e._ola.reset()

        if at is None:
            self.update(playing=False, note=None)

            def _silence(e: "Engine") -> None:
                e._scheduler.clear()
                _cut(e)

            self.post(_silence)
            return

        def _cut_at(e: "Engine") -> None:
            e.update(playing=False, note=None)
            _cut(e)

        self.post_at(at, _cut_at)

    def swap_model(self, bundle: ModelBundle) -> None:
        """Switch decoders at a frame boundary (call via post, or before rendering starts).

        With the same frame size the switch is just another frame change: overlap-add and the
        phase integration carry across it, so it does not click. A different frame size needs
        new buffers, so the output fades out, swaps, and fades back in.
        """
        if bundle.meta.sample_rate != self.sample_rate:
            raise ValueError(
                f"model '{bundle.meta.name}' runs at {bundle.meta.sample_rate} Hz, the stream at {self.sample_rate} Hz"
            )
        # the stream's hop is fixed for its life (the output and the clock count in it)
        check_hop(bundle.meta.n_fft, self.hop, name=f"model '{bundle.meta.name}' (n_fft {bundle.meta.n_fft}): the stream's hop")
        self._pending_model = bundle

    @property
    def model_swap_pending(self) -> bool:
        """True from swap_model until the new decoder renders (after a fade if n_fft differs)."""
        return self._pending_model is not None

    # ---- render side (one thread) -------------------------------------------------------

    def _build_dsp(self) -> None:
        self._ola = OverlapAdd(self.n_fft, self.hop)
        self._phase = make_phase(self.phase_method, self.n_fft, self.hop, self.seed)
        self._shaper = SpectralShaper(self.n_fft, self.sample_rate)
        self._pitch_estimator = PitchEstimator(self.n_fft, self.sample_rate)
        self._loudness = KWeighting(self.n_fft, self.sample_rate)
        attack = max(1, int(round(ONSET_ATTACK * self.sample_rate)))
        k = np.arange(1, attack + 1)
        # index 0: before the onset; 1..attack: the raised cosine; attack + 1: open
        self._attack = np.concatenate([[0.0], 0.5 - 0.5 * np.cos(np.pi * k / (attack + 1)), [1.0]]).astype(np.float32)
        self._hop_index = np.arange(self.hop, dtype=np.intp)
        self._gate_index = np.zeros(self.hop, dtype=np.intp)
        self._gate = np.ones(self.hop, dtype=np.float32)
        self._silence_mag = np.zeros(self.n_fft // 2 + 1)
        self._shaped = np.zeros(self.n_fft // 2 + 1)  # the shaped frame (its own buffer)
        self._out = np.zeros(self.hop, dtype=np.float32)
        self._ramp = np.linspace(0.0, 1.0, self.hop, endpoint=False) + 1.0 / self.hop
        self._level_scale = self.level * self._ola.window.sum() / 2.0

    def _reset_render_state(self) -> None:
        t = self.targets
        self._seen = _Seen()
        self._latent = Glide(t.effective_latent())
        self._chroma = Glide(t.chroma)
        self._transpose = Glide(t.transpose)
        self._gain = Glide(t.gain)
        self._pitch = Glide(self.played_pitch(t))
        # decoded frame and its tracked fundamental (Hz, None: no fundamental found)
        # decoded frame, its fundamental (Hz or None) and (f0, d) of the pitch track (or None)
        self._cache: "OrderedDict[bytes, tuple[np.ndarray, Optional[float], Optional[tuple[float, float]]]]" = OrderedDict()
        self._mag = self._silence_mag
        self._raw = self._silence_mag
        self._raw_f0: Optional[float] = None
        self._raw_track: Optional[tuple[float, float]] = None  # (f0, d) of the raw frame, for the shaper
        self._tracked_hz: Optional[float] = None  # last good estimate: the fallback
        self._loud = 0.0
        self._onset_offset = 0  # samples into the hop where a note starting from silence begins
        self._attack_from: Optional[int] = None  # sample time of the attack under way
        self._frame_version = 0
        self._env = 1.0 if t.playing else 0.0
        self._amp = self._env * t.gain * t.velocity
        self._pending_model: Optional[ModelBundle] = None
        self._inputs = np.zeros(self.bundle.meta.latent_size + CHROMA_SIZE, dtype=np.float32)

    def _drain_queue(self) -> None:
        boundary = self.sample_time
        while True:
            try:
                when, fn = self._queue.get_nowait()
            except queue.Empty:
                break
            if when is None:
                self._run_event(fn)
            elif when < boundary:
                self.stats.late_events += 1
                self._run_event(fn)
            else:
                self._scheduler.add(when, fn)
        for fn in self._scheduler.pop_due(boundary):
            self._run_event(fn)
        if self._silent() and not self.targets.playing:
            self._start_within_hop(boundary)

    def _run_event(self, fn: Callable[["Engine"], None]) -> None:
        """An event that raises is dropped (logged, counted): it must not cost the hop — e.g. a
        timetagged /latent of 8 values that lands after a swap to a 4-unit model."""
        try:
            fn(self)
        except Exception as exc:  # noqa: BLE001
            self.stats.event_errors += 1
            if self.stats.event_errors in (1, 10, 100) or self.stats.event_errors % 1000 == 0:
                log.warning("dropped a scheduled change (%d so far): %s", self.stats.event_errors, exc)

    def skip_hop(self) -> None:
        """After a hop failed: count it on the clock as played (silence), so timetags stay on
        time, and start the synthesis over from silence."""
        self.sample_time += self.hop
        self.stats.skipped_hops += 1
        self._ola.reset()
        self._phase.reset()
        self._seen = _Seen()
        self._env = 0.0
        self._amp = 0.0

    def _silent(self) -> bool:
        return self._amp == 0.0 and self._env == 0.0

    def _start_within_hop(self, boundary: int) -> None:
        """While silent, run the events due within this hop now, in time order, up to the first
        that starts playing: its offset into the hop is where the sound begins. The later ones
        go back to wait for their frame boundary (the note is sounding by then)."""
        due = self._scheduler.pop_due(boundary + self.hop - 1)
        for k, event in enumerate(due):
            event(self)
            if self.targets.playing:
                self._onset_offset = max(0, getattr(event, "when", boundary) - boundary)
                for later in due[k + 1 :]:
                    self._scheduler.add(getattr(later, "when", boundary), later)
                return

    def _glide_frames(self, seconds: float) -> int:
        return max(1, int(round(seconds * self.sample_rate / self.hop)))

    def _follow_targets(self, t: Targets) -> None:
        seen = self._seen.targets
        if seen is t:
            return
        n = self.bundle.meta.latent_size
        if len(t.latent) != n or len(t.scale) != n or len(t.mute) != n:
            t = self._repair_targets(t)
        frames = self._glide_frames(t.glide if t.transition is None else t.transition)
        if seen is None or (t.latent, t.scale, t.mute) != (seen.latent, seen.scale, seen.mute):
            self._latent.set(t.effective_latent(), frames)
        if seen is None or t.chroma != seen.chroma:
            self._chroma.set(t.chroma, frames)
        if seen is None or t.transpose != seen.transpose:
            self._transpose.set(t.transpose, frames)
        if seen is None or t.gain != seen.gain:
            self._gain.set(t.gain, frames)
        pitch = self.played_pitch(t)
        cached = self._seen.extra.get("pitch")  # (snapshot, bundle, its played pitch)
        if cached is not None and cached[0] is seen and cached[1] is self.bundle:
            seen_pitch = cached[2]
        else:
            seen_pitch = None if seen is None else self.played_pitch(seen)
        if seen is None or pitch != seen_pitch:
            self._pitch.set(pitch, frames)
        self._seen.targets = t
        self._seen.extra["pitch"] = (t, self.bundle, pitch)

    def _repair_targets(self, t: Targets) -> Targets:
        """Vectors that do not fit the model (cannot come through update; a last line of
        defence): the model's defaults, said once in the log."""
        fresh = Targets.initial(self.bundle)
        fix = {k: getattr(fresh, k) for k in ("latent", "scale", "mute") if len(getattr(t, k)) != len(getattr(fresh, k))}
        self.stats.repaired_targets += 1
        log.warning("targets did not fit model '%s' (%s): reset to its defaults", self.bundle.meta.name, ", ".join(fix))
        with self.control_lock:
            self.targets = _replace(self.targets, fix)
            return self.targets

    def _decode(self) -> np.ndarray:
        """Magnitude for the current (glided) inputs; an LRU cache means equal inputs decode once."""
        n = self.bundle.meta.latent_size
        self._inputs[:n] = self._latent.value
        self._inputs[n:] = self._chroma.value
        key = self._inputs.tobytes()
        if key == self._seen.last_inputs:
            return self._raw
        if self.economy and self._seen.last_inputs and self.stats.frames - self._last_decode_frame < 2:
            self.stats.economy_skips += 1
            return self._raw  # economy: the previous decode once more; the change lands next hop
        self._last_decode_frame = self.stats.frames
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
        else:
            frame = self.bundle.decode(self._inputs[:n], self._inputs[n:]).astype(np.float64)
            self.stats.decodes += 1
            track = self._pitch_estimator.estimate_periodicity(frame, self._pitch_class())
            entry = (frame, None if track is None else track[0], track)
            self._cache[key] = entry
            if len(self._cache) > CACHE_FRAMES:
                self._cache.popitem(last=False)
        self._seen.last_inputs = key
        self._frame_version += 1
        self._raw, self._raw_f0, self._raw_track = entry
        if self._raw_f0 is not None:
            self._tracked_hz = self._raw_f0
        return self._raw

    def _pitch_class(self) -> Optional[int]:
        """The decoded chroma's class (None for an unconditioned model: a full estimate)."""
        if not self.bundle.meta.conditioned:
            return None
        return int(np.argmax(self._chroma.value))

    def _frame_hz(self) -> float:
        """Fundamental of the current raw frame. Fallback when none was found (silence,
        noise): the last good estimate, else the played pitch class in the reference octave."""
        if self._raw_f0 is not None:
            return self._raw_f0
        if self._tracked_hz is not None:
            return self._tracked_hz
        return midi_to_hz(self.reference_pitch(self._chroma.value))

    def _correction(self, t: Targets) -> float:
        """Shaping transpose that makes the raw frame sound the played pitch + /transpose
        (both against the A4 of /tune), folded by octaves into CORRECTION_RANGE."""
        target_hz = midi_to_hz(float(self._pitch.value) + float(self._transpose.value), t.tune)
        shift = 12.0 * math.log2(target_hz / self._frame_hz())
        return fold_octaves(shift, *CORRECTION_RANGE)

    def _apply_pending_model(self) -> None:
        bundle = self._pending_model
        if bundle is None:
            return
        same_frame = bundle.meta.n_fft == self.n_fft
        if not same_frame and self._env > 0.0:
            return  # wait for the fade-out started below
        self._pending_model = None
        old_n = self.bundle.meta.latent_size
        self.bundle = bundle
        self._cache.clear()
        self._seen.last_inputs = b""
        n = bundle.meta.latent_size
        self._inputs = np.zeros(n + CHROMA_SIZE, dtype=np.float32)
        if n != old_n:
            fresh = Targets.initial(bundle)
            self.update(latent=fresh.latent, scale=fresh.scale, mute=fresh.mute)
            self._latent.jump(self.targets.effective_latent())
        if not same_frame:
            self.n_fft = bundle.meta.n_fft  # swap_model checked that the hop serves it
            self._build_dsp()

    def render_hop(self) -> np.ndarray:
        """Render the next `hop` samples (float32, within ±1, always finite)."""
        started = time.perf_counter()
        self._drain_queue()
        if self._pending_model is not None:
            self._apply_pending_model()  # may replace the targets (another number of units)
        t = self.targets
        self._follow_targets(t)
        self._latent.step()
        self._chroma.step()
        self._transpose.step()
        self._gain.step()
        self._pitch.step()

        starting = self._silent() and t.playing and self._pending_model is None
        amp_start, amp_end = self._envelope(t, starting)
        out = self._out

        if amp_start == 0.0 and amp_end == 0.0:
            out[:] = 0.0  # silent: no decode, no synthesis
            self._ola.reset()
            meter = rms_peak_dbfs(out)
        else:
            changed = self._shape(self._decode(), t)
            if starting:
                self._prefill(changed)
                changed = False
            hop_out = self._push(changed)
            # per-sample linear ramp from the previous amplitude to the new one: no zipper steps
            np.multiply(self._ramp, amp_end - amp_start, out=out)
            out += amp_start
            out *= hop_out
            if self._attack_from is not None:
                self._apply_attack(out)
            # one max and one min serve the finite check (they propagate NaN and inf), the
            # limiter's test (nothing above the knee: it leaves the hop as it is) and the meter
            hi, lo = float(out.max()), float(out.min())
            if not (math.isfinite(hi) and math.isfinite(lo)):
                self.stats.nonfinite_frames += 1
                out[:] = 0.0
                self._ola.reset()
                self._phase.reset()
                hi = lo = 0.0
            peak = max(hi, -lo)
            if peak > LIMIT_KNEE:
                soft_limit(out)
                meter = rms_peak_dbfs(out)
            else:
                # rms_peak_dbfs(out), its peak already known
                meter = (to_dbfs(math.sqrt(float(np.dot(out, out)) / len(out))), to_dbfs(peak))
        self._amp = amp_end
        self.sample_time += self.hop
        st = self.stats
        st.frames += 1
        st.meter_rms_db, st.meter_peak_db = meter
        spent = time.perf_counter() - started
        st.render_seconds += spent
        st.cpu_load = 0.95 * st.cpu_load + 0.05 * (spent * self.sample_rate / self.hop)
        if self.allow_economy:
            self._update_economy(st)
        return out

    def _update_economy(self, st: EngineStats) -> None:
        if not self.economy and st.cpu_load > ECONOMY_ON:
            self.economy = True
            st.economy_spells += 1
            if st.economy_spells <= 3 or st.economy_spells % 100 == 0:
                log.warning("rendering takes %.0f %% of real time: economy mode (a changed frame decodes every "
                            "other hop) until it is under %.0f %% (%d times so far)", 100 * st.cpu_load,
                            100 * ECONOMY_OFF, st.economy_spells)
        elif self.economy and st.cpu_load < ECONOMY_OFF:
            self.economy = False
            if st.economy_spells <= 3:
                log.info("render load %.0f %%: economy mode off", 100 * st.cpu_load)

    def _envelope(self, t: Targets, starting: bool) -> tuple[float, float]:
        """Amplitude at the start and end of this hop. A stop fades over `fade`; a note that
        starts from silence opens at once, its attack shaped per sample by `_apply_attack`."""
        env_target = 1.0 if (t.playing and self._pending_model is None) else 0.0
        step = self.hop / max(1.0, self.fade * self.sample_rate)
        if starting:
            env = 1.0
            self._attack_from = self.sample_time + self._onset_offset
        elif env_target > self._env:
            env = min(env_target, self._env + step)
        else:
            env = max(env_target, self._env - step)
        self._onset_offset = 0
        self._env = env
        amp_end = env * float(self._gain.value) * t.velocity
        amp_start = amp_end if starting else self._amp
        return amp_start, amp_end

    def _shape(self, mag: np.ndarray, t: Targets) -> bool:
        """Shape the raw frame to the played pitch and measure its loudness, when anything the
        shaped frame depends on changed; True when it did."""
        shape_key = (self._correction(t), int(t.freq_shift), float(t.tilt), self._frame_version)
        if shape_key == self._seen.shape_key:
            return False
        shaped = self._shaper.apply(mag, transpose=shape_key[0], freq_shift=shape_key[1], tilt=shape_key[2],
                                    tracked=self._raw_track)
        np.copyto(self._shaped, shaped)  # the shaper's buffer is reused: keep ours, without allocating
        self._mag = self._shaped
        self._loud = self._loudness.gain(self._mag)  # after tilt: tilt changes timbre, not loudness
        self._seen.shape_key = shape_key
        return True

    def _push(self, changed: bool) -> np.ndarray:
        """Phase, level and overlap-add the shaped frame: the next hop of raw output."""
        spectrum = self._phase.next(self._mag, changed)
        spectrum *= self._level_scale * self._loud
        return self._ola.push(spectrum)

    def _prefill(self, changed: bool) -> None:
        """From silence: push the first frame as often as it overlaps itself, unheard, so that
        the first hop heard is already the steady overlap-add (no ramp-in over a frame)."""
        self._ola.reset()
        for _ in range(self.n_fft // self.hop - 1):
            self._push(changed)
            changed = False

    def _apply_attack(self, out: np.ndarray) -> None:
        """Gate the hop with the onset's raised cosine: 0 before the onset sample, then the
        ONSET_ATTACK ramp, then open (the ramp may run on into the next hop)."""
        pos = self.sample_time - self._attack_from
        attack = len(self._attack) - 2
        np.add(self._hop_index, pos + 1, out=self._gate_index)
        np.clip(self._gate_index, 0, attack + 1, out=self._gate_index)
        np.take(self._attack, self._gate_index, out=self._gate)
        out *= self._gate
        if pos + self.hop >= attack:
            self._attack_from = None

    def warm_up(self) -> None:
        """Render a note start and a changed frame into nothing, then return to the state before.
        The first such hops are slow (the decoder's first run, FFT plans, caches): several ms,
        which a real-time stream rendering just in time cannot afford on its first note."""
        targets, sample_time, stats = self.targets, self.sample_time, self.stats
        lo, hi = self.bundle.meta.control_range
        try:
            self.targets = _replace(targets, {"playing": True, "transition": None})
            for k in range(3):
                if k == 2:
                    self.targets = _replace(self.targets, {"latent": tuple(0.5 * (lo + hi) for _ in targets.latent)})
                self._follow_targets(self.targets)
                self._latent.step()
                self._chroma.step()
                self._transpose.step()
                self._pitch.step()
                changed = self._shape(self._decode(), self.targets)
                if k == 0:
                    self._prefill(changed)
                self._push(changed)
        finally:
            self.targets, self.sample_time, self.stats = targets, sample_time, stats
            self._ola.reset()
            self._phase.reset()
            self._reset_render_state()

    def render(self, n_samples: int) -> np.ndarray:
        """Render at least n_samples (whole hops) into a new array; for offline use."""
        hops = -(-n_samples // self.hop)
        buf = np.empty(hops * self.hop, dtype=np.float32)
        for i in range(hops):
            buf[i * self.hop : (i + 1) * self.hop] = self.render_hop()
        return buf[:n_samples]
