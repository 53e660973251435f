"""`aedaemon midi-bridge --to osc.udp://HOST:9000`: a controller on one machine, the daemon on another.

The same Router and mapping as inside the daemon, but the actions leave as OSC messages over UDP
(python-osc). State the mapping needs ("from where it is" transposes, endless encoders, toggles
of /play and /mute, the LEDs) comes from the daemon itself: the bridge subscribes with
`/notify 1` (renewed every few seconds, so a restarted daemon is picked up again) and asks
`/get` for the state at start; echoes keep that copy current, including changes other clients
make. The bank and the record toggle are the bridge's own.

The model's latent range is not part of the protocol; `--latent-range LO HI` gives it for
mappings that scale onto "latent" (default 0 1, the sigmoid bottleneck of the shipped models).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from ..errors import AedaemonError
from .mapping import DEFAULT_MAPPING

log = logging.getLogger("aedaemon.midi")

RESUBSCRIBE_SECONDS = 5.0


def parse_target(text: str) -> tuple[str, int]:
    """osc.udp://HOST:PORT (liblo style) or HOST:PORT → (host, port)."""
    t = text.strip()
    if "://" in t:
        u = urlparse(t)
        if u.scheme not in ("osc.udp", "udp"):
            raise AedaemonError(f"--to {text}: only osc.udp:// is supported (got {u.scheme}://)")
        host, port = u.hostname, u.port
    else:
        host, _, p = t.rpartition(":")
        port = int(p) if p.isdigit() else None
    if not host or not port or not 0 < port < 65536:
        raise AedaemonError(f"--to {text}: expected osc.udp://HOST:PORT, e.g. osc.udp://192.168.1.20:9000")
    return host, int(port)


class OscHost:
    """Router host that sends OSC to a remote daemon and mirrors its state from /notify echoes."""

    def __init__(self, host: str, port: int, *, latent_range: tuple[float, float] = (0.0, 1.0),
                 control_range: Optional[tuple[float, float]] = None) -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise AedaemonError(f"cannot resolve {host}: {exc.strerror}") from None
        family, _, _, _, addr = infos[0]
        self.addr = addr
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        self.sock.settimeout(0.2)
        self._latent_range = latent_range
        self._control_range = control_range or latent_range
        self.cache: dict[str, tuple] = {}
        self.lock = threading.Lock()
        self._units: Optional[int] = None
        self.recording = False
        self.sent = 0
        self.received = 0
        self.refusals: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._rx: Optional[threading.Thread] = None
        self._units_known = threading.Event()
        self.last_reply = 0.0

    # ---- wire ----------------------------------------------------------------------------
    def _raw(self, address: str, args: list) -> None:
        from pythonosc.osc_message_builder import OscMessageBuilder

        b = OscMessageBuilder(address=address)
        for a in args:
            if isinstance(a, bool):
                b.add_arg(a)
            elif isinstance(a, int):
                b.add_arg(a, "i")
            elif isinstance(a, float):
                b.add_arg(a, "f")
            else:
                b.add_arg(str(a), "s")
        try:
            self.sock.sendto(b.build().dgram, self.addr)
            self.sent += 1
        except OSError as exc:
            log.warning("OSC send %s to %s failed: %s", address, self.addr, exc)

    def start(self, wait: float = 2.0) -> None:
        self._rx = threading.Thread(target=self._receive, name="osc-rx", daemon=True)
        self._rx.start()
        self._keepalive = threading.Thread(target=self._resubscribe, name="osc-notify", daemon=True)
        self._keepalive.start()
        if not self._units_known.wait(wait):
            log.warning("no answer from the daemon at %s:%d yet; assuming 8 units until it answers", *self.addr[:2])

    def close(self) -> None:
        self._stop.set()
        try:
            self._raw("/notify", [0])
        except Exception:  # noqa: BLE001
            pass
        for t in (self._rx, getattr(self, "_keepalive", None)):
            if t is not None:
                t.join(timeout=1.0)
        self.sock.close()

    def _query_all(self) -> None:
        for a in ("/latent", "/play", "/transpose", "/chroma", "/gain", "/glide", "/freq_shift", "/tilt"):
            self._raw("/get", [a])
        n = self._units
        if n:
            for i in range(n):
                self._raw("/get", [f"/scale/{i}"])
                self._raw("/get", [f"/mute/{i}"])

    def _resubscribe(self) -> None:
        while not self._stop.is_set():
            self._raw("/notify", [1])
            self._query_all()
            self._stop.wait(RESUBSCRIBE_SECONDS if self._units else 0.5)

    def _receive(self) -> None:
        from pythonosc.osc_packet import OscPacket, ParseError

        while not self._stop.is_set():
            try:
                data, _peer = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # ICMP port unreachable while the daemon is down
                continue
            try:
                msgs = OscPacket(data).messages
            except (ParseError, Exception):  # noqa: BLE001
                continue
            for tm in msgs:
                self._on_message(tm.message.address, tuple(tm.message.params))

    def _on_message(self, address: str, args: tuple) -> None:
        self.received += 1
        self.last_reply = time.monotonic()
        if address == "/fail":
            what = str(args[0]) if args else "?"
            reason = str(args[1]) if len(args) > 1 else ""
            self.refusals.append((what, reason))
            del self.refusals[:-50]
            log.info("daemon refused %s: %s", what, reason)
            return
        if address == "/done":
            if args and args[0] == "/record/start":
                self.recording = True
            elif args and args[0] == "/record/stop":
                self.recording = False
            return
        if address in ("/meter", "/synced", "/status.reply", "/version.reply", "/preset/list", "/model/list"):
            return
        with self.lock:
            if address == "/latent":
                self.cache["/latent"] = args
                for i, v in enumerate(args):
                    self.cache[f"/latent/{i}"] = (v,)
                first = self._units is None
                self._units = len(args)
                self._units_known.set()
                if first:
                    threading.Thread(target=self._query_all, daemon=True).start()
            else:
                self.cache[address] = args
                if address.startswith("/latent/") and "/latent" in self.cache:
                    try:
                        i = int(address.rsplit("/", 1)[1])
                        lat = list(self.cache["/latent"])
                        lat[i] = args[0]
                        self.cache["/latent"] = tuple(lat)
                    except (ValueError, IndexError):
                        pass

    # ---- Router Host ---------------------------------------------------------------------
    def send(self, address: str, args: list) -> None:
        from .. import protocol

        self._raw(address, list(args))
        entry, _ = protocol.resolve(address)
        with self.lock:  # optimistic: the echo confirms (or corrects) it a moment later
            if entry is not None and entry.kind == "state" and len(args) == 1 and address != "/chroma":
                self.cache[address] = (args[0],)
            elif address in ("/stop", "/panic"):
                self.cache["/play"] = (0,)

    def get(self, address: str) -> Optional[tuple]:
        with self.lock:
            return self.cache.get(address)

    def units(self) -> int:
        return self._units or 8

    def latent_range(self) -> tuple[float, float]:
        return self._latent_range

    def control_range(self) -> tuple[float, float]:
        return self._control_range

    def default_latent(self, unit: int) -> float:
        lo, hi = self._latent_range
        return (lo + hi) / 2.0

    def record_active(self) -> Optional[bool]:
        return self.recording


