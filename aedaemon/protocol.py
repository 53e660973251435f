"""The address space (docs/protocol.md) as one table: arguments, coercion, effect, echo, docs.

Every way of driving the synthesizer goes through `dispatch`: the OSC server, the MIDI bridge,
scores (`aedaemon render --score`) and the Python client's tests. `ADDRESSES` is also what
`/get`, the docs generator and the MIDI mapping validator read, so an address exists in
exactly one place.

Validation happens on the caller's thread and refuses bad input with ParameterError (the OSC
layer turns it into ``/fail <address> <reason>``) before anything changes. Effects on sound
are target writes (see engine.Targets) made at once, or, for a timetagged message, a callable
scheduled on the audio clock; either way they are echoed to subscribers as the same message.
"""

from __future__ import annotations

import logging
import weakref
import math
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Sequence

from . import __version__
from .engine import GAIN_RANGE, GLIDE_RANGE, SCALE_RANGE, TILT_RANGE, TRANSPOSE_RANGE, TUNE_RANGE, Engine, Targets, one_hot
from .errors import AedaemonError, ParameterError
from .logutil import RateLimitedLog
from .model import CHROMA_SIZE

log = logging.getLogger("aedaemon.protocol")
# runs on the render thread, once per misfit: a flood of them (a swap to a model with fewer
# units under automation) must not become a flood of log lines written from the audio path;
# one limiter per engine (a daemon has one; tests make many)
_late_logs: "weakref.WeakKeyDictionary[Engine, RateLimitedLog]" = weakref.WeakKeyDictionary()

# presets, recordings, models: a name, never a path. Always used with fullmatch: `match` with
# `$` accepts a trailing newline ("ok\n" would create "ok\n.json").
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_name(v: Any) -> bool:
    return isinstance(v, str) and NAME_RE.fullmatch(v) is not None


# a Services method that answers later itself (the daemon's session thread sends the /done or
# /fail once the file is written or the model loaded) returns this: no reply now
DEFERRED = object()

# the most that one reply datagram carries: a /preset/list or /model/list longer than
# REPLY_LIMIT - REPLY_SLACK is split into parts of at most REPLY_LIMIT bytes (every part but the
# last longer than REPLY_LIMIT - REPLY_SLACK: a client tells a part from a whole list by its size)
REPLY_LIMIT = 8192
REPLY_SLACK = 128
PITCH_NAMES = {
    "C": 0, "B#": 0, "C#": 1, "DB": 1, "D": 2, "D#": 3, "EB": 3, "E": 4, "FB": 4, "E#": 5, "F": 5,
    "F#": 6, "GB": 6, "G": 7, "G#": 8, "AB": 8, "A": 9, "A#": 10, "BB": 10, "B": 11, "CB": 11,
}  # fmt: skip
PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class Reply:
    address: str
    args: tuple = ()


class Services(Protocol):
    """What a host (the daemon; a stub offline) provides for session and transport addresses.

    Methods raise ParameterError (or any AedaemonError) to refuse; the message becomes the
    /fail reason. `broadcast` sends state echoes to subscribers and must be thread-safe: it
    is called from the render thread for timetagged changes.

    Timetagged session messages (/preset/save, /preset/load, /model/load, /record/start,
    /record/stop) call their method with two more keywords: `at`, the audio sample time, and
    `fail(reason)`, to call when the change cannot be made once its time has come. The method
    checks and prepares at once (raising refuses the message then: /fail on arrival) and
    applies at `at` on the audio clock (see `at_time`). Untimed calls pass neither keyword, so
    a host that never sees timetags (the MIDI bridge's tests) needs neither.
    """

    def broadcast(self, replies: Sequence[Reply]) -> None: ...
    def preset_save(self, name: str, **timed: Any) -> None: ...
    def preset_load(self, name: str, morph: float, **timed: Any) -> None: ...
    def preset_list(self) -> list[str]: ...
    def preset_delete(self, name: str) -> None: ...
    def model_list(self) -> list[str]: ...
    def model_load(self, name: str, **timed: Any) -> None: ...
    def record_start(self, name: Optional[str], **timed: Any) -> str: ...
    def record_stop(self, **timed: Any) -> str: ...
    def status(self) -> list: ...
    def notify(self, source: Any, on: bool, port: Optional[int] = None) -> None: ...
    def sync(self, source: Any, token: int) -> None: ...
    def midi_learn(self, address: str) -> None: ...
    def quit(self) -> None: ...


