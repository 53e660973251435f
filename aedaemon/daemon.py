"""`aedaemon run`: wiring and lifecycle of the daemon.

    config ─> model ─> Engine ─> AudioOutput (render thread + PortAudio callback / null clock)
                          ^            └─ Recorder tap
    OscServer (network thread) ─> protocol.dispatch ─> Engine (post / post_at on the audio clock)
                                         └─> Services (this module): presets, models, recording,
                                             status, subscribers, sync, quit
    housekeeping thread: /meter to subscribers, last-state saves, systemd watchdog
    session thread: preset writes and deletes, model loads (in arrival order, off the network thread)

Signals: SIGTERM/SIGINT save the state, fade out and exit 0 (well within 2 s); SIGHUP re-reads
the configuration and applies what can change live. systemd: READY=1 once OSC answers and
audio runs, WATCHDOG=1 only while the audio path moves, STOPPING=1 on the way out.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

from . import __version__
from .audio import open_output
from .config import Config, load_config
from .errors import AedaemonError, ParameterError
from .model import list_models, load_bundle
from .logutil import RateLimitedLog
from .osc import OscServer, Peer, TokenBucket
from .oscwire import Parsed, encode_message, unix_from_ntp
from .presets import PresetStore, StateLock, check_name
from .protocol import ScheduleBudget, is_name
from .recorder import Recorder, repair_recordings
from .systemd import SdNotify, setup_logging

log = logging.getLogger("aedaemon")

STOP_FADE_SECONDS = 0.06
# file and model operations one packet may ask for (a bundle of 1,900 /preset/save held the
# network thread for 1.2 s); the rest of the packet's are refused
MAX_SESSION_PER_PACKET = 16
# a UDP subscriber is dropped once ICMP errors for it have gone on for this long (a port that
# starts listening a moment after subscribing, liblo's oscdump, Max's [udpreceive], is kept)
UNREACHABLE_FOR = 2.0
UNREACHABLE_PAUSE = 5.0  # a pause this long between errors starts the count again (LAN ICMP: ~1/s)
SESSION_QUEUE = 256  # file and model operations waiting for the session thread
_SESSION_ADDRESSES = frozenset({"/preset/save", "/preset/load", "/preset/delete", "/preset/list", "/model/load",
                                "/model/list", "/record/start", "/record/stop"})
# replies and echoes: what a daemon sends. Received, they are never answered (two daemons, or a
# daemon and its own echo, must not ping-pong /fail for ever)
_REPLY_ADDRESSES = frozenset({"/fail", "/done", "/synced", "/status.reply", "/version.reply", "/midi/learned"})
_REPLY_WITH_ARGS = frozenset({"/meter", "/preset/list", "/model/list"})  # requests take no arguments
# addresses that act on arrival whatever their timetag: they schedule nothing
_UNTIMED = frozenset({"/get", "/status", "/version", "/meter", "/sync", "/notify", "/preset/list", "/model/list",
                      "/preset/delete", "/midi/learn", "/quit"})


# ------------------------------------------------------------------------------ arguments


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `aedaemon run`; each (but --config/--fresh) overrides the config key of the same name."""
    p.add_argument("--config", metavar="FILE", help="TOML config (default /etc/aedaemon/aedaemon.toml if present)")
    p.add_argument("--model", help="model name in models_dir, or a model folder")
    p.add_argument("--port", type=int, help="UDP and TCP port (default 9000; 0 = any free port)")
    p.add_argument("--listen", help="address to bind (default 127.0.0.1)")
    p.add_argument("--allow", help="comma-separated networks allowed to connect (needed when --listen is not loopback)")
    p.add_argument("--audio", choices=["portaudio", "null", "auto"],
                   help="portaudio (default), null (software clock) or auto (null with a warning when no device)")
    p.add_argument("--device", help="output device index or name")
    p.add_argument("--block", type=int, help="audio block in frames (default 256)")
    p.add_argument("--hop", type=int, help="synthesis hop (default: the model's)")
    p.add_argument("--render-ahead", type=int, metavar="SAMPLES",
                   help="samples kept rendered beyond one block (default: one block with real-time scheduling, else one hop)")
    p.add_argument("--phase", help="phase reconstruction: rtpghi (default), noise, canne")
    p.add_argument("--precision", choices=["auto", "float32", "int8"],
                   help="decoder: auto (default: int8 when the model has one), float32, int8")
    p.add_argument("--state-dir", help="presets and last state (default ./state)")
    p.add_argument("--models-dir", help="model bundles (default ./models)")
    p.add_argument("--recordings-dir", help="WAV recordings (default ./recordings)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--allow-quit", action="store_const", const=True, default=None, help="honour /quit")
    p.add_argument("--fresh", action="store_true", help="ignore the saved last state")


_CLI_KEYS = ("model", "port", "listen", "allow", "device", "block", "hop", "render_ahead", "phase", "precision", "state_dir",
             "models_dir", "recordings_dir", "log_level", "allow_quit")


def _cli_overrides(args: argparse.Namespace) -> dict:
    out = {k: getattr(args, k, None) for k in _CLI_KEYS}
    out["audio"] = getattr(args, "audio", None)
    return out


# ------------------------------------------------------------------------------ the daemon


def _protocol():
    from . import protocol

    return protocol


