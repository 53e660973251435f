"""Audio output: a render thread renders each hop just in time — a margin (`ahead`) before the
callback that first needs it — into a lock-free ring; the device side (a PortAudio callback, or a software clock for
`--audio null`) only copies out of the ring.

    engine.render_hop() ──render thread──> Ring ──callback / null clock──> device
                               └── tap (recorder, off the audio thread)

Single producer (render thread), single consumer (callback): the read and write positions are
plain Python ints that only ever grow, each written by one side, so no lock is needed and the
callback never waits on the control side. The callback does no allocation-heavy work (its
output buffers are preallocated; PyAudio's API needs one `bytes` per block) and catches
everything, so nothing it does can raise into PortAudio.

Clock: `sample_at(t)` maps a time.monotonic() instant to the engine sample the device is
playing then — `ring.read` (engine samples handed to the device) stamped at each callback, plus
the elapsed time. OSC timetags are scheduled on this clock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any, Callable, Optional

import numpy as np

from .errors import AedaemonError

log = logging.getLogger("aedaemon.audio")

PA_OUTPUT_UNDERFLOW = 0x00000004  # paOutputUnderflow
PA_OUTPUT_OVERFLOW = 0x00000008
# the render margin with real-time scheduling: 3 ms at 44.1 kHz — a changed hop renders in a
# few hundred µs, but under a message flood the render thread may wait up to the 1 ms switch
# interval for the GIL each time the decoder or a NumPy call hands it over
JIT_MARGIN_SAMPLES = 132


class AudioError(AedaemonError):
    """No usable output device (the message lists the devices)."""


class Ring:
    """Single-producer single-consumer float32 ring buffer with ever-growing positions."""

    def __init__(self, capacity: int) -> None:
        size = 1
        while size < capacity:
            size <<= 1
        self.size = size
        self.mask = size - 1
        self.buf = np.zeros(size, dtype=np.float32)
        self.write_pos = 0  # written only by the producer
        self.read_pos = 0  # written only by the consumer

    def fill(self) -> int:
        return self.write_pos - self.read_pos

    def space(self) -> int:
        return self.size - (self.write_pos - self.read_pos)

    def write(self, x: np.ndarray) -> None:
        n = len(x)
        i = self.write_pos & self.mask
        first = min(n, self.size - i)
        self.buf[i : i + first] = x[:first]
        if first < n:
            self.buf[: n - first] = x[first:]
        self.write_pos += n

    def read_into(self, out: np.ndarray, n: int) -> int:
        """Copy up to n samples into out[:n]; returns how many were available."""
        k = self.write_pos - self.read_pos
        if k > n:
            k = n
        if k <= 0:
            return 0
        i = self.read_pos & self.mask
        first = self.size - i
        if first >= k:
            out[:k] = self.buf[i : i + k]
        else:
            out[:first] = self.buf[i:]
            out[first:k] = self.buf[: k - first]
        self.read_pos += k
        return k


@contextlib.contextmanager
def _quiet_stderr():
    """PortAudio's ALSA probing prints pages of noise on fd 2; keep the journal readable."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def list_output_devices() -> list[dict]:
    import pyaudio

    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    with _quiet_stderr():
        pa = pyaudio.PyAudio()
    try:
        return _outputs(pa)
    finally:
        pa.terminate()


def _outputs(pa) -> list[dict]:
    out = []
    for i in range(pa.get_device_count()):
        try:
            d = pa.get_device_info_by_index(i)
            api = pa.get_host_api_info_by_index(d["hostApi"])["name"]
        except Exception:  # noqa: BLE001
            continue
        if d.get("maxOutputChannels", 0) > 0:
            out.append({"index": i, "name": d["name"], "channels": d["maxOutputChannels"], "api": api,
                        "default_rate": d.get("defaultSampleRate")})
    return out


def _describe(devices: list[dict]) -> str:
    if not devices:
        return "no output devices at all (is a sound card or jackd present? use --audio null on headless hosts)"
    return "output devices: " + "; ".join(f"[{d['index']}] {d['name']} ({d['api']}, {d['channels']} ch)" for d in devices)


