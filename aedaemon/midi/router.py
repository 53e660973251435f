"""MIDI message → protocol actions, per a Mapping. Transport-free: used by the in-daemon bridge
(actions go through protocol.dispatch) and the standalone bridge (actions go out as OSC).

The router keeps only the state a mapping needs that the synthesizer does not hold: the bank,
toggle flags for toggles that are not state addresses (record), the last pitch-bend offset.
Everything else ("from where it is": transpose steps, endless encoders, chroma up/down, toggles
of /play and /mute) is read back from the host with /get at the moment of the move, so a change
made over OSC in between is respected.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Sequence

from ..errors import AedaemonError
from .mapping import _PLACEHOLDER_RE, Bind, Mapping, natural_limits, same_control

log = logging.getLogger("aedaemon.midi")

# natural limits of the state addresses (what a relative move or an offset is clamped to), keyed
# by address prefix ('/scale/' for '/scale/{i}')
ADDRESS_LIMITS: dict[str, Any] = {p.split("{i}")[0]: lim for p, lim in natural_limits().items()}

CC, NOTE_ON, NOTE_OFF, PITCHBEND = 0xB0, 0x90, 0x80, 0xE0


class Host(Protocol):
    """What the router needs from whoever applies the actions."""

    def send(self, address: str, args: list) -> None: ...  # raise AedaemonError to refuse
    def get(self, address: str) -> Optional[tuple]: ...  # current value of a state address, or None
    def units(self) -> int: ...
    def latent_range(self) -> tuple[float, float]: ...
    def control_range(self) -> tuple[float, float]: ...
    def default_latent(self, unit: int) -> float: ...
    def record_active(self) -> Optional[bool]: ...


@dataclass
class RouterStats:
    messages: int = 0  # MIDI messages received
    actions: int = 0  # actions applied
    refused: int = 0  # actions the host refused (/fail)
    unmapped: int = 0  # messages no binding matched
    last_refusal: str = ""


@dataclass
class Event:
    """A decoded channel message."""

    kind: str  # 'cc' | 'note_on' | 'note_off' | 'pitchbend'
    channel: int  # 1..16
    number: int  # cc or note number; 0 for pitch bend
    value: int  # 0..127; pitch bend -8192..8191

    @property
    def control(self) -> str:
        return "note" if self.kind in ("note_on", "note_off") else self.kind


def decode(msg: Sequence[int]) -> Optional[Event]:
    if not msg:
        return None
    status = msg[0]
    kind = status & 0xF0
    ch = (status & 0x0F) + 1
    if kind == CC and len(msg) >= 3:
        return Event("cc", ch, msg[1] & 0x7F, msg[2] & 0x7F)
    if kind == NOTE_ON and len(msg) >= 3:
        return Event("note_on" if msg[2] else "note_off", ch, msg[1] & 0x7F, msg[2] & 0x7F)
    if kind == NOTE_OFF and len(msg) >= 3:
        return Event("note_off", ch, msg[1] & 0x7F, msg[2] & 0x7F)
    if kind == PITCHBEND and len(msg) >= 3:
        return Event("pitchbend", ch, 0, ((msg[2] & 0x7F) << 7 | (msg[1] & 0x7F)) - 8192)
    return None


def split_stream(data: Sequence[int]) -> list[list[int]]:
    """Bytes of several MIDI messages one after another → the messages (a status byte and its
    data bytes each; real-time bytes F8-FF on their own; data bytes without a status dropped)."""
    out: list[list[int]] = []
    cur: Optional[list[int]] = None
    for b in data:
        b = int(b)
        if b >= 0xF8:
            out.append([b])
        elif b >= 0x80:
            if cur:
                out.append(cur)
            cur = [b]
        elif cur is not None:
            cur.append(b)
    if cur:
        out.append(cur)
    return out


def _channel_ok(want: Any, ch: int) -> bool:
    return want == "any" or want == ch


def _clamp(x: float, lo: float, hi: float) -> float:
    return min(max(x, min(lo, hi)), max(lo, hi))


def _limits_for(address: str) -> Optional[tuple]:
    for prefix, lim in ADDRESS_LIMITS.items():
        if address == prefix or (prefix.endswith("/") and address.startswith(prefix)):
            return lim
    return None


class Router:
    def __init__(self, mapping: Mapping, host: Host) -> None:
        self.host = host
        self.lock = threading.RLock()
        self.stats = RouterStats()
        self.bank = 0
        self.flags: dict[str, bool] = {}  # own toggle state, keyed by resolved address
        self.values: dict[str, float] = {}  # last value sent, for relative moves without /get
        # pitch bend as an offset, per address: (base, value sent, offset). The base is the
        # state's own value; it changes when someone else (a note, an OSC client) moves the state.
        self.offsets: dict[str, tuple[float, float, float]] = {}
        self.learn_hook: Optional[Callable[[Event], bool]] = None  # returns True when it consumed the event
        self.on_action: Optional[Callable[[str, list], None]] = None  # after each applied action
        self._last_warn = 0.0
        self._last_sysex_warn = 0.0
        self.set_mapping(mapping)

    # ---- mapping -----------------------------------------------------------------------
    def set_mapping(self, mapping: Mapping) -> None:
        with self.lock:
            self.mapping = mapping
            self.bank_size = mapping.device.bank_size
            self._index: dict[tuple[str, int], list[tuple[int, Bind]]] = {}
            for i, b in enumerate(mapping.binds):
                for num in b.numbers():
                    self._index.setdefault((b.kind, num), []).append((i, b))

    def add_binding(self, bind: Bind) -> None:
        """A learned binding, live at once (it shadows other bindings on its control)."""
        with self.lock:
            keep = [b for b in self.mapping.binds if not (b.learned and same_control(b, bind))]
            binds = keep + [bind.model_copy(update={"learned": True})]
            data = self.mapping.data.model_copy(update={"bind": binds})
            self.set_mapping(Mapping(data=data, path=self.mapping.path, name=self.mapping.name))

    def channel_of(self, b: Bind) -> Any:
        return b.channel if b.channel is not None else self.mapping.device.channel

    def matches(self, ev: Event) -> list[Bind]:
        cands = [b for _i, b in self._index.get((ev.control, ev.number), []) if _channel_ok(self.channel_of(b), ev.channel)]
        learned = [b for b in cands if b.learned]
        return learned or cands

    # ---- banks -------------------------------------------------------------------------
    def banks(self) -> int:
        return max(1, math.ceil(self.host.units() / self.bank_size))

    def change_bank(self, delta: int) -> None:
        n = self.banks()
        if n <= 1:
            self.bank = 0
            return
        self.bank = (self.bank + delta) % n
        log.info("MIDI bank %d of %d (units %d..%d)", self.bank + 1, n, self.bank * self.bank_size,
                 min(self.host.units(), (self.bank + 1) * self.bank_size) - 1)

    # ---- input -------------------------------------------------------------------------
    def handle(self, msg: Sequence[int]) -> None:
        """One raw MIDI message (from any thread). Never raises."""
        if msg and msg[0] in (0xF0, 0xF7):
            self._sysex(msg)
            return
        ev = decode(msg)
        if ev is None:
            return
        with self.lock:
            try:
                if self.bank and self.bank >= self.banks():
                    self.bank = 0  # the model changed to one with fewer units
                if self.learn_hook is not None and self.learn_hook(ev):
                    return
                binds = self.matches(ev)
                if not binds:
                    self.stats.unmapped += 1
                    return
                for b in binds:
                    self._apply(b, ev)
            except Exception:  # noqa: BLE001 — a bad move must never stop the bridge
                log.exception("MIDI message %s", list(msg))
            finally:
                self.stats.messages += 1  # counted once handled: a reader sees its effects

    def _sysex(self, msg: Sequence[int]) -> None:
        """SysEx is ignored, but one that was never terminated (F0 01 02, no F7) arrives glued
        to the messages that followed it (RtMidi holds them until an F7): split them out and
        apply them, late rather than lost."""
        held = [m for m in split_stream(msg) if m[0] < 0xF0]
        if not held:
            return
        now = time.monotonic()
        if now - self._last_sysex_warn > 10.0:
            self._last_sysex_warn = now
            log.warning("MIDI input: a SysEx without its F7 (%s ...) held back %d message(s); applied late",
                        " ".join(f"{b:02X}" for b in list(msg)[:4]), len(held))
        for m in held:
            self.handle(m)

    def _ctx(self, b: Bind, ev: Event) -> dict:
        strip = b.strip_of(ev.number)
        unit = self.bank * self.bank_size + strip
        return {"strip": strip, "unit": unit, "n": strip + 1, "bank": self.bank, "note": ev.number,
                "velocity": ev.value if ev.kind.startswith("note") else 0}

    def _fmt_address(self, template: str, ctx: dict) -> str:
        return _PLACEHOLDER_RE.sub(lambda m: str(ctx.get(m.group(1), m.group(0))), template)

    def _fmt_args(self, args: Sequence, ctx: dict) -> list:
        out: list = []
        for a in args:
            if isinstance(a, str):
                whole = _PLACEHOLDER_RE.fullmatch(a)
                if whole:
                    key = whole.group(1)
                    if key == "default":
                        out.append(float(self.host.default_latent(ctx["unit"])))
                    elif key in ctx:
                        out.append(ctx[key])
                    else:
                        out.append(a)
                else:
                    out.append(self._fmt_address(a, ctx))
            else:
                out.append(a)
        return out

    def _range(self, b: Bind) -> tuple[float, float]:
        r = b.range
        if r == "latent":
            return tuple(self.host.latent_range())  # type: ignore[return-value]
        if r == "control":
            return tuple(self.host.control_range())  # type: ignore[return-value]
        if r is None:
            return (0.0, 1.0)
        return (float(r[0]), float(r[1]))

    def _limits(self, address: str, fallback: tuple[float, float]) -> tuple[float, float]:
        lim = _limits_for(address)
        if lim == "control":
            return tuple(self.host.control_range())  # type: ignore[return-value]
        return lim if lim is not None else fallback

    def _current(self, address: str) -> Optional[float]:
        try:
            v = self.host.get(address)
        except AedaemonError:
            v = None
        if v:
            if len(v) == 12 and address == "/chroma":  # a blend: its strongest class
                return float(max(range(12), key=lambda k: v[k]))
            try:
                return float(v[0])
            except (TypeError, ValueError):
                return None
        return self.values.get(address)

    def _send(self, address: str, args: list) -> bool:
        try:
            self.host.send(address, args)
        except AedaemonError as exc:
            self.stats.refused += 1
            self.stats.last_refusal = f"{address}: {exc}"
            now = time.monotonic()
            if now - self._last_warn > 1.0:
                self._last_warn = now
                log.info("MIDI action %s %s refused: %s", address, args, exc)
            return False
        self.stats.actions += 1
        if args and isinstance(args[0], (int, float)) and not isinstance(args[0], bool) and len(args) == 1:
            self.values[address] = float(args[0])
        if self.on_action is not None:
            try:
                self.on_action(address, args)
            except Exception:  # noqa: BLE001
                log.exception("MIDI on_action")
        return True

    def _scaled(self, b: Bind, ev: Event) -> float:
        lo, hi = self._range(b)
        if ev.kind == "pitchbend":
            mid = (lo + hi) / 2.0
            v = ev.value
            x = mid + (mid - lo) * (v / 8192.0) if v < 0 else mid + (hi - mid) * (v / 8191.0)
            if b.invert:
                x = lo + hi - x
        else:
            frac = ev.value / 127.0
            if b.invert:
                frac = 1.0 - frac
            x = lo + (hi - lo) * frac
        return float(round(x)) if b.integer else x

    def _apply(self, b: Bind, ev: Event) -> None:
        ctx = self._ctx(b, ev)
        if "{unit}" in (b.address or "") + (b.on_address or "") + (b.off_address or "") or "{default}" in str(b.args):
            if ctx["unit"] >= self.host.units():
                return  # a strip past the model's last unit in this bank
        mode = b.mode
        pressed = ev.value >= b.threshold if ev.kind in ("cc", "note_on") else False
        if mode == "bank_next" or mode == "bank_prev":
            if pressed:
                self.change_bank(1 if mode == "bank_next" else -1)
            return
        if mode == "note":
            if ev.kind == "note_on":
                self._send(self._fmt_address(b.address, ctx), self._fmt_args(b.args or ["{note}", "{velocity}"], ctx))
                self._reapply_offsets()
            elif ev.kind == "note_off" and b.release_address:
                self._send(self._fmt_address(b.release_address, ctx), self._fmt_args(b.release_args or ["{note}"], ctx))
            return
        if mode == "absolute":
            if ev.kind == "note_off":
                return
            ctx["value"] = self._scaled(b, ev)
            self._send(self._fmt_address(b.address, ctx), self._fmt_args(b.args or ["{value}"], ctx))
            return
        if mode == "offset":
            address = self._fmt_address(b.address, ctx)
            if ev.kind == "cc":
                ev = Event("pitchbend", ev.channel, ev.number, int((ev.value - 64) * 128))
            offset = self._scaled(b, ev)
            self._bend(address, offset)
            return
        if mode == "relative":
            if ev.kind != "cc":
                return
            v = ev.value
            if b.encoding == "twos":
                delta = v if v < 64 else v - 128
            elif b.encoding == "signed":
                delta = -(v & 0x3F) if v & 0x40 else v
            else:
                delta = v - 64
            if b.invert:
                delta = -delta
            lo, hi = self._range(b)
            step = b.step if b.step is not None else (1.0 if b.integer else (hi - lo) / 127.0)
            address = self._fmt_address(b.address, ctx)
            cur = self._current(address)
            if cur is None:
                cur = lo
            x = _clamp(cur + delta * step, lo, hi)
            ctx["value"] = float(round(x)) if b.integer else x
            self._send(address, self._fmt_args(b.args or ["{value}"], ctx))
            return
        if mode == "momentary":
            if pressed:
                self._send(self._fmt_address(b.address, ctx), self._fmt_args(b.args or [], ctx))
            elif ev.kind in ("cc", "note_off") and b.release_address:
                self._send(self._fmt_address(b.release_address, ctx), self._fmt_args(b.release_args, ctx))
            return
        if mode == "step":
            if not pressed:
                return
            address = self._fmt_address(b.address, ctx)
            lo, hi = self._range(b)
            cur = self._current(address)
            if cur is None:
                cur = (lo + hi) / 2.0 if not b.wrap else lo
            x = cur + float(b.step or 0.0)
            if b.wrap:
                span = (hi - lo + 1.0) if b.integer else (hi - lo)
                x = lo + (x - lo) % span if span > 0 else lo
            else:
                x = _clamp(x, lo, hi)
            ctx["value"] = float(round(x)) if b.integer else x
            if b.integer and b.args is None:
                ctx["value"] = int(ctx["value"])
            self._send(address, self._fmt_args(b.args or ["{value}"], ctx))
            return
        if mode == "toggle":
            if not pressed:
                return
            on_addr = self._fmt_address(b.on_address or b.address, ctx)
            off_addr = self._fmt_address(b.off_address or b.address, ctx)
            key = on_addr
            state = self._toggle_state(b, on_addr, key)
            if state:
                ok = self._send(off_addr, self._fmt_args(b.off_args if b.off_args is not None else ([0] if b.off_address is None else []), ctx))
            else:
                ok = self._send(on_addr, self._fmt_args(b.on_args if b.on_args is not None else ([1] if b.on_address is None else []), ctx))
            if ok:
                self.flags[key] = not state
            return

    def _toggle_state(self, b: Bind, on_addr: str, key: str) -> bool:
        if b.on_address is None:  # one state address, on/off by argument: ask the host
            try:
                v = self.host.get(on_addr)
            except AedaemonError:
                v = None
            if v:
                try:
                    return bool(float(v[0]))
                except (TypeError, ValueError):
                    pass
        if on_addr.startswith("/record/"):
            active = self.host.record_active()
            if active is not None:
                return active
        return self.flags.get(key, False)

    def _bend(self, address: str, offset: float) -> None:
        cur = self._current(address) or 0.0
        base, sent, _old = self.offsets.get(address, (cur, cur, 0.0))
        if not math.isclose(cur, sent, abs_tol=1e-6):
            base = cur  # moved by someone else since our last bend: that is the new base
        lo, hi = self._limits(address, (-math.inf, math.inf))
        value = _clamp(base + offset, lo, hi)
        if self._send(address, [value]):
            self.offsets[address] = (base, value, offset)

    def _reapply_offsets(self) -> None:
        """A new note set its own transpose: add the pitch bend still held."""
        for address, (_base, _sent, offset) in list(self.offsets.items()):
            if offset:
                self._bend(address, offset)
            else:
                self.offsets.pop(address, None)

    # ---- LED feedback --------------------------------------------------------------------
    def led_states(self) -> dict[tuple[int, int], int]:
        """(channel 1..16, cc) → value for every LED of the mapping, given the current bank."""
        out: dict[tuple[int, int], int] = {}
        dev = self.mapping.device
        default_ch = dev.channel if isinstance(dev.channel, int) else 1
        units = self.host.units()
        for led in self.mapping.leds:
            ch = led.channel or default_ch
            for strip in range(led.strips):
                unit = self.bank * self.bank_size + strip
                on = False
                if led.state == "record":
                    active = self.host.record_active()
                    on = bool(active) if active is not None else any(
                        v for k, v in self.flags.items() if k.startswith("/record/"))
                elif "{unit}" in led.state and unit >= units:
                    on = False
                else:
                    addr = led.state.replace("{unit}", str(unit)).replace("{strip}", str(strip))
                    try:
                        v = self.host.get(addr)
                        on = bool(v) and bool(float(v[0]))
                    except (AedaemonError, TypeError, ValueError):
                        on = False
                out[(ch, led.cc + strip)] = dev.led_on if on else dev.led_off
        return out