class Daemon:
    """Services for protocol.dispatch plus the lifecycle."""

    def __init__(self, cfg: Config, cfg_file: Optional[Path], args: Optional[argparse.Namespace] = None) -> None:
        self.cfg = cfg
        self.cfg_file = cfg_file
        self.args = args
        self.t_start = time.monotonic()
        self.stop_event = threading.Event()
        self._hk_wake = threading.Event()  # housekeeping: a new subscriber, or stopping
        self.reload_requested = False
        self.exit_code = 0
        self.subscribers: dict[Peer, float] = {}  # -> when it subscribed or last renewed
        self._sub_owner: dict[Peer, Any] = {}  # -> the address its /notify came from
        self._sub_lock = threading.Lock()
        self._sub_log = RateLimitedLog(log)
        self._dead_log = RateLimitedLog(log)
        self._evict_log = RateLimitedLog(log)
        self._unreachable_since: dict[Any, tuple[float, float]] = {}  # addr -> (first, last ICMP error)
        self._fanout = TokenBucket(cfg.max_fanout, max(64.0, cfg.max_fanout / 4.0))
        self.fanout_dropped = 0
        self._fanout_log = RateLimitedLog(log)
        self.ignored_replies = 0
        self.budget = ScheduleBudget(cfg.max_scheduled, cfg.max_scheduled_bytes, cfg.schedule_horizon)
        self._tls = threading.local()  # the OSC peer being handled (network thread)
        self._packet_seen = -1
        self._packet_session = 0
        self._session_q: "queue.Queue" = queue.Queue(maxsize=SESSION_QUEUE)
        self._session_busy = 0  # jobs queued or running
        self._session_lock = threading.Lock()
        self._session_thread: Optional[threading.Thread] = None
        self._t_signal: Optional[float] = None
        self.learn_address: Optional[str] = None
        self.midi = None
        self.sd = SdNotify()
        self.engine = None
        self.audio = None
        self.server: Optional[OscServer] = None
        self.presets: Optional[PresetStore] = None
        self._state_lock: Optional[StateLock] = None
        self.recorder: Optional[Recorder] = None
        self._housekeeping: Optional[threading.Thread] = None
        self._mono_minus_unix = time.monotonic() - time.time()
        self.protocol = None

    # ------------------------------------------------------------------ start
    def _model_spec(self, spec: Any) -> Any:
        """A bare name is a folder of models_dir (never of the working directory); anything
        else (the operator's config or --model) may be a folder path."""
        if is_name(str(spec)) and (self.cfg.models_dir / str(spec)).is_dir():
            return self.cfg.models_dir / str(spec)
        return spec

    def _load_model(self, last: Optional[dict]):
        cfg = self.cfg
        spec: Any = cfg.model
        name = last.get("model") if last else None
        explicit = self.args is not None and getattr(self.args, "model", None) is not None
        if (
            not explicit  # --model on the command line wins over the saved state
            and is_name(name)
            and name in list_models(cfg.models_dir)
            and Path(cfg.model).name != name
        ):
            try:
                bundle = load_bundle(cfg.models_dir / name, precision=cfg.precision)  # models_dir only
                log.info("model '%s' from the last state (config says '%s')", name, cfg.model)
                return bundle
            except AedaemonError as exc:
                log.warning("last state's model '%s' does not load (%s); using '%s'", name, exc, cfg.model)
        return load_bundle(self._model_spec(spec), cfg.models_dir, precision=cfg.precision)

    def start(self, fresh: bool = False) -> None:
        """Bring everything up. The order matters for what an operator reads when start fails:
        the port and the state folder are claimed first, so a second daemon's refusal is the
        first and only thing it says (nothing restored, no audio opened)."""
        from .engine import Engine, live_hop

        cfg = self.cfg
        sys.setswitchinterval(cfg.switch_interval)
        self.protocol = _protocol()
        self.server = self._bind()
        self.presets = self._open_state()
        last = None if fresh else self.presets.load_last()
        bundle = self._load_model(last)
        try:
            hop = cfg.hop if cfg.hop is not None else live_hop(bundle.meta.n_fft, bundle.meta.hop)
            self.engine = Engine(bundle, hop=hop, phase=cfg.phase)
        except ValueError as exc:
            raise AedaemonError(str(exc)) from None
        self.engine.schedule_budget = self.budget  # protocol.at_time counts what waits (max_scheduled)
        if last:
            try:
                self.engine.restore(last)
                log.info("restored the last state (%s)", "playing" if last.get("playing") else "stopped")
            except Exception as exc:  # noqa: BLE001 - a state file must never stop the start
                log.error("the last state could not be restored (%s: %s); starting from the model's defaults",
                          type(exc).__name__, exc)
        repair_recordings(cfg.recordings_dir)
        self.recorder = Recorder(cfg.recordings_dir, self.engine.sample_rate)
        engine = self.engine
        self.recorder.clock = lambda: engine.sample_time  # where the tapped hop ends: timed takes
        if cfg.midi.enabled:
            # before the audio: opening MIDI clients holds the interpreter for tens of ms (rtmidi
            # does not release it), which a renderer working just in time cannot spare
            self._start_midi()
        self._open_audio()
        if self.midi is not None and hasattr(self.audio, "on_device_back"):
            self.audio.on_device_back = self.midi.restart_system  # jackd restarted: MIDI too
        self._session_thread = threading.Thread(target=self._session_loop, name="session", daemon=True)
        self._session_thread.start()
        self.server.start()
        self._housekeeping = threading.Thread(target=self._housekeeping_loop, name="housekeeping", daemon=True)
        self._housekeeping.start()
        ready = time.monotonic() - self.t_start
        self.sd.send(f"READY=1\nSTATUS=listening on {cfg.listen}:{self.server.port}, model {self.engine.model_name}")
        log.info(
            "ready in %.2f s: OSC udp+tcp %s:%d, model '%s' (%s decoder, %d Hz, hop %d), audio %s",
            ready, cfg.listen, self.server.port, self.engine.model_name, self.engine.bundle.precision,
            self.engine.sample_rate, self.engine.hop, self.audio.describe(),
        )
        threading.Thread(target=self._report_realtime, name="rt-report", daemon=True).start()
        # one machine-readable line on stdout for scripts and tests
        print(f"aedaemon ready port={self.server.port} ready_s={ready:.3f}", flush=True)

    def _bind(self) -> OscServer:
        """The UDP and TCP sockets, bound (the network thread starts once everything is up)."""
        cfg = self.cfg
        try:
            server = OscServer(
                self.on_message,
                listen=cfg.listen,
                port=cfg.port,
                allow=cfg.allow,
                max_packet=cfg.max_packet,
                max_tcp_clients=cfg.max_tcp_clients,
                client_rate=cfg.client_rate,
                tcp_timeout=cfg.tcp_timeout,
            )
        except OSError as exc:
            raise AedaemonError(f"cannot listen on {cfg.listen}:{cfg.port} (UDP+TCP): {exc.strerror or exc}") from None
        server.on_disconnect = self._drop_subscriber
        server.on_unreachable = self._unreachable
        return server

    def _open_state(self) -> PresetStore:
        """Lock state_dir for this daemon's life (StateLock), then open the presets in it."""
        state_dir = self.cfg.state_dir
        try:
            self._state_lock = StateLock(state_dir)
            return PresetStore(state_dir, max_presets=self.cfg.max_presets)
        except OSError as exc:
            raise AedaemonError(f"state_dir {state_dir}: {exc.strerror or exc}") from None

    def _open_audio(self) -> None:
        """The output. `audio = auto`: PortAudio, and when no device is there yet (jackd not up),
        a software clock until one appears (the output keeps looking, see aedaemon/audio.py)."""
        cfg = self.cfg
        auto = cfg.audio == "auto"
        self.audio = open_output("portaudio" if auto else cfg.audio, self.engine, device=cfg.device,
                                 block=cfg.block, tap=self.recorder.tap, ahead=cfg.render_ahead,
                                 rt_priority=cfg.rt_priority, wait_for_device=auto)
        self.audio.start()

    def _release(self) -> None:
        """Close what start opened (after a failed start, or last in shutdown): sockets, audio,
        then the state lock, once nothing can write the state any more."""
        if self.server is not None:
            self.server.stop()
        if self.audio is not None:
            self.audio.close()
        if self._state_lock is not None:
            self._state_lock.release()

    def _report_realtime(self) -> None:
        time.sleep(0.5)
        a = self.audio
        if a is None or self.cfg.rt_priority <= 0:
            return
        if a.rt_callback and a.rt_render:
            log.info("real-time scheduling: audio callback SCHED_FIFO %d, renderer %d; rendering %.1f ms before the "
                     "device needs it", self.cfg.rt_priority, self.cfg.rt_priority - 5, 1000.0 * a.ahead / a.sample_rate)
        elif a.kind != "null" and a.rt_callback is None:
            pass  # no device (yet): no callback has run to ask for it
        elif a.kind != "null":
            log.warning("no real-time scheduling for the audio threads (callback %s, renderer %s): allow it "
                        "with LimitRTPRIO / the audio group's rtprio limit; underflows are likelier under load",
                        "ok" if a.rt_callback else "refused", "ok" if a.rt_render else "refused")

    def _start_midi(self) -> None:
        """The MIDI bridge (aedaemon.midi) on the same address table; never fatal except a bad mapping."""
        try:
            from .midi import DaemonMidi
        except ImportError as exc:
            log.warning("MIDI enabled but the bridge is not available: %s", exc)
            return
        self.midi = DaemonMidi(self.cfg.midi, lambda: self.engine, self, self.cfg.state_dir)

        def start() -> None:
            try:
                self.midi.start()
            except Exception:  # noqa: BLE001 - MIDI trouble must not stop the synth
                log.exception("MIDI bridge failed to start")

        # port discovery can take a second: do not hold up READY for it
        threading.Thread(target=start, name="midi-start", daemon=True).start()

    # ------------------------------------------------------------------ messages
    def mono_from_ntp(self, tt: int) -> float:
        return unix_from_ntp(tt) + self._mono_minus_unix

    def on_message(self, peer: Peer, m: Parsed) -> None:
        """One message from the network thread: replies and echoes are ignored (never answered,
        so nothing ping-pongs), a packet's file and model operations are bounded, a timetag
        counts against the schedule budget."""
        address = m.address
        if address in _REPLY_ADDRESSES or (address in _REPLY_WITH_ARGS and m.args):
            self.ignored_replies += 1
            return
        server = self.server
        if server is not None and server.packet_seq != self._packet_seen:
            self._packet_seen = server.packet_seq
            self._packet_session = 0
        if address in _SESSION_ADDRESSES:
            self._packet_session += 1
            if self._packet_session > MAX_SESSION_PER_PACKET:
                peer.send("/fail", [address, f"at most {MAX_SESSION_PER_PACKET} file or model operations in one "
                                             "packet: send the rest in another"])
                return
        at = None
        if m.timetag is not None:
            when = self.mono_from_ntp(m.timetag)
            ahead = when - time.monotonic()
            # what a waiting change holds, roughly: ~3 KB of Python objects (measured: 10,000
            # waiting /tilt bundles held 33 MB) plus its arguments
            cost = 3072 + len(address) + sum(len(a) if isinstance(a, (str, bytes)) else 16 for a in m.args)
            if ahead > 0 and address not in _UNTIMED:
                try:
                    self.budget.admit(cost, ahead)
                except ParameterError as exc:
                    peer.send("/fail", [address, str(exc)])
                    return
            self.budget.cost = cost
            at = self.audio.sample_at(when)
        self.handle(peer, address, m.args, at)

    def handle(self, source: Any, address: str, args: list, at: Optional[int] = None) -> None:
        self._tls.source = source  # who a reply of the session thread goes to
        try:
            replies, echoes = self.protocol.dispatch(address, args, engine=self.engine, services=self, source=source, at=at)
        except AedaemonError as exc:  # ParameterError and any user-facing refusal
            if hasattr(source, "send"):
                source.send("/fail", [address, str(exc)])
            return
        finally:
            self._tls.source = None
        if hasattr(source, "send"):
            for r in replies:
                source.send(r.address, list(r.args))
        if echoes:
            self.broadcast(echoes, exclude=source)

    def broadcast(self, messages, exclude: Any = None) -> None:
        with self._sub_lock:
            subs = [s for s in self.subscribers if s is not exclude and s != exclude]
            if not subs:
                return
            # the fan-out budget (max_fanout datagrams/s to all subscribers together)
            ok = self._fanout.take(len(subs) * len(messages), time.monotonic())
            if not ok:
                self.fanout_dropped += len(subs) * len(messages)
        if not ok:
            self._fanout_log(logging.WARNING, "echoes dropped: more than max_fanout = %g datagrams/s to %d "
                             "subscribers (%d dropped so far)", self.cfg.max_fanout, len(subs), self.fanout_dropped)
            return
        for r in messages:
            try:
                data = encode_message(r.address, list(r.args))
            except (TypeError, ValueError) as exc:
                log.error("cannot encode %s: %s", r.address, exc)
                continue
            for s in subs:
                s.send_raw(data)

    def _drop_subscriber(self, peer: Peer) -> None:
        with self._sub_lock:
            self.subscribers.pop(peer, None)
            self._sub_owner.pop(peer, None)

    def _unreachable(self, addr: Any) -> None:
        """An ICMP error (port or host unreachable) for a datagram sent to `addr`: a UDP
        subscriber there is gone (its program quit, the tablet left) once the errors have gone on
        for UNREACHABLE_FOR seconds (a pause of UNREACHABLE_PAUSE between them starts the count
        again; a LAN host sends about one ICMP error a second): drop it."""
        addr = tuple(addr[:2])
        now = time.monotonic()
        first, last = self._unreachable_since.get(addr, (now, now))
        if now - last > UNREACHABLE_PAUSE:
            first = now
        if len(self._unreachable_since) > 4096:
            self._unreachable_since.clear()
        self._unreachable_since[addr] = (first, now)
        if now - first < UNREACHABLE_FOR:
            return
        del self._unreachable_since[addr]
        with self._sub_lock:
            dead = [p for p in self.subscribers if p.kind == "udp" and tuple(p.addr[:2]) == addr]
            for p in dead:
                del self.subscribers[p]
                self._sub_owner.pop(p, None)
        for p in dead:
            self._dead_log(logging.INFO, "subscriber %r is unreachable (ICMP errors for %.0f s): dropped",
                           p, UNREACHABLE_FOR)

    # ------------------------------------------------------------------ the session thread
    # File writes and model loads run here, in arrival order, never on the network thread
    # (a bundle of preset saves, two fsyncs each, or a model load of 0.5 s would make it deaf)

    def _session_loop(self) -> None:
        while not (self.stop_event.is_set() and self._session_busy <= 0):
            try:
                job = self._session_q.get(timeout=0.25)
            except queue.Empty:
                continue
            if job is None:  # shutdown's wake-up
                continue
            try:
                job()
            except Exception:  # noqa: BLE001 - the thread must go on
                log.exception("session job")
            finally:
                with self._session_lock:
                    self._session_busy -= 1

    def _session(self, job) -> None:
        """Queue `job` for the session thread; refused when SESSION_QUEUE jobs are waiting."""
        with self._session_lock:
            self._session_busy += 1
        try:
            self._session_q.put_nowait(job)
        except queue.Full:
            with self._session_lock:
                self._session_busy -= 1
            raise ParameterError(f"busy: {SESSION_QUEUE} file and model operations are waiting; "
                                 "try again later") from None

    def _deferred_source(self) -> Any:
        """The OSC peer to answer later from the session thread, when there is one and the
        session thread runs (else the operation runs at once, on the caller's thread)."""
        src = getattr(self._tls, "source", None)
        if src is None or not hasattr(src, "send") or self._session_thread is None:
            return None
        return src

    # ------------------------------------------------------------------ Services
    # Timetagged session messages come with at= (audio sample time) and fail= (how to refuse
    # once their time has come): they are checked and prepared here, on arrival, and applied at
    # `at` on the render thread (protocol.at_time), which never blocks on the disk.

    def preset_save(self, name: str, at: Optional[int] = None, fail=None) -> Any:
        check_name(name)
        self.presets.check_room(name)
        if at is None:
            src = self._deferred_source()
            state = self.engine.snapshot()  # the sound now, in order with the messages around it
            if src is None:
                self.presets.save(name, state)
                return name
            token = self.presets.pend_save(name, state)  # loads and lists see it from now on

            def write() -> None:
                try:
                    self.presets.save(name, state)
                except AedaemonError as exc:
                    src.send("/fail", ["/preset/save", str(exc)])
                else:  # after the file and its folder are on disk
                    src.send("/done", ["/preset/save", name])
                finally:
                    self.presets.settle(name, token)

            try:
                self._session(write)
            except ParameterError:
                self.presets.settle(name, token)
                raise
            return self.protocol.DEFERRED

        def capture() -> None:  # the sound at its time; the file is written off the render thread
            state = self.engine.snapshot()
            token = self.presets.pend_save(name, state)

            def write() -> None:
                try:
                    self.presets.save(name, state)
                except AedaemonError as exc:
                    fail(str(exc))
                finally:
                    self.presets.settle(name, token)

            try:
                self._session(write)
            except ParameterError as exc:
                self.presets.settle(name, token)
                fail(str(exc))

        self.protocol.at_time(self.engine, at, capture, fail)
        return name

    def preset_load(self, name: str, morph: float = 0.0, at: Optional[int] = None, fail=None) -> None:
        check_name(name)
        state = self.presets.load(name)  # read and checked on arrival: a refusal is immediate

        def apply() -> None:  # at its time: the morph starts then
            self.engine.restore(state, morph=float(morph) if morph and morph > 0 else None)
            self.broadcast(_state_echoes(self.engine.targets))

        self.protocol.at_time(self.engine, at, apply, fail)

    def preset_list(self) -> list[str]:
        return self.presets.list()

    def preset_delete(self, name: str) -> Any:
        check_name(name)
        src = self._deferred_source()
        if src is None:
            self.presets.delete(name)
            return name
        token = self.presets.pend_delete(name)  # refuses a preset that does not exist

        def delete() -> None:
            try:
                self.presets.delete(name)
            except AedaemonError as exc:
                src.send("/fail", ["/preset/delete", str(exc)])
            else:
                src.send("/done", ["/preset/delete", name])
            finally:
                self.presets.settle(name, token)

        try:
            self._session(delete)
        except ParameterError:
            self.presets.settle(name, token)
            raise
        return self.protocol.DEFERRED

    def model_list(self) -> list[str]:
        return list_models(self.cfg.models_dir)

    def model_load(self, name: str, at: Optional[int] = None, fail=None) -> Any:
        if not is_name(name):
            raise ParameterError("model name must match [A-Za-z0-9_-]{1,64} (a name, never a path)")
        folder = self.cfg.models_dir / name  # models_dir only, never the working directory
        if not folder.is_dir():
            raise ParameterError(f"no model named '{name}' in the models directory")
        src = self._deferred_source()
        if src is None:
            return self._model_load(name, folder, at, fail)

        def load() -> None:  # on the session thread: a load takes 0.1-0.6 s
            try:
                self._model_load(name, folder, at, fail)
            except AedaemonError as exc:
                src.send("/fail", ["/model/load", str(exc)])
            else:
                src.send("/done", ["/model/load", name])

        self._session(load)
        return self.protocol.DEFERRED

    def _model_load(self, name: str, folder: Path, at: Optional[int], fail) -> str:
        # a bundle /model/list leaves out (broken) is refused here with the reason: ModelError → /fail
        bundle = load_bundle(folder, precision=self.cfg.precision)
        if bundle.meta.sample_rate != self.engine.sample_rate:
            raise ParameterError(
                f"model '{name}' runs at {bundle.meta.sample_rate} Hz, the stream at {self.engine.sample_rate} Hz"
            )
        if self.engine.n_fft % self.engine.hop or bundle.meta.n_fft % self.engine.hop:
            raise ParameterError(f"model '{name}': n_fft {bundle.meta.n_fft} is not a multiple of hop {self.engine.hop}")
        if at is not None:  # loaded now (that takes time), swapped in at its time
            def swap() -> None:
                e = self.engine
                if bundle.meta.n_fft % e.hop:  # another swap changed the hop in between
                    raise ParameterError(f"model '{name}': n_fft {bundle.meta.n_fft} is not a multiple of hop {e.hop}")
                e.swap_model(bundle)
                self._echo_after_swap(e)

            self.protocol.at_time(self.engine, at, swap, fail)
            return name
        self.engine.post(lambda e: e.swap_model(bundle))
        # a swap can reset the units (another latent size): tell subscribers once it is in place
        # (the swap is applied right after this frame's queue; with another frame size after a fade)
        self.engine.post(self._echo_after_swap)
        return name

    def _echo_after_swap(self, e, first: bool = True) -> None:
        # runs on the render thread; re-scheduled for the next frame boundary (post_at, never
        # post: a post from inside the queue drain would run in the same drain, forever)
        if first or e.model_swap_pending:
            e.post_at(e.sample_time + 1, lambda e2: self._echo_after_swap(e2, first=False))
            return
        self.broadcast(_state_echoes(e.targets))

    def record_start(self, name: Optional[str] = None, at: Optional[int] = None, fail=None) -> str:
        return self.recorder.start(name, at=at).name  # the file is created now, its first sample is `at`

    def record_stop(self, at: Optional[int] = None, fail=None) -> str:
        return self.recorder.stop(at=at, fail=fail)  # timed: the samples before `at` are kept

    def status(self) -> list:
        e = self.engine
        a = self.audio
        s = self.server
        return [
            1 if e.targets.playing else 0,
            e.model_name,
            float(e.sample_rate),
            int(a.block),
            int(e.hop),
            float(round(a.cpu_load, 4)),
            int(a.total_underflows),
            int(e.stats.late_events),
            int(s.stats.dropped if s else 0),
            int(s.clients() if s else 0),
            float(round(time.monotonic() - self.t_start, 3)),
            # extension, appended so positional readers of the 11 fields of the original contract (docs/protocol.md) are unaffected
            int(self.midi.messages if self.midi is not None else 0),
            # extensions 13 and 14: the output device ("ok", "lost": a software clock while it is
            # looked for; "null": --audio null), hops that failed and played silence instead
            str(getattr(a, "device_state", "null")),
            int(a.render_errors),
        ]

    def version(self) -> list:
        return ["aedaemon", __version__]

    def notify(self, source: Any, on: bool, port: Optional[int] = None) -> None:
        if not isinstance(source, Peer):
            raise ParameterError("only OSC clients can subscribe")
        owner = source.addr
        if port is not None:
            # Max's [udpsend] and TouchOSC send from one port and listen on another: subscribe
            # that port, on the sender's own host only (never a third party's address)
            if source.kind != "udp":
                raise ParameterError("a notify port applies to UDP senders only (TCP replies go down the connection)")
            source = source.at_port(port)
        if on and source.kind == "udp" and self.server is not None and self.server.is_own(source.addr):
            raise ParameterError(f"port {source.addr[1]} is the daemon's own: it would send its echoes to itself")
        with self._sub_lock:
            if on:
                if source not in self.subscribers and len(self.subscribers) >= self.cfg.max_subscribers:
                    self._make_room(source)
                self.subscribers[source] = time.monotonic()  # subscribed, or renewed
                self._sub_owner[source] = owner
                self._hk_wake.set()  # start its /meter now
            else:
                self.subscribers.pop(source, None)
                self._sub_owner.pop(source, None)

    def _last_sign_of_life(self, p: Peer, heard: dict) -> float:
        """When a subscriber last showed it is there: subscribed or renewed, or its own address
        or the one it subscribed from heard from."""
        return max(self.subscribers.get(p, 0.0), heard.get(p.addr, 0.0), heard.get(self._sub_owner.get(p), 0.0))

    def _make_room(self, newcomer: Peer) -> None:
        """Make room for `newcomer` (called with _sub_lock held): UDP has no disconnect, so a
        tablet that left stays subscribed until an ICMP error says it is gone; when full, the
        UDP subscriber with the oldest sign of life gives way, but only when that is older than
        `subscriber_timeout` (a Max patch that subscribed once and never sends is alive as long
        as it renews or is heard from). Otherwise the newcomer is refused: a flood of /notify
        cannot push out the subscribers already there."""
        heard = self.server.stats.udp_peers if self.server is not None else {}
        now = time.monotonic()
        udp = [p for p in self.subscribers if p.kind == "udp"]
        oldest = min(udp, key=lambda p: self._last_sign_of_life(p, heard)) if udp else None
        stale = self.cfg.subscriber_timeout
        if oldest is None or now - self._last_sign_of_life(oldest, heard) < stale:
            self._sub_log(logging.WARNING, "subscribers full (%d, max_subscribers): refusing %r",
                          self.cfg.max_subscribers, newcomer)
            raise ParameterError(f"too many subscribers ({self.cfg.max_subscribers}); a place frees when one "
                                 f"unsubscribes, disconnects, is unreachable or is silent for {stale:g} s")
        silent = now - self._last_sign_of_life(oldest, heard)
        del self.subscribers[oldest]
        self._sub_owner.pop(oldest, None)
        self._evict_log(logging.INFO, "subscribers full (%d): %r (no renewal for %.0f s) gives way to %r",
                      self.cfg.max_subscribers, oldest, silent, newcomer)

    def sync(self, source: Any, n: int) -> None:
        """Reply /synced n from the render thread once everything posted before is applied
        (after the session thread's queue, when it has work: a model load in progress)."""
        if not hasattr(source, "send"):
            return
        if self._session_busy > 0:
            self._session(lambda: self.engine.post(lambda e: source.send("/synced", [int(n)])))
            return
        self.engine.post(lambda e: source.send("/synced", [int(n)]))

    def midi_learn(self, address: str) -> str:
        if self.midi is None:
            raise ParameterError("MIDI is not enabled (set [midi] enabled = true)")
        self.midi.learn(address)
        self.learn_address = address
        return address

    def quit(self) -> None:
        if not self.cfg.allow_quit:
            raise ParameterError("/quit is disabled (set allow_quit = true in the config)")
        log.info("/quit received")
        self._t_signal = time.monotonic()
        # after the /done reply went out
        threading.Timer(0.05, self.stop_event.set).start()

    # ------------------------------------------------------------------ housekeeping
    def _housekeeping_loop(self) -> None:
        next_meter = next_state = next_dog = time.monotonic()
        seen_underflows = 0
        while not self.stop_event.is_set():
            now = time.monotonic()
            try:
                if self.audio.total_underflows != seen_underflows:
                    seen_underflows = self.audio.total_underflows
                    log.warning("audio underflow: %d reported by the device, %d ring underruns (renderer late); "
                                "render load %.1f%%", self.audio.underflows, self.audio.ring_underruns,
                                100 * self.audio.cpu_load)
                if now >= next_meter:
                    next_meter = now + 1.0 / self.cfg.meter_rate
                    if self.subscribers:
                        rms, peak = self.engine.meter
                        self.broadcast([_Msg("/meter", [float(rms), float(peak)])])
                if now >= next_state:
                    next_state = now + self.cfg.state_interval
                    try:
                        self.presets.save_last(self.engine.snapshot())
                    except OSError as exc:
                        log.error("cannot save the last state: %s", exc)
                if self.sd.watchdog_interval is not None and now >= next_dog:
                    next_dog = now + self.sd.watchdog_interval
                    if self.audio.alive() and self.server._thread is not None and self.server._thread.is_alive():
                        self.sd.send("WATCHDOG=1")
                    else:
                        log.error("audio path stalled: not feeding the systemd watchdog")
            except Exception:  # noqa: BLE001
                log.exception("housekeeping")
            due = [next_state]
            if self.subscribers:
                due.append(next_meter)
            if self.sd.watchdog_interval:
                due.append(next_dog)
            wait = min(due) - time.monotonic()
            self._hk_wake.wait(min(max(wait, 0.005), 0.25))
            self._hk_wake.clear()

    # ------------------------------------------------------------------ reload / stop
    def reload(self) -> None:
        try:
            cfg, _ = load_config(getattr(self.args, "config", None) if self.args else None,
                                 cli=_cli_overrides(self.args) if self.args else None)
        except AedaemonError as exc:
            log.error("SIGHUP: config not reloaded: %s", exc)
            return
        old = self.cfg
        setup_logging(cfg.log_level)
        restart_keys = [k for k in ("listen", "port", "audio", "device", "block", "hop", "phase", "render_ahead",
                                    "state_dir", "recordings_dir", "rt_priority") if getattr(cfg, k) != getattr(old, k)]
        if cfg.midi.enabled != old.midi.enabled or cfg.midi.backend != old.midi.backend:
            restart_keys.append("midi.enabled" if cfg.midi.enabled != old.midi.enabled else "midi.backend")
        if restart_keys:
            log.warning("SIGHUP: %s changed; these take effect after a restart", ", ".join(restart_keys))
            for k in restart_keys:
                if k.startswith("midi."):
                    cfg.midi.__dict__[k[5:]] = getattr(old.midi, k[5:])
                else:
                    cfg.__dict__[k] = getattr(old, k)
        if not cfg.loopback_only and not cfg.allow:
            # still bound to a LAN address (listen takes a restart): an empty allowlist there
            # must never be applied (the server would take it as loopback only, the operator
            # may have meant anything); keep the one in force
            log.error("SIGHUP: allow is empty but the daemon listens on %s until it restarts (listen takes "
                      "a restart); keeping allow = %s", cfg.listen, list(old.allow))
            cfg.__dict__["allow"] = list(old.allow)
        s = self.server
        s._allow = cfg.allowed_networks()
        s._allow_cache.clear()
        s.client_rate = cfg.client_rate
        s.burst = max(64.0, cfg.client_rate / 4.0)
        s._buckets.clear()
        s.max_packet = cfg.max_packet
        s.max_tcp_clients = cfg.max_tcp_clients
        s.tcp_timeout = cfg.tcp_timeout
        self.budget.max_count = cfg.max_scheduled
        self.budget.max_bytes = cfg.max_scheduled_bytes
        self.budget.horizon = cfg.schedule_horizon
        self.presets.max_presets = cfg.max_presets
        with self._sub_lock:
            self._fanout = TokenBucket(cfg.max_fanout, max(64.0, cfg.max_fanout / 4.0))
        model_changed = cfg.model != old.model or cfg.models_dir != old.models_dir or cfg.precision != old.precision
        self.cfg = cfg
        if self.midi is not None:
            try:  # the mapping and port pattern, live; a bad mapping is logged and the old one kept
                self.midi.reload(cfg.midi, cfg.state_dir)
            except Exception:  # noqa: BLE001
                log.exception("SIGHUP: MIDI mapping not reloaded")
        if model_changed:
            try:
                bundle = load_bundle(self._model_spec(cfg.model), cfg.models_dir, precision=cfg.precision)
                if bundle.meta.sample_rate == self.engine.sample_rate:
                    self.engine.post(lambda e: e.swap_model(bundle))
                else:
                    log.error("SIGHUP: model '%s' has another sample rate; restart to use it", cfg.model)
            except AedaemonError as exc:
                log.error("SIGHUP: model not changed: %s", exc)
        log.info("configuration reloaded")

    def shutdown(self) -> None:
        # timed from the signal (or /quit), not from here: what the log says is what it took
        t0 = self._t_signal if self._t_signal is not None else time.monotonic()
        self.sd.send("STOPPING=1")
        self.stop_event.set()
        self._hk_wake.set()
        if self._housekeeping is not None:
            self._housekeeping.join(timeout=0.5)
        if self._session_thread is not None:  # saves and deletes accepted: finish them
            try:
                self._session_q.put_nowait(None)
            except queue.Full:
                pass
            self._session_thread.join(timeout=1.0)
        if self.engine is not None and self.presets is not None:
            try:
                self.presets.save_last(self.engine.snapshot(), force=True)
            except OSError as exc:
                log.error("cannot save the last state: %s", exc)
        if self.recorder is not None and self.recorder.active:
            try:
                self.recorder.stop()
            except AedaemonError as exc:
                log.error("%s", exc)
        if self.engine is not None and self.audio is not None:
            was_playing = self.engine.targets.playing
            self.engine.update(playing=False)  # the renderer fades out
            if was_playing:
                latency = (self.audio.target + self.audio.block) / self.engine.sample_rate
                time.sleep(min(0.5, getattr(self.engine, "fade", 0.03) + latency + 0.02))
        if self.midi is not None:
            def stop_midi() -> None:
                try:
                    self.midi.stop()
                except Exception:  # noqa: BLE001
                    log.exception("stopping the MIDI bridge")

            t = threading.Thread(target=stop_midi, name="midi-stop", daemon=True)
            t.start()
            t.join(0.3)  # SIGTERM must finish within 2 s whatever the MIDI backend does
        self._release()
        log.info("stopped in %.2f s", time.monotonic() - t0)
        self.stopped = True

    def run(self, fresh: bool = False) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_hup)
        try:
            self.start(fresh=fresh)
        except BaseException:
            self.stop_event.set()
            self._release()
            raise
        try:
            while not self.stop_event.is_set():
                self.stop_event.wait(0.2)
                if self.reload_requested:
                    self.reload_requested = False
                    self.reload()
        finally:
            self.shutdown()
        return self.exit_code

    def _on_signal(self, signum, frame) -> None:
        if self._t_signal is None:
            self._t_signal = time.monotonic()
        log.info("signal %s: shutting down", signal.Signals(signum).name)
        self.stop_event.set()

    def _on_hup(self, signum, frame) -> None:
        self.reload_requested = True