class AudioOutput:
    """Common part: the ring, the render thread, counters and the clock."""

    kind = "none"

    def __init__(self, engine, *, block: int = 256, tap: Optional[Callable[[np.ndarray], None]] = None,
                 ahead: Optional[int] = None, rt_priority: int = 0) -> None:
        self.engine = engine
        self.block = int(block)
        self.sample_rate = int(engine.sample_rate)
        self.hop = int(engine.hop)
        # Just-in-time rendering: each hop is rendered `ahead` samples' worth of time before the
        # callback that first needs it (not as soon as the ring has room), so a control change
        # waits for the next render (0..one block period) plus this margin, not for a whole
        # block of audio already in the ring. By default (ahead=None) the margin is 1 ms when the
        # render thread got real-time scheduling, else one hop (safer without RT); an underrun
        # widens it (logged).
        self._auto_ahead = ahead is None
        self.ahead = self.hop if ahead is None else int(ahead)
        self.max_ahead = max(self.ahead, self.hop + self.block)
        self.target = self.block + self.ahead
        self.ring = Ring(2 * (self.max_ahead + self.hop + 2 * self.block) + 4096)
        self.tap = tap
        self.underflows = 0  # device status flags
        self.ring_underruns = 0  # callback found the ring short
        self.callbacks = 0
        self.render_errors = 0
        self.cpu_load = 0.0  # EMA of render time / hop duration
        self._stamp = (0, time.monotonic())  # (ring.read_pos, monotonic) at the last callback
        # seconds from a callback's stamp until ring.read_pos is heard: the block just handed
        # over plus the device's output latency (set when a real stream opens; 0 for the null clock)
        self.latency = 0.0
        self._stop = threading.Event()
        self._render_thread: Optional[threading.Thread] = None
        self._started = False
        self.last_render = time.monotonic()
        self._silence = np.zeros(self.hop, dtype=np.float32)
        # real-time scheduling (SCHED_FIFO) for the callback and render threads when permitted
        # (root, CAP_SYS_NICE or LimitRTPRIO); 0 = leave the scheduling alone
        self.rt_priority = int(rt_priority)
        self.rt_callback: Optional[bool] = None  # None: not tried yet
        self.dead = False  # set by close() when the device side could not be closed
        self.rt_render: Optional[bool] = None

    # -- clock
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
        seen_underruns = self.ring_underruns
        while not self._stop.is_set():
            if self.ring_underruns != seen_underruns:
                seen_underruns = self.ring_underruns
                if self._auto_ahead and self.ahead < self.max_ahead:
                    # the renderer was late: keep a wider margin (doubling, up to hop + block)
                    self.ahead = min(self.max_ahead, max(2 * self.ahead, JIT_MARGIN_SAMPLES))
                    self.target = self.block + self.ahead
                    log.warning("ring underrun: now rendering %.1f ms before the device needs it",
                                1000.0 * self.ahead / sr)
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
            # (a stalled device: its last stamp ages, but the ring never holds more than the
            # widest margin; the watchdog sees the renderer stop)
            time.sleep(min(max(wait, 0.0005), 0.02))

    def _start_render(self) -> None:
        self._render_thread = threading.Thread(target=self._render_loop, name="render", daemon=True)
        self._render_thread.start()

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        if self._render_thread is not None:
            self._render_thread.join(timeout=1.0)

    def describe(self) -> str:
        return self.kind


class NullOutput(AudioOutput):
    """No device: a software clock consumes one block every block/sample_rate seconds."""

    kind = "null"

    def __init__(self, engine, **kw: Any) -> None:
        super().__init__(engine, **kw)
        self._scratch = np.zeros(self.block, dtype=np.float32)
        self._clock_thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self.prefill()
        self._stamp = (self.ring.read_pos, time.monotonic())
        self._started = True
        self._start_render()
        self._clock_thread = threading.Thread(target=self._clock, name="null-clock", daemon=True)
        self._clock_thread.start()

    def _clock(self) -> None:
        period = self.block / self.sample_rate
        nxt = time.monotonic()
        while not self._stop.is_set():
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5:  # suspended or starved: resynchronise instead of bursting
                nxt = time.monotonic()
            k = self.ring.read_into(self._scratch, self.block)
            if k < self.block:
                self.ring_underruns += 1
            self.callbacks += 1
            self._stamp = (self.ring.read_pos, time.monotonic())

    def close(self) -> None:
        super().close()
        if self._clock_thread is not None:
            self._clock_thread.join(timeout=1.0)


