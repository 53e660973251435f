"""MIDI learn: `/midi/learn /latent/3`, then move a control; the binding is live at once and saved.

The binding goes to the user's mapping file, written atomically (temp file, fsync, rename,
fsync of the directory): the mapping file itself when the config names a file, otherwise an
overlay `<state_dir>/midi/<mapping>.toml` that `extends` the shipped mapping and is loaded on
top of it at the next start. A learned binding shadows whatever the mapping bound to the same
control (same kind, number and channel); learning the same control again replaces it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Optional

from ..errors import ParameterError
from ..files import atomic_write
from .mapping import Bind, Device, MappingFile, dump_mapping, parse_mapping, same_control
from .router import Event, Router

log = logging.getLogger("aedaemon.midi")

# ranges a learned continuous control sweeps (absolute CC / velocity / pitch bend)
LEARN_RANGES: dict[str, object] = {
    "/latent/": "latent",
    "/scale/": [0.0, 2.0],
    "/transpose": [-24.0, 24.0],
    "/gain": [0.0, 2.0],
    "/glide": [0.0, 5.0],
    "/tilt": [-12.0, 12.0],
    "/chroma": [0.0, 11.0],
    "/freq_shift": [-64.0, 64.0],
}
INTEGER = ("/chroma", "/freq_shift")
TOGGLES = ("/mute/", "/play")
PITCHBEND_SEMITONES = 2.0


def _prefix(address: str, table) -> Optional[str]:
    for p in table:
        if address == p or (p.endswith("/") and address.startswith(p)):
            return p
    return None


def check_learnable(address: str) -> None:
    """Refuse at once (/fail) what no single control can drive."""
    from .. import protocol

    entry, _ = protocol.resolve(address)
    if entry is None:
        raise ParameterError(f"unknown address '{address[:64]}'")
    if address == "/latent":
        raise ParameterError("/latent sets every unit; learn /latent/{i} for one unit")
    if address == "/note_off":
        raise ParameterError("learn /note: a keyboard's note-offs come with it")
    if entry.kind not in ("state", "action"):
        raise ParameterError(f"'{address}' cannot be bound to a MIDI control")


def binding_for(address: str, ev: Event) -> Optional[Bind]:
    """The binding a move of this control makes for this address (None: move ignored)."""
    ch = ev.channel
    src: dict = {"cc": ev.number} if ev.kind == "cc" else {"pitchbend": True} if ev.kind == "pitchbend" else {"note": ev.number}
    name = f"learned {address}"
    if ev.kind == "note_off":
        return None
    if address == "/note":
        if ev.kind != "note_on":
            return None
        return Bind(name=name, note=[0, 127], channel=ch, mode="note", learned=True)
    rng_key = _prefix(address, LEARN_RANGES)
    if _prefix(address, TOGGLES) and ev.kind != "pitchbend":
        return Bind(name=name, channel=ch, mode="toggle", address=address, learned=True, **src)
    if rng_key is not None:
        rng = LEARN_RANGES[rng_key]
        if ev.kind == "pitchbend" and address == "/transpose":
            return Bind(name=name, channel=ch, mode="offset", address=address,
                        range=[-PITCHBEND_SEMITONES, PITCHBEND_SEMITONES], learned=True, **src)
        return Bind(name=name, channel=ch, mode="absolute", address=address, range=rng,
                    integer=rng_key in INTEGER, learned=True, **src)
    if _prefix(address, TOGGLES):  # pitch bend on a toggle: a switch at the centre
        return Bind(name=name, channel=ch, mode="absolute", address=address, range=[0, 1], integer=True,
                    learned=True, **src)
    if ev.kind == "pitchbend":
        return None
    return Bind(name=name, channel=ch, mode="momentary", address=address, learned=True, **src)


def describe(b: Bind) -> str:
    ch = f"channel {b.channel}"
    if b.cc is not None:
        return f"CC {b.cc} {ch}"
    if b.pitchbend:
        return f"pitch bend {ch}"
    if isinstance(b.note, list):
        return f"notes {b.note[0]}..{b.note[1]} {ch}"
    return f"note {b.note} {ch}"


class Learner:
    def __init__(self, router: Router, file: Path, *, extends: Optional[str] = None,
                 on_learned: Optional[Callable[[str, Bind], None]] = None) -> None:
        self.router = router
        self.file = Path(file)
        self.extends = extends
        self.on_learned = on_learned
        self.pending: Optional[str] = None
        self.lock = threading.Lock()
        self.learned = 0
        router.learn_hook = self._hook

    def arm(self, address: str) -> None:
        check_learnable(address)
        with self.lock:
            self.pending = address
        log.info("MIDI learn: move a control to bind it to %s", address)

    def cancel(self) -> None:
        with self.lock:
            self.pending = None

    def _hook(self, ev: Event) -> bool:
        with self.lock:
            address = self.pending
            if address is None:
                return False
            bind = binding_for(address, ev)
            if bind is None:
                return True  # a note-off or a control this address cannot use: keep waiting
            try:
                self.save(bind)
            except Exception as exc:  # noqa: BLE001 — disk full, read-only: still bind, say so
                log.error("MIDI learn: cannot save %s to %s: %s (bound until restart)", address, self.file, exc)
            self.router.add_binding(bind)
            self.pending = None
            self.learned += 1
        log.info("MIDI learn: %s bound to %s (saved to %s)", describe(bind), address, self.file)
        if self.on_learned is not None:
            try:
                self.on_learned(address, bind)
            except Exception:  # noqa: BLE001
                log.exception("MIDI learn callback")
        return True

    def save(self, bind: Bind) -> None:
        """Add the binding to the file (replacing learned bindings of the same control), atomically."""
        if self.file.is_file():
            data = parse_mapping(self.file)
        else:
            data = MappingFile(device=Device(extends=self.extends, name=f"{self.extends or 'user'} (learned)"))
        keep = [b for b in data.bind if not (b.learned and same_control(b, bind))]
        data = data.model_copy(update={"bind": keep + [bind]})
        header = ("MIDI mapping with bindings made by /midi/learn (aedaemon); edit freely.\n"
                  + (f"Adds to the shipped mapping '{self.extends}'; these bindings win on their controls."
                     if data.device.extends else ""))
        atomic_write(self.file, dump_mapping(data, header=header))