class OfflineServices:
    """Services for offline rendering: sound addresses work, session addresses are refused.

    A render has no state folder (presets live in the daemon's), no other models to swap to
    mid-file, and is itself the recording, so a score is refused before anything renders, with
    the reason, rather than rendering something else than it asks for.
    """

    REASONS = {
        "preset_save": "not available in offline rendering: presets live in the daemon's state folder",
        "preset_load": "not available in offline rendering: presets live in the daemon's state folder "
                       "(write the preset's values into the score instead)",
        "preset_list": "not available in offline rendering: presets live in the daemon's state folder",
        "preset_delete": "not available in offline rendering: presets live in the daemon's state folder",
        "model_load": "not available in offline rendering: a render plays one model (render --model)",
        "record_start": "not available in offline rendering: the rendered file is the recording",
        "record_stop": "not available in offline rendering: the rendered file is the recording",
    }

    def broadcast(self, replies: Sequence[Reply]) -> None:
        pass

    def __getattr__(self, name: str):
        reason = self.REASONS.get(name, "not available in offline rendering")

        def refuse(*_args, **_kwargs):
            raise ParameterError(reason)

        return refuse


# ---- argument coercion (docs/protocol.md: Pd sends every number as float32) -------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def as_float(v: Any, what: str) -> float:
    if isinstance(v, bool) or not _is_number(v):
        raise ParameterError(f"{what} must be a number, got {_describe(v)}")
    f = float(v)
    if not math.isfinite(f):
        raise ParameterError(f"{what} must be finite, got {f}")
    return f


def as_int(v: Any, what: str) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v) or v != int(v):
            raise ParameterError(f"{what} must be a whole number, got {v}")
        return int(v)
    raise ParameterError(f"{what} must be an integer, got {_describe(v)}")


def as_bool(v: Any, what: str) -> bool:
    if isinstance(v, bool):
        return v
    n = as_int(v, what)
    if n not in (0, 1):
        raise ParameterError(f"{what} must be 0 or 1, got {n}")
    return bool(n)


def as_name(v: Any, what: str = "name") -> str:
    if not isinstance(v, str):
        raise ParameterError(f"{what} must be a string, got {_describe(v)}")
    if NAME_RE.fullmatch(v) is None:
        raise ParameterError(f"{what} '{v[:80]}' is not valid: use 1-64 of A-Z a-z 0-9 _ -")
    return v


def in_range(x: float, lo: float, hi: float, what: str) -> float:
    if not lo <= x <= hi:
        raise ParameterError(f"{what} {x:g} is out of range {lo:g}..{hi:g}")
    return x


def _describe(v: Any) -> str:
    if isinstance(v, str):
        return f"string '{v[:40]}'"
    if isinstance(v, (bytes, bytearray)):
        return f"blob of {len(v)} bytes"
    return type(v).__name__ if v is not None else "nil"


def _count(args: Sequence, lo: int, hi: Optional[int] = None) -> None:
    hi = lo if hi is None else hi
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise ParameterError(f"expects {want} argument{'s' if hi != 1 else ''}, got {len(args)}")


def parse_pitch_class(v: Any) -> int:
    if isinstance(v, str):
        key = v.strip().upper()
        if key not in PITCH_NAMES:
            raise ParameterError(f"unknown pitch class '{v[:16]}' (use C, C#, Db, ... B or 0..11)")
        return PITCH_NAMES[key]
    pc = as_int(v, "pitch class")
    if not 0 <= pc <= 11:
        raise ParameterError(f"pitch class {pc} is out of range 0..11")
    return pc


def parse_chroma(args: Sequence) -> tuple[float, ...]:
    """/chroma i | s | f x 12 → a 12-vector (blends are normalised to sum 1)."""
    if len(args) == 1:
        return one_hot(parse_pitch_class(args[0]))
    if len(args) == CHROMA_SIZE:
        vec = [as_float(v, f"chroma weight {k}") for k, v in enumerate(args)]
        if any(w < 0 for w in vec):
            raise ParameterError("chroma weights must be >= 0")
        total = sum(vec)
        if total <= 0:
            raise ParameterError("chroma weights must not all be 0")
        return tuple(w / total for w in vec)
    raise ParameterError(f"expects a pitch class (0..11 or a name) or 12 weights, got {len(args)} arguments")


def chroma_value(chroma: tuple[float, ...]) -> tuple:
    """How /get and echoes report chroma: an int for one class, else the 12 weights."""
    if max(chroma) == 1.0 and sum(chroma) == 1.0:
        return (chroma.index(1.0),)
    return tuple(chroma)


# ---- the table ---------------------------------------------------------------------------


@dataclass
class Context:
    engine: Engine
    services: Any  # Services
    source: Any = None  # opaque: who sent it (for replies, /notify, /sync)
    at: Optional[int] = None  # audio sample time for timetagged messages; None = now
    address: str = ""  # as sent (a pattern stays a pattern): names it in a /fail sent at apply time


Handler = Callable[[Context, Optional[int], tuple], list]  # → replies to the sender