def _pin_thread_state() -> None:
    """Keep this (PortAudio-owned) thread's Python thread state alive between callbacks.

    PyAudio enters Python with PyGILState_Ensure/Release on every callback; on a foreign thread
    that creates and destroys a thread state each time (allocations, interpreter bookkeeping,
    ~0.5 % of a core at 172 callbacks/s). One extra Ensure that is never released keeps the
    state, so each callback only takes and drops the GIL. Called with the GIL held, where
    Ensure just increments the thread's counter; harmless if it fails.
    """
    try:
        import ctypes

        ctypes.pythonapi.PyGILState_Ensure.restype = ctypes.c_int
        ctypes.pythonapi.PyGILState_Ensure()
    except Exception:  # noqa: BLE001
        pass


class PortAudioOutput(AudioOutput):
    """PyAudio output stream in callback mode."""

    kind = "portaudio"

    def __init__(self, engine, *, device: Optional[int | str] = None, **kw: Any) -> None:
        super().__init__(engine, **kw)
        import pyaudio

        self._pyaudio = pyaudio
        os.environ.setdefault("JACK_NO_START_SERVER", "1")
        with _quiet_stderr():
            self.pa = pyaudio.PyAudio()
        try:
            self.device = self._choose(device)
        except Exception:
            self.pa.terminate()
            raise
        self.channels = max(1, min(2, int(self.device["channels"])))
        cap = max(self.block, 8192)
        self._mono = np.zeros(cap, dtype=np.float32)
        self._multi = np.zeros((cap, self.channels), dtype=np.float32)
        self._continue = pyaudio.paContinue
        self.stream = None

    def _choose(self, device: Optional[int | str]) -> dict:
        devices = _outputs(self.pa)
        if not devices:
            raise AudioError(f"no audio output device: {_describe(devices)}")
        if device is None:
            try:
                idx = self.pa.get_default_output_device_info()["index"]
                for d in devices:
                    if d["index"] == idx:
                        return d
            except (IOError, OSError):
                pass
            return devices[0]
        if isinstance(device, int):
            for d in devices:
                if d["index"] == device:
                    return d
            raise AudioError(f"output device {device} does not exist; {_describe(devices)}")
        want = str(device).lower()
        exact = [d for d in devices if d["name"].lower() == want]
        part = exact or [d for d in devices if want in d["name"].lower()]
        if not part:
            raise AudioError(f"no output device matches '{device}'; {_describe(devices)}")
        return part[0]

    def describe(self) -> str:
        d = self.device
        return f"portaudio [{d['index']}] {d['name']} ({d['api']}), {self.channels} ch, block {self.block}"

    def _callback(self, in_data, frame_count, time_info, status):
        try:
            if self.rt_callback is None:
                self.rt_callback = self._set_realtime(self.rt_priority) if self.rt_priority > 0 else False
                _pin_thread_state()
            if status & PA_OUTPUT_UNDERFLOW:
                self.underflows += 1
            n = frame_count
            if n > len(self._mono):  # never expected with a fixed frames_per_buffer
                self._mono = np.zeros(n, dtype=np.float32)
                self._multi = np.zeros((n, self.channels), dtype=np.float32)
            mono = self._mono
            k = self.ring.read_into(mono, n)
            if k < n:
                mono[k:n] = 0.0
                self.ring_underruns += 1
            if self.callbacks < 16:  # PortAudio's own view of when this buffer is heard
                self._measure_latency(time_info)
            self.callbacks += 1
            self._stamp = (self.ring.read_pos, self._stamp_time(k < n))
            if self.channels == 1:
                return mono[:n].tobytes(), self._continue
            multi = self._multi
            multi[:n] = mono[:n, None]
            return multi[:n].tobytes(), self._continue
        except BaseException:  # noqa: BLE001 - nothing may escape into PortAudio
            return bytes(4 * frame_count * self.channels), self._continue

    def _measure_latency(self, time_info) -> None:
        """latency = the block just handed over + how long until its first sample is heard
        (outputBufferDacTime − currentTime: 512 frames on the jackd dummy rig, where
        get_output_latency() says 256)."""
        try:
            lead = float(time_info["output_buffer_dac_time"]) - float(time_info["current_time"])
        except (KeyError, TypeError, ValueError):
            return
        if 0.0 <= lead < 1.0:
            self.latency = self.block / self.sample_rate + lead

    def _stamp_time(self, short: bool) -> float:
        """The callback's time on the device clock: a callback is only ever woken late (the
        GIL, a busy core), so follow the lower envelope of the stamps — the time predicted from
        the previous one at the device's rate, allowing a slow drift — and resynchronise on an
        underrun, an xrun or a callback that came early."""
        now = time.monotonic()
        pos0, t0 = self._stamp
        predicted = t0 + (self.ring.read_pos - pos0) / self.sample_rate
        late = now - predicted
        if short or late < 0.0 or late > 0.5 * self.block / self.sample_rate:
            return now
        return predicted + min(late, 2e-5)

    def start(self) -> None:
        self.prefill()
        try:
            with _quiet_stderr():
                self.stream = self.pa.open(
                    format=self._pyaudio.paFloat32,
                    channels=self.channels,
                    rate=self.sample_rate,
                    output=True,
                    output_device_index=self.device["index"],
                    frames_per_buffer=self.block,
                    stream_callback=self._callback,
                    start=False,
                )
        except Exception as exc:  # noqa: BLE001
            devices = _outputs(self.pa)
            self.pa.terminate()
            raise AudioError(
                f"cannot open output device [{self.device['index']}] {self.device['name']} at "
                f"{self.sample_rate} Hz, {self.channels} ch, block {self.block}: {exc}; {_describe(devices)}"
            ) from None
        # ring.read_pos is heard one block (the one just returned) plus the device latency
        # after its callback: (256 + 512) / 44100 = 17.4 ms on the jackd dummy rig. Until the
        # first callbacks measure it (_measure_latency), PortAudio's estimate stands in.
        self.latency = self.block / self.sample_rate + float(self.stream.get_output_latency())
        self._stamp = (self.ring.read_pos, time.monotonic())
        self._started = True
        self._start_render()
        self.stream.start_stream()

    def close(self) -> None:
        """Stop the stream. When the device stopped calling back (JACK zombified the client, the
        card vanished) PortAudio's teardown can hang or abort: leave it and set `dead`, so the
        daemon can still exit promptly (it then ends the process without interpreter teardown)."""
        stalled = self._started and time.monotonic() - self._stamp[1] > 0.5
        super().close()
        if stalled:
            self.dead = True
            log.warning("the audio device stopped calling back; not closing the stream")
            return

        def teardown() -> None:
            if self.stream is not None:
                try:
                    self.stream.stop_stream()
                    self.stream.close()
                except Exception:  # noqa: BLE001
                    pass
                self.stream = None
            try:
                self.pa.terminate()
            except Exception:  # noqa: BLE001
                pass

        t = threading.Thread(target=teardown, name="audio-close", daemon=True)
        t.start()
        t.join(1.0)
        if t.is_alive():
            self.dead = True
            log.warning("closing the audio stream hangs; leaving it")


def open_output(kind: str, engine, *, device=None, block: int = 256, tap=None, ahead: Optional[int] = None,
                rt_priority: int = 0) -> AudioOutput:
    if kind == "null":
        return NullOutput(engine, block=block, tap=tap, ahead=ahead, rt_priority=rt_priority)
    return PortAudioOutput(engine, device=device, block=block, tap=tap, ahead=ahead, rt_priority=rt_priority)