def _state_echoes(t) -> list:
    """Every state address with its value (after a preset load or restore)."""
    from .protocol import Reply, chroma_value

    n = len(t.latent)
    return (
        [Reply("/latent", tuple(t.latent))]
        + [Reply(f"/scale/{i}", (t.scale[i],)) for i in range(n)]
        + [Reply(f"/mute/{i}", (int(t.mute[i]),)) for i in range(n)]
        + [Reply("/chroma", chroma_value(tuple(t.chroma))), Reply("/transpose", (t.transpose,)),
           Reply("/freq_shift", (t.freq_shift,)), Reply("/gain", (t.gain,)), Reply("/glide", (t.glide,)),
           Reply("/tilt", (t.tilt,)), Reply("/tune", (t.tune,)), Reply("/play", (int(t.playing),))]
    )


class _Msg:
    __slots__ = ("address", "args")

    def __init__(self, address: str, args: list) -> None:
        self.address = address
        self.args = args


def main(args: argparse.Namespace) -> int:
    """Entry point for `aedaemon run` (cli.py). AedaemonError propagates: the CLI prints it."""
    cfg, cfg_file = load_config(getattr(args, "config", None), cli=_cli_overrides(args))
    setup_logging(cfg.log_level)
    if cfg_file is not None:
        log.info("config: %s", cfg_file)
    daemon = Daemon(cfg, cfg_file, args)
    code = daemon.run(fresh=bool(getattr(args, "fresh", False)))
    if getattr(daemon, "stopped", False):
        # everything is saved, closed and flushed: exit now. Interpreter teardown (finalisers of
        # the ONNX sessions, PortAudio, thousands of objects after a long run) took seconds
        # after "stopped in 0.12 s" was logged; a dead PortAudio stream must not be touched again
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def standalone(argv: Optional[list[str]] = None) -> int:
    """`python -m aedaemon.daemon` — the same as `aedaemon run`, usable before cli.py wires it."""
    p = argparse.ArgumentParser(prog="aedaemon run", description="run the OSC-controlled synthesizer daemon")
    add_run_arguments(p)
    a = p.parse_args(argv)
    try:
        return main(a)
    except AedaemonError as exc:
        print(f"aedaemon: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(standalone())