@dataclass(frozen=True)
class Entry:
    pattern: str  # '/latent/{i}' for indexed addresses
    args: str  # signature for docs: 'f', 'f×N', 'i|s|f×12', '[i]'
    kind: str  # 'state' (echoed, /get-able) | 'action' | 'query' | 'session'
    doc: str
    handler: Handler
    get: Optional[Callable[[Engine, Optional[int]], tuple]] = None


def _unit(engine: Engine, index: Optional[int]) -> int:
    n = engine.bundle.meta.latent_size
    if index is None or not 0 <= index < n:
        raise ParameterError(f"unit {index} is out of range 0..{n - 1} for model '{engine.model_name}'")
    return index


def late_fail(ctx: Context) -> Callable[[str], None]:
    """How a timetagged message that no longer fits when its time comes is refused then: one
    warning line in the log and `/fail <address> <reason>` to its sender (when it has a reply
    path); nothing changes and the sound goes on."""
    address, at, source = ctx.address, ctx.at, ctx.source
    late_log = _late_logs.get(ctx.engine)
    if late_log is None:
        late_log = _late_logs[ctx.engine] = RateLimitedLog(log, interval=1.0, burst=5)

    def fail(reason: str) -> None:
        late_log(logging.WARNING, "%s scheduled for sample %s skipped: %s", address or "a message", at, reason)
        if hasattr(source, "send"):
            try:
                source.send("/fail", [address, reason])
            except Exception:  # noqa: BLE001 - a reply path that broke must not stop the render thread
                log.exception("cannot send /fail %s", address)

    return fail


class ScheduleBudget:
    """What the timetagged changes waiting for their time may hold: a count, a byte estimate
    and a horizon (docs/daemon.md: max_scheduled, max_scheduled_bytes, schedule_horizon).

    `admit` refuses (ParameterError: the message's /fail) before anything is scheduled; `track`
    follows each scheduled callable by a weak reference, so an event leaves the budget when it
    is gone, however it goes (applied, or dropped by an untimed /panic).
    """

    def __init__(self, count: int = 10000, nbytes: int = 32 * 1024 * 1024, horizon: float = 300.0) -> None:
        self.max_count = count
        self.max_bytes = nbytes
        self.horizon = horizon
        self.count = 0
        self.bytes = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._refs: set = set()
        self.cost = 3072  # set by the caller for the message being dispatched (see admit)

    def admit(self, cost: int, ahead: Optional[float] = None) -> None:
        if ahead is not None and ahead > self.horizon:
            self.refused += 1
            raise ParameterError(f"timetag {ahead:.0f} s ahead: at most {self.horizon:g} s (schedule_horizon)")
        if self.count >= self.max_count:
            self.refused += 1
            raise ParameterError(f"{self.count} timetagged changes are waiting: at most {self.max_count} "
                                 "(max_scheduled); send them closer to their time")
        if self.bytes + cost > self.max_bytes:
            self.refused += 1
            raise ParameterError(f"the waiting timetagged changes hold {self.bytes} bytes: at most "
                                 f"{self.max_bytes} (max_scheduled_bytes)")

    def track(self, fn: Callable, cost: int) -> None:
        def gone(ref, cost=cost) -> None:
            with self._lock:
                self._refs.discard(ref)
                self.count -= 1
                self.bytes -= cost

        with self._lock:
            self._refs.add(weakref.ref(fn, gone))
            self.count += 1
            self.bytes += cost


def at_time(engine: Engine, at: Optional[int], fn: Callable[[], None], fail: Callable[[str], None]) -> None:
    """fn() now (at None: an exception propagates, i.e. the message is refused on arrival), or
    on the render thread at the first frame boundary at or after sample `at`.

    A scheduled fn never raises into the render thread (that would silence a hop and drop the
    other events due at the same boundary): a refusal (AedaemonError) or any other error goes
    to fail(reason) instead. When the host gave the engine a `schedule_budget` (the daemon),
    the change counts against it until it has run or been dropped.
    """
    if at is None:
        fn()
        return
    budget: Optional[ScheduleBudget] = getattr(engine, "schedule_budget", None)

    def scheduled(_e: Engine) -> None:
        try:
            fn()
        except AedaemonError as exc:
            fail(str(exc))
        except Exception as exc:  # noqa: BLE001
            log.exception("a scheduled change failed")
            fail(f"failed when applied: {exc}")

    if budget is not None:
        budget.track(scheduled, budget.cost)
    engine.post_at(at, scheduled)


def _fits_model(engine: Engine, changes: dict) -> dict:
    """Refuse per-unit values made for another model (a swap happened before their time)."""
    n = engine.bundle.meta.latent_size
    for key in ("latent", "scale", "mute"):
        if key in changes and len(changes[key]) != n:
            raise ParameterError(f"the model is now '{engine.model_name}' with {n} units "
                                 f"({len(changes[key])} values for {key})")
    return changes


