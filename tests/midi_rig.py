"""A MIDI test rig on the jackd dummy server: virtual JACK MIDI ports (python-rtmidi) that stand
in for a Korg nanoKONTROL2, and a small real Services class that records what the protocol asks
of it. Nothing is mocked but the physical controller."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import rtmidi

from aedaemon.errors import ParameterError
from daemon_harness import ensure_jackd

_ids = itertools.count()


def wait_until(pred: Callable[[], bool], timeout: float = 2.0, step: float = 0.002) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


class NanoKontrol2:
    """The controller: an output port named like the real one ("nanoKONTROL2 SLIDER/KNOB") and,
    for LED feedback, an input port standing in for the device's own MIDI input ("CTRL")."""

    # factory scene CCs (docs/nanokontrol2.md)
    FADER, KNOB, S, M, R = 0, 16, 32, 48, 64
    PLAY, STOP, REW, FF, REC, CYCLE = 41, 42, 43, 44, 45, 46
    TRACK_PREV, TRACK_NEXT, MARKER_SET, MARKER_PREV, MARKER_NEXT = 58, 59, 60, 61, 62

    def __init__(self, client: str = "nanoKONTROL2", leds: bool = True, channel: int = 1) -> None:
        ensure_jackd()
        self.client = client
        self.channel = channel
        self.out: Optional[rtmidi.MidiOut] = None
        self.leds_in: Optional[rtmidi.MidiIn] = None
        self.leds: list[tuple[int, int, int]] = []
        self._lock = threading.Lock()
        self.plug()
        if leds:
            self.leds_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client)
            self.leds_in.open_virtual_port("nanoKONTROL2 CTRL")
            self.leds_in.set_callback(self._on_led)

    def _on_led(self, event, _data=None) -> None:
        msg, _ = event
        with self._lock:
            self.leds.append(tuple(msg))

    def led(self, cc: int) -> Optional[int]:
        """The last value sent to this LED, or None."""
        with self._lock:
            for status, num, value in reversed(self.leds):
                if status & 0xF0 == 0xB0 and num == cc:
                    return value
        return None

    def plug(self) -> None:
        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=self.client)
        self.out.open_virtual_port("nanoKONTROL2 SLIDER/KNOB")

    def unplug(self) -> None:
        if self.out is not None:
            self.out.close_port()
            self.out.delete()
            self.out = None

    def cc(self, number: int, value: int) -> None:
        self.out.send_message([0xB0 | (self.channel - 1), number, value])

    def press(self, number: int) -> None:
        """A button: 127 on press, 0 on release (momentary), as the device sends."""
        self.cc(number, 127)
        self.cc(number, 0)

    def send(self, msg: list[int]) -> None:
        self.out.send_message(msg)

    def close(self) -> None:
        self.unplug()
        if self.leds_in is not None:
            # the callback first: JACK's thread may still be delivering LED feedback (a close
            # with the callback set segfaulted once in teardown), as the bridge itself does
            self.leds_in.cancel_callback()
            self.leds_in.close_port()
            self.leds_in.delete()
            self.leds_in = None


class _Recording:
    def __init__(self) -> None:
        self.active = False


class RecordingServices:
    """What the daemon's Services do, minus sockets and disk: records every call."""

    def __init__(self, presets: tuple[str, ...] = (), allow_quit: bool = False) -> None:
        self.echoes: list = []
        self.calls: list[tuple] = []
        self.presets = set(presets)
        self.allow_quit = allow_quit
        self.recorder = _Recording()
        self.learn_hook: Optional[Callable[[str], None]] = None
        self._lock = threading.Lock()

    def broadcast(self, replies) -> None:
        with self._lock:
            self.echoes.extend((r.address, tuple(r.args)) for r in replies)

    def echoed(self, address: str) -> list[tuple]:
        with self._lock:
            return [args for a, args in self.echoes if a == address]

    def preset_load(self, name: str, morph: float) -> None:
        if name not in self.presets:
            raise ParameterError(f"no preset named '{name}'")
        self.calls.append(("preset_load", name))

    def record_start(self, name) -> str:
        if self.recorder.active:
            raise ParameterError("already recording")
        self.recorder.active = True
        self.calls.append(("record_start", name))
        return "take.wav"

    def record_stop(self) -> str:
        if not self.recorder.active:
            raise ParameterError("not recording")
        self.recorder.active = False
        self.calls.append(("record_stop",))
        return "take.wav"

    def midi_learn(self, address: str) -> None:
        self.calls.append(("midi_learn", address))
        if self.learn_hook is not None:
            self.learn_hook(address)

    def quit(self) -> None:
        if not self.allow_quit:
            raise ParameterError("/quit is disabled (set allow_quit = true in the config)")
        self.calls.append(("quit",))

    def status(self) -> list:
        return []


def state_dir(tmp: Path) -> Path:
    d = Path(tmp) / f"state{next(_ids)}"
    d.mkdir(parents=True, exist_ok=True)
    return d