def add_parser(sub) -> None:
    p = sub.add_parser(
        "midi-bridge",
        help="standalone MIDI bridge: a controller here, OSC to a daemon elsewhere",
        description="Read a MIDI controller through a mapping file and send the actions as OSC "
        "to an aedaemon on this or another machine (the in-daemon bridge is [midi] in the config).",
    )
    p.add_argument("--to", required=True, metavar="osc.udp://HOST:PORT", help="the daemon, e.g. osc.udp://10.0.0.5:9000")
    p.add_argument("--port", default=None, metavar="PATTERN",
                   help="MIDI input port name pattern (fnmatch, case-insensitive; default: the mapping's)")
    p.add_argument("--mapping", default=DEFAULT_MAPPING, help="shipped mapping name or a TOML file (default: %(default)s)")
    p.add_argument("--backend", choices=["jack", "alsa"], help="MIDI system (default: JACK if running, else ALSA)")
    p.add_argument("--latent-range", nargs=2, type=float, default=(0.0, 1.0), metavar=("LO", "HI"),
                   help="the model's latent range for faders scaled onto it (default 0 1)")
    p.add_argument("--learn", metavar="ADDRESS", help="bind the first control moved to ADDRESS and save it")
    p.add_argument("--learn-file", type=Path,
                   help="where learned bindings go for a shipped mapping (default ~/.config/aedaemon/midi/NAME.toml)")
    p.add_argument("--client-name", default="aedaemon-bridge", help="MIDI client name (default: %(default)s)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    p.set_defaults(func=cmd_midi_bridge)


def _config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "aedaemon"


def cmd_midi_bridge(args: argparse.Namespace) -> int:
    from . import learn_file_for
    from .bridge import MidiBridge
    from .learn import Learner, check_learnable
    from .mapping import load_mapping
    from .router import Router

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host_name, port = parse_target(args.to)
    lo, hi = args.latent_range
    if not lo < hi:
        raise AedaemonError(f"--latent-range {lo:g} {hi:g}: LO must be below HI")
    learn_file, extends, overlay = learn_file_for(args.mapping, _config_home())
    if args.learn_file is not None:
        learn_file = args.learn_file
        overlay = learn_file if extends else None
    mapping = load_mapping(args.mapping, overlay=overlay)
    if args.learn:
        check_learnable(args.learn)
    host = OscHost(host_name, port, latent_range=(lo, hi))
    router = Router(mapping, host)
    pattern = args.port if args.port is not None else (mapping.device.port or "")
    learner = Learner(router, learn_file, extends=extends)
    if args.learn:
        learner.arm(args.learn)
    bridge = MidiBridge(router, pattern, led_pattern=mapping.device.led_port, backend=args.backend,
                        client_name=args.client_name)
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host.start()
    bridge.start()
    print(f"aedaemon midi-bridge ready to={host_name}:{port} mapping={mapping.name} pattern={pattern or '*'}",
          flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        bridge.stop()
        host.close()
        s = router.stats
        log.info("midi-bridge stopped: %d MIDI messages, %d actions sent, %d refused", s.messages, s.actions,
                 len(host.refusals))
    return 0