def _apply(ctx: Context, change: Callable[[Targets], dict], echoes: Callable[[Targets], list]) -> list:
    """Make a target change now, or at ctx.at on the audio clock; echo it either way.

    A timetagged change is checked again when applied, against the model playing then: one
    that no longer fits (a unit index or a number of values of the model swapped out in
    between) is skipped and reported (`late_fail`), never applied half or raised.
    """
    engine, services = ctx.engine, ctx.services

    def run() -> None:
        try:
            new = engine.modify(lambda t: _fits_model(engine, change(t)))
        except IndexError:  # /latent/6 etc. on a model that now has fewer units
            raise ParameterError(f"the model is now '{engine.model_name}' with "
                                 f"{engine.bundle.meta.latent_size} units") from None
        services.broadcast(echoes(new))

    at_time(engine, ctx.at, run, late_fail(ctx))
    return []


def _echo_latent_unit(i: int) -> Callable[[Targets], list]:
    return lambda t: [Reply(f"/latent/{i}", (t.latent[i],))]


def _clamp_latent(engine: Engine, v: float) -> float:
    lo, hi = engine.bundle.meta.control_range
    return min(hi, max(lo, v))


def h_latent_all(ctx: Context, _i, args: tuple) -> list:
    n = ctx.engine.bundle.meta.latent_size
    if len(args) != n:
        raise ParameterError(f"expects {n} values (model '{ctx.engine.model_name}' has {n} units), got {len(args)}")
    vals = tuple(_clamp_latent(ctx.engine, as_float(v, f"latent {k}")) for k, v in enumerate(args))
    return _apply(ctx, lambda t: {"latent": vals}, lambda t: [Reply("/latent", t.latent)])


def h_latent_unit(ctx: Context, i, args: tuple) -> list:
    i = _unit(ctx.engine, i)
    _count(args, 1)
    v = _clamp_latent(ctx.engine, as_float(args[0], "latent"))

    def change(t: Targets) -> dict:
        lat = list(t.latent)
        lat[i] = v
        return {"latent": tuple(lat)}

    return _apply(ctx, change, _echo_latent_unit(i))


def h_scale(ctx: Context, i, args: tuple) -> list:
    i = _unit(ctx.engine, i)
    _count(args, 1)
    v = in_range(as_float(args[0], "scale"), *SCALE_RANGE, "scale")

    def change(t: Targets) -> dict:
        sc = list(t.scale)
        sc[i] = v
        return {"scale": tuple(sc)}

    return _apply(ctx, change, lambda t: [Reply(f"/scale/{i}", (t.scale[i],))])


def h_mute(ctx: Context, i, args: tuple) -> list:
    i = _unit(ctx.engine, i)
    _count(args, 1)
    on = as_bool(args[0], "mute")

    def change(t: Targets) -> dict:
        m = list(t.mute)
        m[i] = on
        return {"mute": tuple(m)}

    return _apply(ctx, change, lambda t: [Reply(f"/mute/{i}", (int(t.mute[i]),))])


def h_chroma(ctx: Context, _i, args: tuple) -> list:
    vec = parse_chroma(args)
    return _apply(ctx, lambda t: {"chroma": vec}, lambda t: [Reply("/chroma", chroma_value(t.chroma))])


def _scalar(name: str, rng: tuple[float, float], *, integer: bool = False, clamp: bool = False) -> Handler:
    def handler(ctx: Context, _i, args: tuple) -> list:
        _count(args, 1)
        if integer:
            v: float = as_int(args[0], name)
        else:
            v = as_float(args[0], name)
        v = min(rng[1], max(rng[0], v)) if clamp else in_range(v, *rng, name)
        return _apply(ctx, lambda t: {name: v}, lambda t: [Reply(f"/{name}", (getattr(t, name),))])

    return handler


def h_freq_shift(ctx: Context, i, args: tuple) -> list:
    limit = ctx.engine.n_fft // 2
    return _scalar("freq_shift", (-limit, limit), integer=True, clamp=True)(ctx, i, args)


def note_to_pitch(engine: Engine, note: int) -> tuple[tuple[float, ...], float]:
    """Chroma and played pitch for a MIDI note: its pitch class (a conditioned model; an
    unconditioned one keeps its chroma) and the note itself. The engine tracks the pitch of
    each decoded frame and shapes it to this pitch (+ /transpose), whatever the register the
    latent decodes to; notes outside `Engine.note_range` are refused.
    """
    lo, hi = engine.note_range()
    if not lo <= note <= hi:
        raise ParameterError(f"note {note} is out of reach of model '{engine.model_name}' "
                             f"({lo}..{hi}: the shaping's reach around the registers it decodes)")
    chroma = one_hot(note % 12) if engine.bundle.meta.conditioned else engine.targets.chroma
    return chroma, float(note)


