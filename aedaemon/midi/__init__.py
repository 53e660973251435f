"""MIDI bridge: controllers → the protocol's address table, in the daemon or standalone.

    MIDI port (rtmidi, JACK or ALSA) ─> Router (mapping: banks, toggles, ranges) ─> Host
        in the daemon:   EngineHost  → protocol.dispatch (same table, same echoes as OSC)
        standalone:      OscHost     → OSC over UDP to a daemon on another machine
    Router ─> LED states ─> controller's output port (external LED mode)

`DaemonMidi` is what the daemon starts when `[midi] enabled = true`; `register` adds
`aedaemon midi-bridge` to the CLI.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import AedaemonError, ParameterError
from .bridge import port_matches
from .mapping import DEFAULT_MAPPING, MAPPINGS_DIR, Mapping, MappingError, load_mapping, resolve_mapping_path

log = logging.getLogger("aedaemon.midi")

__all__ = ["DaemonMidi", "EngineHost", "Mapping", "MappingError", "load_mapping", "register"]


class MidiSource:
    """The `source` of MIDI actions in protocol.dispatch: no replies go back to it."""

    def __repr__(self) -> str:
        return "midi"


MIDI_SOURCE = MidiSource()


class EngineHost:
    """Router host inside the daemon: every action through protocol.dispatch, state read via /get."""

    def __init__(self, engine_getter: Callable[[], Any], services: Any) -> None:
        self.engine_getter = engine_getter
        self.services = services

    def _engine(self):
        e = self.engine_getter()
        if e is None:
            raise ParameterError("the engine is not running")
        return e

    def send(self, address: str, args: list) -> None:
        from .. import protocol

        protocol.dispatch(address, args, engine=self._engine(), services=self.services, source=MIDI_SOURCE)

    def get(self, address: str) -> Optional[tuple]:
        from .. import protocol

        try:
            replies, _ = protocol.dispatch("/get", [address], engine=self._engine(), services=self.services,
                                           source=MIDI_SOURCE)
        except AedaemonError:
            return None
        return tuple(replies[0].args) if replies else None

    def units(self) -> int:
        e = self.engine_getter()
        return e.bundle.meta.latent_size if e is not None else 0

    def latent_range(self) -> tuple[float, float]:
        return tuple(self._engine().bundle.meta.latent_range)  # type: ignore[return-value]

    def control_range(self) -> tuple[float, float]:
        return tuple(self._engine().bundle.meta.control_range)  # type: ignore[return-value]

    def default_latent(self, unit: int) -> float:
        return float(self._engine().bundle.meta.default_latent[unit])

    def record_active(self) -> Optional[bool]:
        rec = getattr(self.services, "recorder", None)
        active = getattr(rec, "active", None)
        return bool(active) if active is not None else None


def _setting(settings: Any, key: str, default: Any = None) -> Any:
    if settings is None:
        return default
    if isinstance(settings, dict):
        return settings.get(key, default)
    return getattr(settings, key, default)


def learn_file_for(mapping_spec: Optional[str], state_dir: Path) -> tuple[Path, Optional[str], Optional[Path]]:
    """(file learned bindings go to, shipped mapping it extends or None, overlay to load or None)."""
    path = resolve_mapping_path(mapping_spec or DEFAULT_MAPPING)
    if path.parent == MAPPINGS_DIR:
        overlay = Path(state_dir) / "midi" / f"{path.stem}.toml"
        return overlay, path.stem, overlay
    return path, None, None


class DaemonMidi:
    """The MIDI bridge inside the daemon.

    settings: the config's [midi] table (MidiConfig or a dict: port, mapping, backend);
    engine_getter: returns the current Engine (None while not started);
    services: the daemon's Services (dispatch, broadcast, recorder.active for the record LED);
    state_dir: where `midi/<mapping>.toml` keeps learned bindings for a shipped mapping.

    Raises MappingError (an AedaemonError: one line, exit 2) for a bad mapping file. No MIDI
    system or no matching port only logs a warning; start() never fails because of MIDI.
    """

    def __init__(self, settings: Any, engine_getter: Callable[[], Any], services: Any, state_dir: Path | str,
                 *, client_name: str = "aedaemon") -> None:
        from .bridge import MidiBridge
        from .learn import Learner
        from .router import Router

        self.services = services
        spec = _setting(settings, "mapping") or DEFAULT_MAPPING
        self.learn_file, extends, overlay = learn_file_for(spec, Path(state_dir))
        self.mapping = load_mapping(spec, overlay=overlay)
        self.host = EngineHost(engine_getter, services)
        self.router = Router(self.mapping, self.host)
        self.pattern = _setting(settings, "port") or self.mapping.device.port or ""
        self.bridge = MidiBridge(self.router, self.pattern, led_pattern=self.mapping.device.led_port,
                                 backend=_setting(settings, "backend"), client_name=client_name)
        self.learner = Learner(self.router, self.learn_file, extends=extends, on_learned=self._learned)
        log.info("MIDI mapping '%s' (%s%s), input port pattern '%s'", self.mapping.name, self.mapping.path,
                 f" + learned {overlay}" if overlay is not None and overlay.is_file() else "", self.pattern or "*")

    def start(self) -> None:
        self.bridge.start()

    def stop(self) -> None:
        self.bridge.stop()

    def restart_system(self) -> None:
        """The audio/MIDI server (jackd) came back after a loss: new MIDI clients on it."""
        self.bridge.restart_system()

    def reload(self, settings: Any, state_dir: Path | str) -> None:
        """SIGHUP: re-read the mapping (and learned overlay) and the port pattern, live.

        A bad mapping is logged and the current one kept (never fatal at run time); a changed
        backend takes effect after a restart.
        """
        from .learn import Learner

        spec = _setting(settings, "mapping") or DEFAULT_MAPPING
        try:
            learn_file, extends, overlay = learn_file_for(spec, Path(state_dir))
            mapping = load_mapping(spec, overlay=overlay)
        except AedaemonError as exc:
            log.error("MIDI mapping not reloaded: %s", exc)
            return
        self.mapping = mapping
        self.router.set_mapping(mapping)
        self.learn_file = learn_file
        self.learner = Learner(self.router, learn_file, extends=extends, on_learned=self._learned)
        pattern = _setting(settings, "port") or mapping.device.port or ""
        if pattern != self.pattern:
            self.pattern = pattern
            self.bridge.input.pattern = pattern
            name = self.bridge.input.port_name
            if name is not None and not port_matches(pattern, name):
                log.info("MIDI port pattern is now '%s': leaving '%s'", pattern or "*", name)
                self.bridge.input.release()
        log.info("MIDI mapping '%s' reloaded (%s)", mapping.name, mapping.path)

    def learn(self, address: str) -> None:
        """Services.midi_learn: arm learn (ParameterError → /fail for addresses no control can drive)."""
        self.learner.arm(address)

    def _learned(self, address: str, bind) -> None:
        from ..protocol import Reply
        from .learn import describe

        try:
            self.services.broadcast([Reply("/midi/learned", (address, describe(bind)))])
        except Exception:  # noqa: BLE001
            log.exception("broadcast /midi/learned")

    @property
    def messages(self) -> int:
        """MIDI messages received (the /status counter)."""
        return self.router.stats.messages

    def status(self) -> dict:
        s = self.router.stats
        return {"connected": self.bridge.connected, "port": self.bridge.input.port_name, "messages": s.messages,
                "actions": s.actions, "refused": s.refused, "unmapped": s.unmapped, "bank": self.router.bank,
                "reconnects": self.bridge.input.disconnects}


def register(subparsers) -> None:
    """`aedaemon midi-bridge`: the standalone bridge (cli.py calls this)."""
    from .standalone import add_parser

    add_parser(subparsers)
