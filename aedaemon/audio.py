"""Audio output: a render thread renders each hop just in time — a margin (`ahead`) before the
callback that first needs it — into a lock-free ring; the device side (a PortAudio stream in a
child process, aedaemon/devicechild.py, or a software clock for `--audio null`) only copies out
of the ring.

    engine.render_hop() ──render thread──> Ring (shared memory) ──device process──> device
                               └── tap (recorder, off the audio thread)

The ring (aedaemon/ringbuffer.py) has one producer and one consumer and no lock. The device
process stamps each callback (read position, monotonic time) into the ring's header; the render
thread schedules itself from those stamps, and `sample_at(t)` maps a time.monotonic() instant
to the engine sample heard then: OSC timetags are scheduled on this clock.

A device that stops calling back (jackd killed, a card unplugged) is declared lost after
STALL_SECONDS: the device process is killed, a software clock takes over (the engine, the
clock, meters and recordings go on, silent to the world), and a new device process is tried
every RETRY_SECONDS until the device is back.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Optional

import numpy as np

from .devicechild import output_devices, quiet_stderr
from .errors import AedaemonError
from .ringbuffer import (H_CALLBACKS, H_LATENCY_NS, H_RING_UNDERRUNS, H_RT, H_UNDERFLOWS, Ring,
                         buffer_bytes, ring_size)

log = logging.getLogger("aedaemon.audio")

# the render margin with real-time scheduling: 3 ms at 44.1 kHz — a changed hop renders in a
# few hundred µs, but under load the render thread may wait for the GIL (up to the 1 ms switch
# interval each time the decoder or a NumPy call hands it over) or for a core
JIT_MARGIN_SAMPLES = 132
CALM_SECONDS = 60.0  # a margin widened by an underrun narrows again after this long without one
STALL_SECONDS = 0.5  # no callback for this long: the device is lost
RETRY_SECONDS = 1.0  # how often a lost device is looked for
HANDSHAKE_SECONDS = 5.0  # a device process that has not opened its stream by then is given up


class AudioError(AedaemonError):
    """No usable output device (the message lists the devices)."""


def list_output_devices() -> list[dict]:
    import pyaudio

    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    with quiet_stderr():
        pa = pyaudio.PyAudio()
    try:
        return output_devices(pa)
    finally:
        pa.terminate()



class AudioOutput:
    """Common part: the ring, the render thread, counters and the clock."""

    kind = "none"

    def __init__(self, engine, *, block: int = 256, tap: Optional[Callable[[np.ndarray], None]] = None,
                 ahead: Optional[int] = None, rt_priority: int = 0) -> None:
        self.engine = engine
        engine.allow_economy = True  # live: fall back to cheaper frames rather than underflow
        self.block = int(block)
        self.sample_rate = int(engine.sample_rate)
        self.hop = int(engine.hop)
        # Just-in-time rendering: each hop is rendered `ahead` samples' worth of time before the
        # callback that first needs it (not as soon as the ring has room), so a control change
        # waits for the next render (0..one block period) plus this margin, not for a whole
        # block of audio already in the ring. By default (ahead=None) the margin is
        # JIT_MARGIN_SAMPLES when the render thread got real-time scheduling, else one hop (safer
        # without RT); an underrun widens it (logged).
        self._auto_ahead = ahead is None
        self.ahead = self.hop if ahead is None else int(ahead)
        self.max_ahead = max(self.ahead, self.hop + self.block)
        self.target = self.block + self.ahead
        # the ring lives in a memfd, so that a device process can map it too
        size = ring_size(2 * (self.max_ahead + self.hop + 2 * self.block) + 4096)
        self._memfd = os.memfd_create("aedaemon-ring", 0)
        os.ftruncate(self._memfd, buffer_bytes(size))
        self._mem = mmap.mmap(self._memfd, buffer_bytes(size))
        self.ring = Ring(size, memoryview(self._mem))
        self.ring.set_stamp(0, time.monotonic())
        self.tap = tap
        self.render_errors = 0
        self.cpu_load = 0.0  # EMA of render time / hop duration
        # seconds from a callback's stamp until ring.read_pos is heard: the block just handed
        # over plus the device's output latency (set when a real stream opens; 0 for the null clock)
        self.latency = 0.0
        self._soft_stop = threading.Event()
        self._soft_thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._render_thread: Optional[threading.Thread] = None
        self._started = False
        self.last_render = time.monotonic()
        self._silence = np.zeros(self.hop, dtype=np.float32)
        # real-time scheduling (SCHED_FIFO) for the callback and render threads when permitted
        # (root, CAP_SYS_NICE or LimitRTPRIO); 0 = leave the scheduling alone
        self.rt_priority = int(rt_priority)
        self.rt_callback: Optional[bool] = None  # None: not tried yet
        self.rt_render: Optional[bool] = None

    # -- counters and the clock: in the ring's header, written by whoever consumes the ring
    @property
    def _stamp(self) -> tuple[int, float]:
        """(ring.read_pos, monotonic seconds) at the last callback."""
        return self.ring.stamp()

    @property
    def underflows(self) -> int:  # device status flags
        return int(self.ring.header[H_UNDERFLOWS])

    @property
    def ring_underruns(self) -> int:  # callbacks that found the ring short
        return int(self.ring.header[H_RING_UNDERRUNS])

    @property
    def callbacks(self) -> int:
        return int(self.ring.header[H_CALLBACKS])

    def sample_at(self, t_mono: float) -> int:
        """The engine sample heard at monotonic time t (extrapolated from the last callback,
        less the block and device latency between handing a sample over and hearing it)."""
        pos, stamp = self._stamp
        return pos + int(round((t_mono - stamp - self.latency) * self.sample_rate))

    def now_sample(self) -> int:
        return self.sample_at(time.monotonic())

    @property
    def total_underflows(self) -> int:
        return self.underflows + self.ring_underruns

    def alive(self, within: float = 1.0) -> bool:
        """The audio path is moving: callbacks advance and the renderer keeps up."""
        now = time.monotonic()
        return (
            self._started
            and not self._stop.is_set()
            and now - self._stamp[1] < within
            and now - self.last_render < within
            and self._render_thread is not None
            and self._render_thread.is_alive()
        )

    # -- render side
    def _render_one(self) -> None:
        t0 = time.perf_counter()
        try:
            x = self.engine.render_hop()
            if len(x) != self.hop:
                raise ValueError(f"render_hop returned {len(x)} samples, expected {self.hop}")
        except Exception:  # noqa: BLE001 - keep sounding (silence) and say so once in a while
            self.render_errors += 1
            if self.render_errors in (1, 10, 100) or self.render_errors % 1000 == 0:
                log.exception("render_hop failed (%d times)", self.render_errors)
            x = self._silence
            try:  # the hop counts as played: the clock (and every timetag) stays with the device
                self.engine.skip_hop()
            except Exception:  # noqa: BLE001
                log.exception("could not recover the engine after a failed hop")
        self.ring.write(x)
        if self.tap is not None:
            try:
                self.tap(x)
            except Exception:  # noqa: BLE001
                log.exception("recorder tap failed")
        dt = time.perf_counter() - t0
        self.cpu_load += 0.05 * (dt * self.sample_rate / self.hop - self.cpu_load)
        self.last_render = time.monotonic()

    def prefill(self) -> None:
        """Render before the stream starts: enough for the burst of callbacks a device makes
        while it primes its buffers (JACK: three in a row); just-in-time rendering then lets
        the surplus drain, so it costs latency only for the first few blocks. The engine warms
        up first, so the first note is not the slow first run of everything."""
        try:
            self.engine.warm_up()
        except Exception:  # noqa: BLE001 - a cold start is slower, not wrong
            log.exception("engine warm-up failed")
        while self.ring.fill() < self.max_ahead + 2 * self.block:
            self._render_one()

    def _set_realtime(self, priority: int) -> bool:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(max(1, min(99, priority))))
            return True
        except (OSError, AttributeError, ValueError):
            return False

    def _render_loop(self) -> None:
        if self.rt_priority > 0:
            self.rt_render = self._set_realtime(self.rt_priority - 5)
        sr = float(self.sample_rate)
        if self._auto_ahead:
            self.ahead = JIT_MARGIN_SAMPLES if self.rt_render else self.hop
            self.target = self.block + self.ahead
        ring = self.ring
        period = self.block / sr
        base = self.ahead
        seen_underruns = self.ring_underruns
        calm_since = time.monotonic()
        while not self._stop.is_set():
            if self.ring_underruns != seen_underruns:
                seen_underruns = self.ring_underruns
                calm_since = time.monotonic()
                if self._auto_ahead and self.ahead < self.max_ahead:
                    # the renderer was late: keep a wider margin (doubling, up to hop + block)
                    self.ahead = min(self.max_ahead, max(2 * self.ahead, JIT_MARGIN_SAMPLES))
                    self.target = self.block + self.ahead
                    log.warning("ring underrun: now rendering %.1f ms before the device needs it",
                                1000.0 * self.ahead / sr)
            elif self._auto_ahead and self.ahead > base and time.monotonic() - calm_since > CALM_SECONDS:
                # a passing cause (a device coming back, MIDI clients reopening) should not cost
                # latency for good: after a calm minute, halve the margin again (not below base)
                calm_since = time.monotonic()
                self.ahead = max(base, self.ahead // 2)
                self.target = self.block + self.ahead
                log.info("no underrun for %.0f s: now rendering %.1f ms before the device needs it",
                         CALM_SECONDS, 1000.0 * self.ahead / sr)
            fill = ring.fill()
            # callbacks come every `period` after the last stamp and each takes a block: the
            # fill covers the next fill // block of them; the one after must find a new hop,
            # so render it `ahead` before that callback is due (at once when already late).
            _, t_cb = self._stamp
            due = t_cb + (fill // self.block + 1) * period - self.ahead / sr
            wait = due - time.monotonic()
            if fill < self.block or (wait <= 0.0 and fill < self.block + self.max_ahead):
                self._render_one()
                continue
            # at most a block period: the stamps can be stale (a stream starting, a device
            # priming with a burst of callbacks); a stalled device ages its last stamp, but the
            # ring never holds more than the widest margin
            time.sleep(min(max(wait, 0.0005), period))

    def _soft_clock(self) -> None:
        """Consume one block every block/sample_rate seconds (no device: the null output, or a
        lost device), stamping the header as a device callback would."""
        period = self.block / self.sample_rate
        scratch = np.zeros(self.block, dtype=np.float32)
        h = self.ring.header
        nxt = time.monotonic()
        while not (self._stop.is_set() or self._soft_stop.is_set()):
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5:  # suspended or starved: resynchronise instead of bursting
                nxt = time.monotonic()
            k = self.ring.read_into(scratch, self.block)
            if k < self.block:
                h[H_RING_UNDERRUNS] += 1
            h[H_CALLBACKS] += 1
            self.ring.set_stamp(self.ring.read_pos, time.monotonic())

    def _start_soft_clock(self) -> None:
        self._soft_stop.clear()
        self.ring.set_stamp(self.ring.read_pos, time.monotonic())
        self._soft_thread = threading.Thread(target=self._soft_clock, name="soft-clock", daemon=True)
        self._soft_thread.start()

    def _stop_soft_clock(self) -> None:
        self._soft_stop.set()
        if self._soft_thread is not None:
            self._soft_thread.join(timeout=1.0)
            self._soft_thread = None

    def _start_render(self) -> None:
        self._render_thread = threading.Thread(target=self._render_loop, name="render", daemon=True)
        self._render_thread.start()

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        if self._render_thread is not None:
            self._render_thread.join(timeout=1.0)
        self._stop_soft_clock()
        self._close_memfd()

    def _close_memfd(self) -> None:
        fd, self._memfd = self._memfd, -1
        if fd >= 0:
            os.close(fd)  # the mapping stays valid; a device process has its own descriptor

    def describe(self) -> str:
        return self.kind


class NullOutput(AudioOutput):
    """No device: a software clock consumes one block every block/sample_rate seconds."""

    kind = "null"

    def start(self) -> None:
        self.prefill()
        self._started = True
        self._start_render()
        self._start_soft_clock()


class PortAudioOutput(AudioOutput):
    """A PyAudio output stream in a device process (aedaemon/devicechild.py) that reads the
    shared ring; a supervisor thread replaces the process when the device is lost."""

    kind = "portaudio"

    def __init__(self, engine, *, device: Optional[int | str] = None, wait_for_device: bool = False,
                 **kw: Any) -> None:
        super().__init__(engine, **kw)
        self.device_spec = device
        self.wait_for_device = wait_for_device
        self.device: dict = {"index": -1, "name": "(none yet)", "api": "-", "channels": 0}
        self.channels = 0
        self.output_latency = 0.0
        self.device_lost_since: Optional[float] = None
        self.device_losses = 0
        self.reopens = 0
        self._child: Optional[subprocess.Popen] = None
        self._supervisor: Optional[threading.Thread] = None
        # called (from the supervisor thread) when a lost device is back: e.g. the MIDI bridge,
        # whose JACK clients died with the same server
        self.on_device_back: Optional[Callable[[], None]] = None
        self._retry_logged = False
        try:
            self._child = self._spawn()
        except AudioError as exc:
            if not wait_for_device:
                raise
            log.warning("%s -- playing on a software clock until a device appears (looking every %.0f s)",
                        exc, RETRY_SECONDS)
            self.device_lost_since = time.monotonic()
            self._retry_logged = True

    @property
    def rt_callback(self) -> Optional[bool]:  # type: ignore[override]
        v = int(self.ring.header[H_RT])
        return None if v < 0 else bool(v)

    @rt_callback.setter
    def rt_callback(self, value: Optional[bool]) -> None:
        self.ring.header[H_RT] = -1 if value is None else int(value)

    @property
    def device_state(self) -> str:
        return "ok" if self.device_lost_since is None else "lost"

    def describe(self) -> str:
        d = self.device
        if d["index"] < 0:
            return f"portaudio (no device yet: a software clock meanwhile), block {self.block}"
        return f"portaudio [{d['index']}] {d['name']} ({d['api']}), {self.channels} ch, block {self.block}"

    # -- the device process
    def _spawn(self) -> subprocess.Popen:
        """Start a device process and wait until it has opened its stream (not started)."""
        settings = {"ring_size": self.ring.size, "block": self.block, "sample_rate": self.sample_rate,
                    "device": self.device_spec, "rt_priority": self.rt_priority}
        self.ring.header[H_RT] = -1
        child = subprocess.Popen(
            [sys.executable, "-m", "aedaemon.devicechild", str(self._memfd), json.dumps(settings)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(self._memfd,), text=True,
            env={**os.environ, "JACK_NO_START_SERVER": "1"}, start_new_session=True,
        )
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(child.stdout.readline()), daemon=True)
        reader.start()
        reader.join(HANDSHAKE_SECONDS)
        try:
            reply = json.loads(box[0]) if box and box[0] else {"ok": False, "error": "the device process gave no answer"}
        except ValueError:
            reply = {"ok": False, "error": f"the device process said {box[0]!r}"}
        if not reply.get("ok"):
            self._kill(child)
            raise AudioError(str(reply.get("error")))
        self.device = reply["device"]
        self.channels = int(reply["channels"])
        self.output_latency = float(reply.get("output_latency", 0.0))
        # ring.read_pos is heard one block (the one just returned) plus the device latency after
        # its callback; until the first callbacks measure it, PortAudio's estimate stands in
        self.latency = float(reply["latency"])
        self.ring.header[H_LATENCY_NS] = int(self.latency * 1e9)
        return child

    def _go(self, child: subprocess.Popen) -> None:
        self.ring.set_stamp(self.ring.read_pos, time.monotonic())
        child.stdin.write("start\n")
        child.stdin.flush()

    @staticmethod
    def _kill(child: Optional[subprocess.Popen]) -> None:
        if child is None:
            return
        try:
            child.kill()
            child.wait(2.0)
        except Exception:  # noqa: BLE001
            pass

    def _measured_latency(self) -> None:
        ns = int(self.ring.header[H_LATENCY_NS])
        if ns > 0:
            self.latency = ns * 1e-9

    def start(self) -> None:
        self.prefill()
        self._started = True
        self._start_render()
        if self._child is not None:
            self._go(self._child)
        else:
            self._start_soft_clock()
        self._supervisor = threading.Thread(target=self._supervise, name="audio-supervisor", daemon=True)
        self._supervisor.start()

    def _supervise(self) -> None:
        next_try = time.monotonic() + RETRY_SECONDS
        while not self._stop.wait(0.1):
            now = time.monotonic()
            if self.device_lost_since is None:
                self._measured_latency()
                child = self._child
                stalled = now - self._stamp[1] > STALL_SECONDS
                if (child is not None and child.poll() is not None) or stalled:
                    self._lose("stopped calling back" if stalled else f"process ended ({child.returncode})")
                    next_try = now + RETRY_SECONDS
            elif now >= next_try:
                next_try = now + RETRY_SECONDS
                self._try_reopen()

    def _lose(self, why: str) -> None:
        self.device_lost_since = time.monotonic()
        self.device_losses += 1
        child, self._child = self._child, None
        self._kill(child)  # it may be hung inside PortAudio for good
        self._start_soft_clock()
        self._retry_logged = False
        log.warning("audio device lost (%s): playing on a software clock, looking for it every %.0f s",
                    why, RETRY_SECONDS)

    def _try_reopen(self) -> None:
        try:
            child = self._spawn()
        except AudioError as exc:
            if not self._retry_logged:
                self._retry_logged = True
                log.info("audio device still missing: %s", exc)
            return
        self._stop_soft_clock()
        self._child = child
        self._go(child)
        lost = time.monotonic() - (self.device_lost_since or time.monotonic())
        self.device_lost_since = None
        self.reopens += 1
        log.info("audio device back after %.1f s: %s", lost, self.describe())
        if self.on_device_back is not None:
            try:
                self.on_device_back()
            except Exception:  # noqa: BLE001
                log.exception("after the audio device came back")

    def close(self) -> None:
        """Stop rendering and the device process (killed if it does not stop within a second:
        PortAudio can hang for good on a device that vanished)."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=1.0)  # no new device process from here on
        super().close()
        child, self._child = self._child, None
        if child is not None:
            try:
                child.stdin.write("stop\n")
                child.stdin.flush()
                child.wait(1.0)
            except Exception:  # noqa: BLE001
                self._kill(child)


def open_output(kind: str, engine, *, device=None, block: int = 256, tap=None, ahead: Optional[int] = None,
                rt_priority: int = 0, wait_for_device: bool = False) -> AudioOutput:
    if kind == "null":
        return NullOutput(engine, block=block, tap=tap, ahead=ahead, rt_priority=rt_priority)
    return PortAudioOutput(engine, device=device, block=block, tap=tap, ahead=ahead, rt_priority=rt_priority,
                           wait_for_device=wait_for_device)