def h_note(ctx: Context, _i, args: tuple) -> list:
    _count(args, 1, 2)
    note = as_int(args[0], "note")
    if not 0 <= note <= 127:
        raise ParameterError(f"note {note} is out of range 0..127")
    velocity = as_int(args[1], "velocity") if len(args) == 2 else 100
    if not 0 <= velocity <= 127:
        raise ParameterError(f"velocity {velocity} is out of range 0..127")
    if velocity == 0:  # MIDI convention: note-on with velocity 0 is a note-off
        return h_note_off(ctx, None, (note,))
    chroma, pitch = note_to_pitch(ctx.engine, note)
    level = (velocity / 127.0) ** 2  # velocity curve: squared, like most synths' default
    return _apply(
        ctx,
        lambda t: {"chroma": chroma, "pitch": pitch, "velocity": level, "playing": True, "note": note},
        lambda t: [Reply("/chroma", chroma_value(t.chroma)), Reply("/play", (int(t.playing),))],
    )


def h_note_off(ctx: Context, _i, args: tuple) -> list:
    _count(args, 1)
    note = as_int(args[0], "note")

    def change(t: Targets) -> dict:
        return {"playing": False, "note": None} if t.note == note else {}

    return _apply(ctx, change, lambda t: [Reply("/play", (int(t.playing),))])


def h_play(ctx: Context, _i, args: tuple) -> list:
    _count(args, 0, 1)
    on = as_bool(args[0], "play") if args else True
    # /play 1 plays the chroma's class in the reference octave; /play 0 keeps the pitch it fades at
    change = {"playing": True, "note": None, "pitch": None} if on else {"playing": False, "note": None}
    return _apply(ctx, lambda t: change, lambda t: [Reply("/play", (int(t.playing),))])


def h_tune(ctx: Context, _i, args: tuple) -> list:
    _count(args, 1)
    hz = in_range(as_float(args[0], "tune"), *TUNE_RANGE, "tune (A4 in Hz)")
    return _apply(ctx, lambda t: {"tune": hz}, lambda t: [Reply("/tune", (t.tune,))])


def h_stop(ctx: Context, _i, args: tuple) -> list:
    _count(args, 0)
    return _apply(ctx, lambda t: {"playing": False, "note": None}, lambda t: [Reply("/play", (0,))])


def h_panic(ctx: Context, _i, args: tuple) -> list:
    """Now: silence and drop every scheduled event (the emergency button). Timetagged: the same
    hard cut at its time, keeping what is scheduled after it (see Engine.panic)."""
    _count(args, 0)
    ctx.engine.panic(ctx.at)
    # scheduled after the cut at the same time: ties keep arrival order
    at_time(ctx.engine, ctx.at, lambda: ctx.services.broadcast([Reply("/play", (0,))]), late_fail(ctx))
    return []


def _all_units(t: Targets) -> list:
    n = len(t.latent)
    return (
        [Reply("/latent", t.latent)]
        + [Reply(f"/scale/{i}", (t.scale[i],)) for i in range(n)]
        + [Reply(f"/mute/{i}", (int(t.mute[i]),)) for i in range(n)]
    )


def h_reset(ctx: Context, _i, args: tuple) -> list:
    _count(args, 0)
    engine = ctx.engine

    def change(t: Targets) -> dict:  # the model playing when it is applied
        fresh = Targets.initial(engine.bundle)
        return {"latent": fresh.latent, "scale": fresh.scale, "mute": fresh.mute}

    return _apply(ctx, change, _all_units)


def h_zero(ctx: Context, _i, args: tuple) -> list:
    _count(args, 0)
    engine = ctx.engine

    def change(t: Targets) -> dict:  # the model playing when it is applied
        return {"latent": (_clamp_latent(engine, 0.0),) * engine.bundle.meta.latent_size}

    return _apply(ctx, change, lambda t: [Reply("/latent", t.latent)])


# ---- session addresses: routed to the host's Services -----------------------------------


def _session(ctx: Context, method: str, *args: Any) -> Any:
    """services.<method>(*args), with at= and fail= for a timetagged message (see Services)."""
    fn = getattr(ctx.services, method)
    if ctx.at is None:
        return fn(*args)
    return fn(*args, at=ctx.at, fail=late_fail(ctx))


def _named(address: str, method: str, what: str, timed: bool = False) -> Handler:
    """Handler for `address s`: validate the name, call services.<method>(name), reply /done.
    timed: the method honours the timetag (else it acts on arrival, whatever the timetag)."""

    def handler(ctx: Context, _i, args: tuple) -> list:
        _count(args, 1)
        name = as_name(args[0], what)
        if timed:
            result = _session(ctx, method, name)
        else:
            result = getattr(ctx.services, method)(name)
        if result is DEFERRED:
            return []
        return [Reply("/done", (address, name))]

    return handler


