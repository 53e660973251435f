"""MIDI transport: open the controller's ports by name pattern, follow hot-plug, send LED feedback.

python-rtmidi on JACK (the JACK MIDI graph; on a desktop, a2jmidid bridges ALSA hardware into
it) or on the ALSA sequencer. On ALSA, input arrives on RtMidi's own thread and goes straight
to the Router. On JACK, RtMidi would run a callback on the JACK process thread, where a Python
callback waits for the GIL inside the audio graph's cycle (the daemon's own audio client shares
that graph); so JACK input is left in RtMidi's lock-free queue and drained by our own thread,
every 1 ms while the controller moves and every 4 ms after 2 s of stillness.

An unterminated SysEx (F0 01 02 and no F7) makes RtMidi's JACK input hold every later message
as part of the SysEx until an F7 arrives: input goes deaf. So the bridge receives SysEx
(instead of asking RtMidi to drop it), connects a port of its own to its input and sends a lone
F7 there every 0.1 s: a SysEx left open is closed within 0.1 s, and the messages it held are
split out of it and applied by the Router (logged), none lost.

A poll thread (every 0.5 s) compares the port list with what is open: a vanished port is
closed and logged, a returning (or first appearing) port is opened and logged, so the bridge
reconnects within about half a second of the port coming back. Nothing here raises into the
caller: no MIDI system, no matching port, a port that dies are all log lines.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from typing import Any, Callable, Optional

from .router import Router

log = logging.getLogger("aedaemon.midi")

POLL_SECONDS = 0.5
LED_SECONDS = 0.05
SYSTEM_RETRY = 5.0  # seconds between attempts to reach a missing JACK server / ALSA sequencer
ACTIVE_POLL = 0.001  # polled (JACK) input: sleep between polls while the controller moves
IDLE_POLL = 0.004  # ... and when it has been still for 2 s
SYSEX_KICK = 0.1  # seconds between the lone F7s that close a SysEx left open (JACK input)
_GLOB = set("*?[")


def port_matches(pattern: str, name: str) -> bool:
    """fnmatch (case-insensitive) on the whole port name or on the part after 'client:'.

    A pattern without wildcards matches as a substring, so `nanoKONTROL2`, `nanoKONTROL2*` and
    `*nanoKONTROL2*` all find "nanoKONTROL2:nanoKONTROL2 SLIDER/KNOB" and the a2jmidid name
    "a2j:nanoKONTROL2 [24] (capture): nanoKONTROL2 MIDI 1". An empty pattern matches any port.
    """
    if not pattern:
        return True
    p = pattern.lower()
    n = name.lower()
    if not (_GLOB & set(p)):
        return p in n
    candidates = [n]
    if ":" in n:
        candidates.append(n.split(":", 1)[1].strip())
    return any(fnmatch.fnmatchcase(c, p) for c in candidates)


def pick_port(pattern: str, ports: list[str], exclude_client: str = "") -> Optional[int]:
    for i, name in enumerate(ports):
        if exclude_client and name.split(":", 1)[0].startswith(exclude_client):
            continue  # our own ports (the LED output, another bridge of ours)
        if port_matches(pattern, name):
            return i
    return None


def api_for(backend: Optional[str]):
    """Config `backend` → rtmidi API list to try: 'jack', 'alsa', mido-style
    'mido.backends.rtmidi/UNIX_JACK', or None (JACK first, then ALSA)."""
    import rtmidi

    table = {"jack": rtmidi.API_UNIX_JACK, "unix_jack": rtmidi.API_UNIX_JACK,
             "alsa": rtmidi.API_LINUX_ALSA, "linux_alsa": rtmidi.API_LINUX_ALSA}
    if backend:
        key = backend.rsplit("/", 1)[-1].lower()
        if key not in table:
            raise ValueError(f"unknown MIDI backend '{backend}' (use jack or alsa)")
        return [table[key]]
    compiled = rtmidi.get_compiled_api()
    return [a for a in (rtmidi.API_UNIX_JACK, rtmidi.API_LINUX_ALSA) if a in compiled]


def list_ports(backend: Optional[str] = None) -> dict[str, dict[str, list[str]]]:
    """{api name: {"inputs": [...], "outputs": [...]}} for every MIDI system that answers."""
    import rtmidi

    out: dict[str, dict[str, list[str]]] = {}
    for api in api_for(backend):
        if api == rtmidi.API_LINUX_ALSA and not os.path.exists("/dev/snd/seq"):
            continue  # no sequencer: ALSA would only print its own error on stderr
        try:
            mi, mo = rtmidi.MidiIn(api), rtmidi.MidiOut(api)
        except Exception:  # noqa: BLE001 - no JACK server, no ALSA sequencer: nothing to list
            continue
        try:
            out[rtmidi.get_api_display_name(api)] = {"inputs": mi.get_ports(), "outputs": mo.get_ports()}
        finally:
            mi.delete()
            mo.delete()
    return out


class _Endpoint:
    """One rtmidi MidiIn or MidiOut kept connected to the first port matching a pattern."""

    def __init__(self, kind: str, pattern: str, client_name: str, backend: Optional[str],
                 on_open: Callable[["_Endpoint"], None], on_close: Callable[["_Endpoint"], None]) -> None:
        self.kind = kind  # 'input' | 'output'
        self.pattern = pattern
        self.client_name = client_name
        self.backend = backend
        self.on_open = on_open
        self.on_close = on_close
        self.obj: Any = None
        self.api: Optional[int] = None
        self.lock = threading.Lock()  # held around open/close and while draining input
        self.port_name: Optional[str] = None
        self.lost_name: Optional[str] = None
        self._warned_none = False
        self._warned_system = False
        self._next_try = 0.0  # when the MIDI system was missing: next attempt (every 5 s)
        self.connects = 0
        self.disconnects = 0
        # our own port's name: unique, so that the SysEx kick finds this input among JACK's
        self.own_port = f"in-{os.getpid()}" if kind == "input" else "out"

    def _create(self) -> bool:
        import rtmidi

        if self.obj is not None:
            return True
        if time.monotonic() < self._next_try:
            return False
        errors = []
        try:
            apis = api_for(self.backend)
        except ValueError as exc:
            if not self._warned_system:
                log.warning("MIDI %s: %s", self.kind, exc)
                self._warned_system = True
            return False
        for api in apis:
            try:
                cls = rtmidi.MidiIn if self.kind == "input" else rtmidi.MidiOut
                self.obj = cls(api, name=self.client_name)
                self.api = api
                if self.kind == "input":
                    # SysEx is received (the Router ignores it): dropping it in RtMidi would also
                    # drop everything after an unterminated one (see the module docstring)
                    self.obj.ignore_types(sysex=False, timing=True, active_sense=True)
                if self._warned_system:
                    log.info("MIDI %s: MIDI system available again (%s)", self.kind, rtmidi.get_api_name(api))
                self._warned_system = False
                return True
            except Exception as exc:  # noqa: BLE001 — rtmidi.SystemError etc.
                errors.append(f"{rtmidi.get_api_name(api)}: {exc}")
        self._next_try = time.monotonic() + SYSTEM_RETRY
        if not self._warned_system:
            log.warning("MIDI %s: no MIDI system available (%s); the bridge tries again every 5 s",
                        self.kind, "; ".join(errors) or "rtmidi has no JACK or ALSA support")
            self._warned_system = True
        return False

    def poll(self) -> None:
        if not self._create():
            return
        try:
            ports = self.obj.get_ports()
        except Exception as exc:  # noqa: BLE001
            log.warning("MIDI %s: cannot list ports: %s", self.kind, exc)
            self._drop_system()
            return
        if self.port_name is not None:
            if self.port_name in ports:
                return
            log.warning("MIDI %s '%s' disappeared (unplugged?); reconnecting when it returns", self.kind, self.port_name)
            self.lost_name = self.port_name
            self._close_port()
            self.disconnects += 1
            self.on_close(self)
        idx = None
        if self.lost_name is not None and self.lost_name in ports:
            idx = ports.index(self.lost_name)
        if idx is None:
            idx = pick_port(self.pattern, ports, self.client_name.split("-")[0])
        if idx is None:
            if not self._warned_none and self.lost_name is None:
                log.warning("MIDI %s: no port matches '%s' (available: %s); will connect when one appears",
                            self.kind, self.pattern or "*",
                            ", ".join(p for p in ports if not p.startswith(self.client_name.split("-")[0] + ":"))
                            or "none")
                self._warned_none = True
            return
        name = ports[idx]
        try:
            with self.lock:
                self.obj.open_port(idx, self.own_port)
                self.port_name = name
        except Exception as exc:  # noqa: BLE001
            log.warning("MIDI %s: cannot open '%s': %s", self.kind, name, exc)
            return
        self.connects += 1
        self._warned_none = False
        if self.lost_name is not None:
            log.warning("MIDI %s '%s' is back: reconnected", self.kind, name)
        else:
            log.info("MIDI %s connected: '%s'", self.kind, name)
        self.lost_name = None
        self.on_open(self)

    def _close_port(self) -> None:
        with self.lock:
            try:
                if self.kind == "input":
                    self.obj.cancel_callback()
                self.obj.close_port()
            except Exception:  # noqa: BLE001
                pass
            self.port_name = None

    def release(self) -> None:
        """Close the port on purpose (a new pattern): the next poll picks a matching one."""
        if self.port_name is not None:
            self._close_port()
            self.lost_name = None
            self.on_close(self)

    def _drop_system(self) -> None:
        self._close_port()
        with self.lock:
            try:
                self.obj.delete()
            except Exception:  # noqa: BLE001
                pass
            self.obj = None

    def drain(self, handle: Callable[[list], None]) -> int:
        """Hand every queued input message to `handle` (polled input); returns how many."""
        n = 0
        with self.lock:
            if self.obj is None or self.port_name is None:
                return 0
            while True:
                try:
                    item = self.obj.get_message()
                except Exception:  # noqa: BLE001
                    return n
                if not item:
                    return n
                handle(item[0])
                n += 1

    def close(self) -> None:
        if self.obj is not None:
            self._drop_system()

    def abandon(self) -> None:
        """The MIDI system went away under us (jackd restarted): forget the client without
        waiting for it — closing a client of a dead JACK server can block for good — so the next
        poll creates a new one and reconnects to the port we had."""
        obj, self.obj = self.obj, None
        if self.port_name is not None:
            self.lost_name = self.port_name
            self.port_name = None
            self.disconnects += 1
            self.on_close(self)
        if obj is not None:
            def release() -> None:
                try:
                    obj.delete()
                except Exception:  # noqa: BLE001
                    pass

            threading.Thread(target=release, name="midi-release", daemon=True).start()


class MidiBridge:
    """Input (and optional LED output) ports for one Router, kept connected by a poll thread."""

    def __init__(self, router: Router, pattern: str, *, led_pattern: Optional[str] = None,
                 backend: Optional[str] = None, client_name: str = "aedaemon",
                 poll_seconds: float = POLL_SECONDS, led_seconds: float = LED_SECONDS) -> None:
        self.router = router
        self.pattern = pattern
        self.poll_seconds = poll_seconds
        self.led_seconds = led_seconds
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._in_thread: Optional[threading.Thread] = None
        self._out_lock = threading.Lock()
        self._led_sent: dict[tuple[int, int], int] = {}
        self.leds_sent = 0
        self._kick: Any = None  # JACK: a MidiOut connected to our own input (lone F7s)
        self._restart = threading.Event()  # restart_system(): new clients at the next poll
        self._kick_lock = threading.Lock()
        self._client_name = client_name
        self.input = _Endpoint("input", pattern, client_name, backend, self._input_opened, self._input_closed)
        self.output: Optional[_Endpoint] = None
        if led_pattern is not None and router.mapping.leds:
            self.output = _Endpoint("output", led_pattern, client_name + "-leds", backend,
                                    self._output_opened, self._output_closed)

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._poll_ports()  # connect at once when the controller is there
        self._thread = threading.Thread(target=self._loop, name="midi-ports", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for t in (self._thread, self._in_thread):
            if t is not None:
                t.join(timeout=2.0)
        if self.output is not None and self.output.port_name is not None:
            self._send_leds(all_off=True)
        self.input.close()
        if self.output is not None:
            self.output.close()
        with self._kick_lock:
            if self._kick is not None:
                try:
                    self._kick.close_port()
                    self._kick.delete()
                except Exception:  # noqa: BLE001
                    pass
                self._kick = None

    @property
    def connected(self) -> bool:
        return self.input.port_name is not None

    def restart_system(self) -> None:
        """The JACK server was restarted (the audio output saw it go and come back): our rtmidi
        clients belong to the dead one. Replace them at the next poll, from the poll thread."""
        self._restart.set()

    def _poll_ports(self) -> None:
        if self._restart.is_set():
            self._restart.clear()
            log.warning("MIDI: the MIDI system was restarted; reconnecting with new clients")
            for ep in (self.input, self.output):
                if ep is not None:
                    with ep.lock:
                        ep.abandon()
            with self._kick_lock:
                self._kick = None  # its server is gone too (never closed: it could block)
        try:
            self.input.poll()
            if self.output is not None:
                self.output.poll()
        except Exception:  # noqa: BLE001
            log.exception("MIDI port poll")

    def _loop(self) -> None:
        next_poll = time.monotonic() + self.poll_seconds
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + self.poll_seconds
                self._poll_ports()
            if self.output is not None and self.output.port_name is not None:
                self._send_leds()
            if self._restart.is_set():
                next_poll = time.monotonic()
                continue
            self._stop.wait(min(self.led_seconds, max(0.005, next_poll - time.monotonic())))

    # ---- input -------------------------------------------------------------------------
    def _on_midi(self, event, _data=None) -> None:
        msg, _delta = event
        self.router.handle(msg)
        if self.output is not None and self.output.port_name is not None:
            self._send_leds()

    def _input_opened(self, ep: _Endpoint) -> None:
        import rtmidi

        if ep.api == rtmidi.API_UNIX_JACK:
            # RtMidi calls a JACK input callback on the JACK process thread: a Python callback
            # there waits for the GIL inside the audio graph's cycle. Poll rtmidi's queue from
            # our own thread instead (1 ms while the controller is moving, 4 ms when idle).
            self._connect_kick()
            if self._in_thread is None:
                self._in_thread = threading.Thread(target=self._poll_input, name="midi-in", daemon=True)
                self._in_thread.start()
        else:  # ALSA: RtMidi's own thread runs the callback
            ep.obj.set_callback(self._on_midi)

    def _connect_kick(self) -> None:
        """A JACK output port of ours connected to our own input (again after each reopen)."""
        import rtmidi

        with self._kick_lock:
            try:
                if self._kick is None:
                    self._kick = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=self._client_name + "-sysex")
                else:
                    self._kick.close_port()
                dests = self._kick.get_ports()
                want = ":" + self.input.own_port
                idx = next((k for k, p in enumerate(dests) if p.endswith(want)), None)
                if idx is None:
                    log.warning("MIDI input: cannot find our own port %s to guard against unterminated SysEx", want)
                    return
                self._kick.open_port(idx, "sysex-close")
            except Exception as exc:  # noqa: BLE001
                log.warning("MIDI input: no SysEx guard (%s)", exc)

    def _send_kick(self) -> None:
        with self._kick_lock:
            if self._kick is not None:
                try:
                    self._kick.send_message([0xF7])
                except Exception:  # noqa: BLE001
                    pass

    def _poll_input(self) -> None:
        last = 0.0
        next_kick = 0.0
        handle = self.router.handle
        while not self._stop.is_set():
            n = self.input.drain(handle)
            now = time.monotonic()
            if n:
                last = now
                if self.output is not None and self.output.port_name is not None:
                    self._send_leds()
            if now >= next_kick:
                next_kick = now + SYSEX_KICK
                self._send_kick()
            time.sleep(ACTIVE_POLL if now - last < 2.0 else IDLE_POLL)

    def _input_closed(self, ep: _Endpoint) -> None:
        pass

    # ---- LED feedback --------------------------------------------------------------------
    def _output_opened(self, ep: _Endpoint) -> None:
        with self._out_lock:
            self._led_sent.clear()  # a (re)plugged controller has all LEDs off: send everything
        self._send_leds()

    def _output_closed(self, ep: _Endpoint) -> None:
        with self._out_lock:
            self._led_sent.clear()

    def _send_leds(self, all_off: bool = False) -> None:
        out = self.output
        if out is None or out.obj is None:
            return
        try:
            states = self.router.led_states()
        except Exception:  # noqa: BLE001
            log.exception("MIDI LED states")
            return
        off = self.router.mapping.device.led_off
        with self._out_lock:
            for (ch, cc), value in states.items():
                if all_off:
                    value = off
                if self._led_sent.get((ch, cc)) == value:
                    continue
                try:
                    out.obj.send_message([0xB0 | (ch - 1), cc, value])
                except Exception as exc:  # noqa: BLE001
                    log.debug("MIDI LED send failed: %s", exc)
                    return
                self._led_sent[(ch, cc)] = value
                self.leds_sent += 1