def _encoded_size(address: str, names: Sequence[str]) -> int:
    def padded(n: int) -> int:
        return 4 * ((n + 4) // 4)  # a string, its NUL and the padding

    return padded(len(address.encode())) + padded(1 + len(names)) + sum(padded(len(n.encode())) for n in names)


def split_reply(address: str, names: Sequence[str], limit: int = REPLY_LIMIT) -> list[Reply]:
    """`address name…` as one reply when it takes at most limit - REPLY_SLACK bytes (the usual
    case), else as several `address name…` replies of at most `limit` bytes each, in order
    (each but the last longer than limit - REPLY_SLACK), closed by an empty `address`
    (docs/protocol.md: a long list spans several datagrams)."""
    names = list(names)
    if _encoded_size(address, names) <= limit - REPLY_SLACK:
        return [Reply(address, tuple(names))]
    parts: list[list[str]] = [[]]
    for n in names:
        if parts[-1] and _encoded_size(address, parts[-1] + [n]) > limit:
            parts.append([])
        parts[-1].append(n)
    return [Reply(address, tuple(p)) for p in parts] + [Reply(address, ())]


def _listing(address: str, method: str) -> Handler:
    """Handler for a no-argument listing that replies `address s…` (split when long)."""

    def handler(ctx: Context, _i, args: tuple) -> list:
        _count(args, 0)
        return split_reply(address, list(getattr(ctx.services, method)()))

    return handler


def h_preset_load(ctx: Context, _i, args: tuple) -> list:
    _count(args, 1, 2)
    name = as_name(args[0], "preset name")
    morph = in_range(as_float(args[1], "morph"), *GLIDE_RANGE, "morph") if len(args) == 2 else 0.0
    _session(ctx, "preset_load", name, morph)  # read and checked now, applied at its time
    return [Reply("/done", ("/preset/load", name))]


def h_record_start(ctx: Context, _i, args: tuple) -> list:
    _count(args, 0, 1)
    name = as_name(args[0], "recording name") if args else None
    filename = _session(ctx, "record_start", name)  # file created now, first sample at its time
    return [Reply("/done", ("/record/start", filename))]


def h_record_stop(ctx: Context, _i, args: tuple) -> list:
    _count(args, 0)
    filename = _session(ctx, "record_stop")  # last sample just before its time
    return [Reply("/done", ("/record/stop", filename))]


def h_get(ctx: Context, _i, args: tuple) -> list:
    _count(args, 1)
    if not isinstance(args[0], str):
        raise ParameterError(f"expects an address string, got {_describe(args[0])}")
    entry, index = resolve(args[0])
    if entry is None or entry.get is None:
        raise ParameterError(f"'{args[0][:64]}' is not a state address")
    if index is not None:
        _unit(ctx.engine, index)
    return [Reply(args[0], tuple(entry.get(ctx.engine, index)))]


def h_status(ctx: Context, _i, args: tuple) -> list:
    _count(args, 0)
    return [Reply("/status.reply", tuple(ctx.services.status()))]


def h_version(ctx: Context, _i, args: tuple) -> list:
    _count(args, 0)
    return [Reply("/version.reply", ("aedaemon", __version__))]


def h_notify(ctx: Context, _i, args: tuple) -> list:
    _count(args, 1, 2)
    on = as_bool(args[0], "notify")
    port = None
    if len(args) == 2:  # extension: deliver to this UDP port of the sender's host (Max, TouchOSC)
        port = as_int(args[1], "notify port")
        if not 1 <= port <= 65535:
            raise ParameterError(f"notify port {port} is out of range 1..65535")
    ctx.services.notify(ctx.source, on, port)
    return [Reply("/done", ("/notify",))]


def h_sync(ctx: Context, _i, args: tuple) -> list:
    _count(args, 1)
    token = as_int(args[0], "sync token")
    ctx.services.sync(ctx.source, token)  # replies /synced token once applied
    return []


def h_meter(ctx: Context, _i, args: tuple) -> list:
    _count(args, 0)
    rms, peak = ctx.engine.meter
    return [Reply("/meter", (rms, peak))]


def h_midi_learn(ctx: Context, _i, args: tuple) -> list:
    _count(args, 1)
    if not isinstance(args[0], str):
        raise ParameterError(f"expects an address string, got {_describe(args[0])}")
    entry, index = resolve(args[0])
    if entry is None or entry.kind not in ("state", "action"):
        raise ParameterError(f"'{args[0][:64]}' cannot be bound to a MIDI control")
    if index is not None:
        _unit(ctx.engine, index)
    ctx.services.midi_learn(args[0])
    return [Reply("/done", ("/midi/learn", args[0]))]


def h_quit(ctx: Context, _i, args: tuple) -> list:
    _count(args, 0)
    ctx.services.quit()  # refuses unless the config allows it
    return [Reply("/done", ("/quit",))]


def _get_target(name: str) -> Callable[[Engine, Optional[int]], tuple]:
    return lambda e, _i: (getattr(e.targets, name),)


ADDRESSES: tuple[Entry, ...] = (
    # sound parameters (state)
    Entry("/latent", "f×N", "state", "set all N latent units (clamped to the control range)",
          h_latent_all, lambda e, _i: e.targets.latent),
    Entry("/latent/{i}", "f", "state", "set latent unit i (clamped to the model's control range)",
          h_latent_unit, lambda e, i: (e.targets.latent[i],)),
    Entry("/scale/{i}", "f", "state", "multiplier on unit i, 0..4 (effective = latent × scale × not muted)",
          h_scale, lambda e, i: (e.targets.scale[i],)),
    Entry("/mute/{i}", "i", "state", "1 mutes unit i, 0 unmutes", h_mute, lambda e, i: (int(e.targets.mute[i]),)),
    Entry("/chroma", "i|s|f×12", "state", "pitch-class conditioning: 0..11, a name (C, C#, Db, ... B) or 12 weights",
          h_chroma, lambda e, _i: chroma_value(e.targets.chroma)),
    Entry("/transpose", "f", "state", "offset in semitones from the played pitch (the note, or the chroma's class), -24..24",
          _scalar("transpose", TRANSPOSE_RANGE), _get_target("transpose")),
    Entry("/tune", "f", "state", "A4 reference in Hz, 400..480 (default 440): every pitch played is relative to it",
          h_tune, _get_target("tune")),
    Entry("/freq_shift", "i", "state", "circular shift of the frame in bins (clamped to ±n_fft/2)",
          h_freq_shift, _get_target("freq_shift")),
    Entry("/gain", "f", "state", "output gain, linear 0..2", _scalar("gain", GAIN_RANGE), _get_target("gain")),
    Entry("/glide", "f", "state", "seconds over which changes are interpolated (0 = next frame), 0..60",
          _scalar("glide", GLIDE_RANGE), _get_target("glide")),
    Entry("/tilt", "f", "state", "spectral tilt in dB/octave around 1 kHz, -12..12 (CANNe's bass boost when < 0)",
          _scalar("tilt", TILT_RANGE), _get_target("tilt")),
    Entry("/note", "i [i]", "action", "MIDI note [velocity]: play that pitch (tracked and shaped for every timbre) at that level (last note wins)",
          h_note),
    Entry("/note_off", "i", "action", "release that note if it is the one sounding", h_note_off),
    # transport and actions
    Entry("/play", "[i]", "state", "start (a 3 ms attack from silence); /play 0 stops (30 ms fade)", h_play, lambda e, _i: (int(e.targets.playing),)),
    Entry("/stop", "", "action", "fade out to silence", h_stop),
    Entry("/panic", "", "action", "silence at once; untimed it also drops everything scheduled, timetagged it keeps what comes after it", h_panic),
    Entry("/reset", "", "action", "units back to the model's default latent, scales 1, mutes off", h_reset),
    Entry("/zero", "", "action", "every latent unit to 0", h_zero),
    Entry("/preset/save", "s", "session", "save the current sound as a named preset", _named("/preset/save", "preset_save", "preset name", timed=True)),
    Entry("/preset/load", "s [f]", "session", "load a preset [morphing over f seconds]", h_preset_load),
    Entry("/preset/list", "", "session", "reply /preset/list s…",
          _listing("/preset/list", "preset_list")),
    Entry("/preset/delete", "s", "session", "delete a preset",
          _named("/preset/delete", "preset_delete", "preset name")),
    Entry("/model/list", "", "session", "reply /model/list s…",
          _listing("/model/list", "model_list")),
    Entry("/model/load", "s", "session", "swap to a model by name, without a click",
          _named("/model/load", "model_load", "model name", timed=True)),
    Entry("/record/start", "[s]", "session", "record the output to a WAV in the recordings directory",
          h_record_start),
    Entry("/record/stop", "", "session", "stop recording; reply /done /record/stop filename", h_record_stop),
    # queries and session
    Entry("/get", "s", "query", "reply with the current value of a state address", h_get),
    Entry("/status", "", "query", "reply /status.reply with playing, model, rates, load and counters", h_status),
    Entry("/version", "", "query", "reply /version.reply aedaemon VERSION", h_version),
    Entry("/notify", "i [i]", "session", "1 subscribes the sender (or that UDP port of its host) to state changes and /meter, 0 unsubscribes",
          h_notify),
    Entry("/sync", "i", "session", "reply /synced i once everything received before it is applied", h_sync),
    Entry("/meter", "", "query", "reply /meter rms peak (dBFS); pushed ~20×/s to subscribers", h_meter),
    Entry("/midi/learn", "s", "session", "bind the next MIDI control moved to this address", h_midi_learn),
    Entry("/quit", "", "session", "clean shutdown (only when the config allows it)", h_quit),
)  # fmt: skip

def address_table_markdown() -> str:
    """The address table as Markdown (`aedaemon addresses`, docs/protocol.md); '|' escaped."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| address | args | kind | meaning |", "|---|---|---|---|"]
    rows += [f"| {cell(e.pattern)} | {cell(e.args)} | {e.kind} | {cell(e.doc)} |" for e in ADDRESSES]
    return "\n".join(rows)


_EXACT = {e.pattern: e for e in ADDRESSES if "{i}" not in e.pattern}
_INDEXED = {e.pattern.split("{i}")[0]: e for e in ADDRESSES if "{i}" in e.pattern}
_INDEX_RE = re.compile(r"(/[a-z_]+/)(0|[1-9][0-9]{0,3})")


def resolve(address: str) -> tuple[Optional[Entry], Optional[int]]:
    """The table entry for a concrete address, and its unit index if it has one."""
    entry = _EXACT.get(address)
    if entry is not None:
        return entry, None
    m = _INDEX_RE.fullmatch(address)
    if m and m.group(1) in _INDEXED:
        return _INDEXED[m.group(1)], int(m.group(2))
    return None, None


_PATTERN_CHARS = frozenset("*?[]{}")


def is_pattern(address: str) -> bool:
    return not _PATTERN_CHARS.isdisjoint(address)


def pattern_regex(pattern: str) -> "re.Pattern[str]":
    """An OSC 1.0 address pattern as a regex: `*` and `?` stay within one part (never match
    '/'), `[a-c]` and `[!0-3]` are character classes, `{gain,glide}` alternatives."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ParameterError(f"address pattern '{pattern[:64]}': '[' without ']'")
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            if not body:
                raise ParameterError(f"address pattern '{pattern[:64]}': empty [] class")
            chars = "".join("-" if c == "-" and 0 < k < len(body) - 1 else re.escape(c) for k, c in enumerate(body))
            out.append(f"[{'^' if negate else ''}{chars}]")
            i = end
        elif ch == "{":
            end = pattern.find("}", i + 1)
            if end < 0:
                raise ParameterError(f"address pattern '{pattern[:64]}': '{{' without '}}'")
            out.append("(?:" + "|".join(re.escape(a) for a in pattern[i + 1 : end].split(",")) + ")")
            i = end
        elif ch in "]}":
            raise ParameterError(f"address pattern '{pattern[:64]}': unbalanced '{ch}'")
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out))
    except re.error as exc:  # e.g. a reversed range [z-a]
        raise ParameterError(f"address pattern '{pattern[:64]}': {exc}") from None


def expand_pattern(pattern: str, units: int) -> tuple[Optional[Entry], list[str]]:
    """The sound parameters (state addresses) a pattern matches, all of one table entry.

    Only state addresses: a pattern must not reach /quit, /panic or /preset/delete by accident.
    One entry only: every match then takes the same arguments, so a refusal happens before any
    change (`/mute/* 1` is fine; `/{gain,mute/0}` is refused: send those separately).
    """
    rx = pattern_regex(pattern)
    found: list[tuple[Entry, str]] = []
    for e in ADDRESSES:
        if e.kind != "state":
            continue
        concrete = [e.pattern.replace("{i}", str(i)) for i in range(units)] if "{i}" in e.pattern else [e.pattern]
        found += [(e, a) for a in concrete if rx.fullmatch(a)]
    entries = {id(e): e for e, _ in found}
    if len(entries) > 1:
        names = ", ".join(sorted({e.pattern for e, _ in found}))
        raise ParameterError(f"address pattern '{pattern[:64]}' matches several kinds of parameter ({names}); send them separately")
    return (found[0][0] if found else None), [a for _, a in found]


def dispatch(
    address: str, args: Sequence, *, engine: Engine, services: Any, source: Any = None, at: Optional[int] = None
) -> tuple[list[Reply], list[Reply]]:
    """Validate and apply one message. Returns (replies to the sender, echoes for subscribers).

    Raises ParameterError with the reason when the message is refused; nothing has changed
    then. State echoes are sent through `services.broadcast` when the change is applied (at
    once, or at the scheduled time for timetagged messages), so the returned echo list is
    always empty; it is kept for callers that collect echoes themselves.
    """
    ctx = Context(engine=engine, services=services, source=source, at=at, address=address)
    if is_pattern(address):
        entry, matches = expand_pattern(address, engine.bundle.meta.latent_size)
        if entry is None:
            raise ParameterError(f"address pattern '{address[:64]}' matches no sound parameter")
        replies: list[Reply] = []
        for concrete in matches:
            replies += entry.handler(ctx, resolve(concrete)[1], tuple(args))
        return replies, []
    entry, index = resolve(address)
    if entry is None:
        raise ParameterError(f"unknown address '{address[:64]}'")
    return entry.handler(ctx, index, tuple(args)), []
